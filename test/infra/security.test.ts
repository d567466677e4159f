/**
 * Secure by default, checked on the evaluated templates: no secret reaches the app,
 * storage takes Entra ID only, every service has key auth off, each role is a named
 * constant, the Kusto viewer grant is right, and the instance cap keeps the judge
 * inside the Azure OpenAI deployment's quota.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { queueConcurrency, readQueueHostConfig } from '../../adapters/storage/host-config';
import { parseBicep, Ref, RUNTIME } from './bicep';
import { bicepFiles, deploy, KUSTO, SCENARIOS } from './deployment';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SECRET_VALUE =
  /AccountKey=|SharedAccessKey|SharedAccessSignature|[?&]sig=|Password=|client_secret/i;
const SECRET_NAME = /(KEY|SECRET|PASSWORD|TOKEN|CONNECTION_STRING)$/i;

describe.each(Object.entries(SCENARIOS))('no secrets in app settings: %s', (_, params) => {
  const { appSettings } = deploy(params);

  it('holds no account key, SAS or password', () => {
    for (const [k, v] of Object.entries(appSettings)) expect(v, k).not.toMatch(SECRET_VALUE);
  });

  it('sets no key-like setting but the Application Insights connection string', () => {
    // That one carries the component's instrumentation key, an identifier: with local
    // auth off the endpoint accepts nothing without an Entra token
    // (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
    const keyLike = Object.keys(appSettings).filter((k) => SECRET_NAME.test(k));
    expect(keyLike).toEqual(['APPLICATIONINSIGHTS_CONNECTION_STRING']);
    expect(appSettings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING).toBe(
      `ClientId=${RUNTIME.clientId};Authorization=AAD`,
    );
  });

  it('has no storage connection string and no judge API key', () => {
    expect(appSettings).not.toHaveProperty('AzureWebJobsStorage');
    expect(appSettings).not.toHaveProperty('JUDGE_API_KEY');
    expect(appSettings).not.toHaveProperty('AZURE_OPENAI_API_KEY');
  });
});

describe('no template reads a key', () => {
  it.each(bicepFiles())('%s calls no list*() function', (file) => {
    const calls: string[] = [];
    const walk = (n: ReturnType<typeof parseBicep>['rootNode']) => {
      if (n.type === 'call_expression') calls.push(n.childForFieldName('function')!.text);
      if (n.type === 'member_expression') calls.push(n.childForFieldName('property')!.text);
      n.namedChildren.forEach(walk);
    };
    walk(parseBicep(readFileSync(file, 'utf8')).rootNode);
    expect(calls.filter((c) => /^list/i.test(c))).toEqual([]);
    expect(readFileSync(file, 'utf8')).not.toMatch(/listKeys\(|primaryKey|key1|AccountKey/);
  });
});

describe('resources', () => {
  const d = deploy(SCENARIOS['Kusto in reach (viewer granted by Bicep)']!);
  const one = (m: typeof d.main, type: string): Obj => {
    const rs = m.resourcesOfType(type);
    expect(rs, type).toHaveLength(1);
    return m.body(rs[0]!);
  };

  it('storage: shared keys off, nothing public, TLS 1.2, HTTPS only', () => {
    const account = one(d.storage, 'Microsoft.Storage/storageAccounts');
    expect(account.properties).toMatchObject({
      allowSharedKeyAccess: false,
      allowBlobPublicAccess: false,
      minimumTlsVersion: 'TLS1_2',
      supportsHttpsTrafficOnly: true,
      defaultToOAuthAuthentication: true,
    });
    for (const c of d.storage.resourcesOfType(
      'Microsoft.Storage/storageAccounts/blobServices/containers',
    ))
      expect((d.storage.body(c, 'x').properties as Obj).publicAccess).toBe('None');
  });

  it('Application Insights: local auth off, on a Log Analytics workspace', () => {
    const monitoring = d.main.module('monitoring');
    const ai = one(monitoring, 'Microsoft.Insights/components');
    expect(ai.properties.DisableLocalAuth).toBe(true);
    expect(ai.properties.WorkspaceResourceId).toMatch(
      /Microsoft\.OperationalInsights\/workspaces\//,
    );
  });

  it('Azure OpenAI: key auth off, one deployment with the capacity the budget assumes', () => {
    const oai = d.main.module('openAi');
    expect(one(oai, 'Microsoft.CognitiveServices/accounts').properties.disableLocalAuth).toBe(true);
    const dep = one(oai, 'Microsoft.CognitiveServices/accounts/deployments');
    expect(dep.sku.capacity).toBe(d.main.value('openAiCapacity'));
    expect(dep.name).toBe(d.appSettings.JUDGE_MODEL);
  });

  it('function app: FC1, Node 22 or 24, user-assigned identity only, HTTPS, no basic auth', () => {
    const plan = one(d.api, 'Microsoft.Web/serverfarms');
    expect(plan.sku).toEqual({ tier: 'FlexConsumption', name: 'FC1' });
    const app = one(d.api, 'Microsoft.Web/sites');
    expect(app.identity.type).toBe('UserAssigned');
    expect(app.properties.httpsOnly).toBe(true);
    expect(app.properties.functionAppConfig.runtime.name).toBe('node');
    expect(['22', '24']).toContain(app.properties.functionAppConfig.runtime.version);
    expect(app.properties.functionAppConfig.deployment.storage.authentication.type).toBe(
      'UserAssignedIdentity',
    );
    const policies = d.api
      .resourcesOfType('Microsoft.Web/sites/basicPublishingCredentialsPolicies')
      .map((r): Obj => d.api.body(r));
    expect(policies.map((p) => `${p.name}: ${p.properties.allow}`).sort()).toEqual([
      'ftp: false',
      'scm: false',
    ]);
  });
});

describe('role assignments (infra/app/rbac.bicep)', () => {
  const d = deploy({ principalId: '99999999-9999-4999-8999-999999999999' });
  const rbac = d.main.module('rbac');
  const ROLE_IDS: Record<string, string> = {
    storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
    storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
    monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
    cognitiveServicesOpenAiUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd',
  };

  it('names each role id as a constant with a comment saying why', () => {
    const text = readFileSync(rbac.file, 'utf8');
    for (const [name, id] of Object.entries(ROLE_IDS)) {
      expect(rbac.value(name)).toBe(id);
      expect(text).toMatch(new RegExp(`// [^\\n]+\\n(// [^\\n]+\\n)*var ${name} = '${id}'`));
    }
    // No role id written inline in an assignment.
    expect(text.replace(/^var .*$/gm, '')).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-/);
  });

  it('grants the app exactly the four roles, each on the resource that needs it', () => {
    const grants = rbac
      .resourcesOfType('Microsoft.Authorization/roleAssignments')
      .map((r): Obj => rbac.body(r))
      .filter((b) => b.properties.principalId === RUNTIME.principalId)
      .map((b) => {
        const scope = b.scope as Ref;
        const type = scope.target.kind === 'resource' ? scope.target.decl.type : 'module';
        return `${(b.properties.roleDefinitionId as string).split('/').at(-1)} on ${type}`;
      });
    expect(grants.sort()).toEqual(
      [
        `${ROLE_IDS.storageBlobDataOwner} on Microsoft.Storage/storageAccounts`,
        `${ROLE_IDS.storageQueueDataContributor} on Microsoft.Storage/storageAccounts`,
        `${ROLE_IDS.monitoringMetricsPublisher} on Microsoft.Insights/components`,
        `${ROLE_IDS.cognitiveServicesOpenAiUser} on Microsoft.CognitiveServices/accounts`,
      ].sort(),
    );
  });

  it('gives the deploying user storage data access only when a principal id is given', () => {
    const user = (m: typeof rbac) =>
      m
        .resourcesOfType('Microsoft.Authorization/roleAssignments')
        .filter((r) => r.condition && m.eval(r.condition) === true)
        .map((r): string => {
          const b: Obj = m.body(r);
          return String(b.properties.principalId);
        });
    expect(user(rbac)).toContain('99999999-9999-4999-8999-999999999999');
    expect(user(deploy({}).main.module('rbac'))).not.toContain('');
  });
});

describe('Kusto viewer grant', () => {
  it('is a principal assignment (App, Viewer, the identity) when the cluster is in reach', () => {
    const d = deploy(SCENARIOS['Kusto in reach (viewer granted by Bicep)']!);
    expect(d.main.moduleCondition('kustoViewer')).toBe(true);
    const k = d.main.module('kustoViewer');
    const [pa] = k.resourcesOfType('Microsoft.Kusto/clusters/databases/principalAssignments');
    expect(k.body(pa!).properties).toEqual({
      principalId: RUNTIME.clientId,
      principalType: 'App',
      role: 'Viewer',
      tenantId: RUNTIME.tenantId,
    });
    expect(k.value('clusterName')).toBe('telemetry');
    expect(k.value('databaseName')).toBe(KUSTO.kustoDatabase);
  });

  it('is the documented KQL command otherwise', () => {
    const d = deploy(SCENARIOS['Kusto out of reach (KQL command), existing Azure OpenAI']!);
    expect(d.main.moduleCondition('kustoViewer')).toBe(false);
    expect(d.main.output('KUSTO_VIEWER_COMMAND')).toBe(
      `.add database ['${KUSTO.kustoDatabase}'] viewers ('aadapp=${RUNTIME.clientId};${RUNTIME.tenantId}') 'sft-balancer function app'`,
    );
  });

  it('uses no Azure OpenAI account of its own with an existing endpoint', () => {
    const d = deploy(SCENARIOS['Kusto out of reach (KQL command), existing Azure OpenAI']!);
    expect(d.main.moduleCondition('openAi')).toBe(false);
    expect(d.appSettings.AZURE_OPENAI_ENDPOINT).toBe('https://shared-aoai.openai.azure.com/');
    expect(d.main.module('rbac').value('openAiAccountName')).toBe('');
  });
});

describe('instance cap and the Azure OpenAI quota', () => {
  const host = readQueueHostConfig();
  const perInstance = queueConcurrency(host);

  it.each([
    [1, 1],
    [1, 4],
    [10, 4],
    [50, 4],
    [50, 100],
    [450, 40],
    [2000, 1000],
  ])('capacity %i (x1,000 TPM), cap %i: all instances together stay inside', (capacity, cap) => {
    const d = deploy({ openAiCapacity: capacity, maximumInstanceCount: cap });
    const app: Obj = d.api.body(d.api.resourcesOfType('Microsoft.Web/sites')[0]!);
    const n = app.properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount as number;
    const rpm = Number(d.appSettings.JUDGE_RPM);
    const tpm = Number(d.appSettings.JUDGE_TPM);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(cap);
    expect(n * rpm).toBeLessThanOrEqual(capacity * 6);
    expect(n * tpm).toBeLessThanOrEqual(capacity * 1000);
    // Every batch an instance works on at once (host.json) can make a request a minute.
    expect(rpm).toBeGreaterThanOrEqual(Math.min(perInstance, capacity * 6));
    expect(Number(d.appSettings.JUDGE_CONCURRENCY)).toBe(perInstance);
    expect(d.main.output('MAXIMUM_INSTANCE_COUNT')).toBe(n);
  });

  it('reads the per-instance concurrency from host.json', () => {
    const d = deploy({});
    expect(d.main.value('judgeBatchesPerInstance')).toBe(perInstance);
    expect(host.newBatchThreshold).toBeDefined();
  });
});
