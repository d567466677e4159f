/**
 * The deployed app settings against the code that reads them: the real loadSettings,
 * loadSourceSettings and judgeSettingsFromEnv must accept what infra/main.bicep sets,
 * and every queue and container those settings name must be created. A setting made
 * required in the code, or a name changed on either side, fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AzureOpenAI } from 'openai';
import { describe, expect, it } from 'vitest';
import { createOpenAIClient } from '../../adapters/judge/factory';
import { LLM_JUDGE } from '../../functions/lib/deps';
import { JUDGES } from '../../functions/lib/judges';
import { judgeSettingsFromEnv } from '../../shared/judge/settings';
import { loadSettings, poisonQueueOf, SETTINGS_DOC } from '../../shared/build/settings';
import { loadSourceSettings, SOURCE_SETTINGS_HELP } from '../../shared/source/settings';
import { RUNTIME } from './bicep';
import { deploy, KUSTO, SCENARIOS } from './deployment';

const ROOT = join(__dirname, '..', '..');

/** Every variable the judge settings read (`env.NAME` in shared/judge/settings.ts). */
const JUDGE_ENV = new Set(
  [...readFileSync(join(ROOT, 'shared/judge/settings.ts'), 'utf8').matchAll(/env\.([A-Z_]+)/g)].map(
    (m) => m[1]!,
  ),
);

describe.each(Object.entries(SCENARIOS))('app settings: %s', (_, params) => {
  const d = deploy(params);
  const env = d.appSettings;

  it('satisfy loadSettings: identity storage, no connection string', () => {
    const s = loadSettings(env);
    expect(s.storage).toEqual({
      kind: 'identity',
      blobServiceUri: expect.stringMatching(/^https:\/\/[a-z0-9]+\.blob\.core\.windows\.net\/$/),
      queueServiceUri: expect.stringMatching(/^https:\/\/[a-z0-9]+\.queue\.core\.windows\.net\/$/),
      clientId: RUNTIME.clientId,
    });
    expect(env.AzureWebJobsStorage__credential).toBe('managedidentity');
    expect(env).not.toHaveProperty('AzureWebJobsStorage');
  });

  it('create every queue the functions listen on, with its poison queue, and no other', () => {
    const { queues } = loadSettings(env);
    const expected = Object.values(queues).flatMap((q) => [q, poisonQueueOf(q)]);
    expect([...d.queues].sort()).toEqual([...expected].sort());
  });

  it('create the build container, the verdict cache container and the package container', () => {
    const s = loadSettings(env);
    const judge = judgeSettingsFromEnv(env);
    expect(judge.kind).toBe('openai');
    if (judge.kind !== 'openai') return;
    expect(d.containers).toContain(s.container);
    expect(d.containers).toContain(judge.cache.container);
    const app = d.api.body(d.api.resourcesOfType('Microsoft.Web/sites')[0]!);
    const pkg = (
      app.properties as { functionAppConfig: { deployment: { storage: { value: string } } } }
    ).functionAppConfig.deployment.storage.value;
    const blob = s.storage.kind === 'identity' ? s.storage.blobServiceUri : '';
    expect(pkg.startsWith(blob)).toBe(true);
    expect(d.containers).toContain(pkg.slice(blob.length));
  });

  it('configure the Azure OpenAI judge with the identity, never a key', () => {
    const judge = judgeSettingsFromEnv(env);
    expect(judge).toMatchObject({ kind: 'openai', provider: 'azure' });
    if (judge.kind !== 'openai') return;
    expect(judge.apiKey).toBeUndefined();
    expect(judge.endpoint).toBe(env.AZURE_OPENAI_ENDPOINT);
    expect(judge.model).toBe(params.openAiDeploymentName ?? 'judge');
    expect(createOpenAIClient(judge)).toBeInstanceOf(AzureOpenAI);
    expect(env.AZURE_CLIENT_ID).toBe(RUNTIME.clientId);
  });

  it('name a judge the functions know (SFT_JUDGE)', () => {
    expect([...Object.keys(JUDGES), LLM_JUDGE]).toContain(loadSettings(env).judge.name);
  });

  it('set only settings the code reads (no typos)', () => {
    const known = new Set([
      ...Object.keys(SETTINGS_DOC),
      ...Object.keys(SOURCE_SETTINGS_HELP),
      ...JUDGE_ENV,
    ]);
    const ours = Object.keys(env).filter((k) => /^(SFT|JUDGE|AZURE_OPENAI)_/.test(k));
    expect(ours.length).toBeGreaterThan(10);
    expect(ours.filter((k) => !known.has(k))).toEqual([]);
  });

  it('point scheduled builds at Kusto exactly when a cluster is given', () => {
    const s = loadSettings(env);
    if (!('kustoClusterUri' in params)) {
      expect(s.source.kind).toBe('blob');
      expect(env).not.toHaveProperty('SFT_KUSTO_CLUSTER_URI');
      return;
    }
    expect(s.source).toEqual({ kind: 'kusto', path: 'sft_session_router_first_turns' });
    // What the plan step's kustoLineSource reads (adapters/source/telemetry.ts).
    const src = loadSourceSettings({
      ...env,
      SFT_TELEMETRY_SOURCE: 'kusto',
      SFT_QUERY: s.source.path,
    });
    expect(src).toMatchObject({
      source: 'kusto',
      kusto: { clusterUri: KUSTO.kustoClusterUri, database: KUSTO.kustoDatabase },
    });
  });
});

describe('names: the Bicep and the code defaults agree', () => {
  it('uses the names loadSettings and the judge settings default to', () => {
    const env = deploy({}).appSettings;
    const defaults = loadSettings({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
    const deployed = loadSettings(env);
    expect(deployed.container).toBe(defaults.container);
    expect(deployed.queues).toEqual(defaults.queues);
    const judgeDefault = judgeSettingsFromEnv({ JUDGE_KIND: 'openai', JUDGE_MODEL: 'm' });
    expect(env.JUDGE_CACHE_CONTAINER).toBe(
      judgeDefault.kind === 'openai' ? judgeDefault.cache.container : '',
    );
  });

  it('leaves out a setting whose value would be empty (the loaders treat "" differently)', () => {
    for (const params of Object.values(SCENARIOS))
      for (const [k, v] of Object.entries(deploy(params).appSettings)) expect(v, k).not.toBe('');
  });
});

describe('deployed defaults: the LLM judge, in waves', () => {
  it('labels with the Azure OpenAI deployment through the identity, in waves, by default', () => {
    for (const params of Object.values(SCENARIOS)) {
      const env = deploy(params).appSettings;
      const s = loadSettings(env);
      // The name the functions map to the LLM judge (functions/lib/deps.ts LLM_JUDGE).
      expect(s.judge.name).toBe(LLM_JUDGE);
      expect(s.defaults.waves).toBeDefined();
      const judge = judgeSettingsFromEnv({ ...env, JUDGE_KIND: s.judge.name });
      expect(judge).toMatchObject({ kind: 'openai', provider: 'azure' });
      if (judge.kind === 'openai') expect(judge.apiKey).toBeUndefined();
    }
  });

  it('keeps the signals judge available by setting, and waves off by setting', () => {
    const env = deploy({ judgeName: 'signals', judgeInWaves: 'false' }).appSettings;
    const s = loadSettings(env);
    expect(s.judge.name).toBe('signals');
    expect(s.defaults.waves).toBeUndefined();
  });

  it('azd maps SFT_JUDGE_NAME and SFT_WAVES with the LLM judge and waves as defaults', () => {
    const p = JSON.parse(readFileSync(join(ROOT, 'infra/main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    };
    expect(p.parameters.judgeName!.value).toBe('${SFT_JUDGE_NAME=openai}');
    expect(p.parameters.judgeInWaves!.value).toBe('${SFT_WAVES=true}');
  });
});

describe('yield-aware judging in the deployment', () => {
  it('is on by default and off, or on with a budget, when azd sets SFT_WAVES and SFT_JUDGE_BUDGET', () => {
    expect(loadSettings(deploy({}).appSettings).defaults.waves).toEqual({});
    expect(
      loadSettings(deploy({ judgeInWaves: 'false' }).appSettings).defaults.waves,
    ).toBeUndefined();
    const on = deploy({ judgeInWaves: 'true', wavesJudgeBudget: '120000' }).appSettings;
    expect(on.SFT_WAVES).toBe('true');
    expect(loadSettings(on).defaults.waves).toEqual({ maxJudged: 120000 });
    expect(deploy({ judgeInWaves: 'true' }).appSettings).not.toHaveProperty('SFT_JUDGE_BUDGET');
  });

  it('takes a budget in US dollars from SFT_JUDGE_BUDGET_USD (empty: no limit, no setting)', () => {
    const p = JSON.parse(readFileSync(join(ROOT, 'infra/main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: string }>;
    };
    expect(p.parameters.wavesJudgeBudgetUsd!.value).toBe('${SFT_JUDGE_BUDGET_USD}');
    const usd = deploy({ wavesJudgeBudgetUsd: '12.5' }).appSettings;
    expect(usd.SFT_JUDGE_BUDGET_USD).toBe('12.5');
    expect(loadSettings(usd).defaults.waves).toEqual({ maxCost: 12.5 });
    const both = deploy({ wavesJudgeBudget: '5000', wavesJudgeBudgetUsd: '40' }).appSettings;
    expect(loadSettings(both).defaults.waves).toEqual({ maxJudged: 5000, maxCost: 40 });
    expect(deploy({}).appSettings).not.toHaveProperty('SFT_JUDGE_BUDGET_USD');
    expect(() => loadSettings(deploy({ wavesJudgeBudgetUsd: '-3' }).appSettings)).toThrow(
      /SFT_JUDGE_BUDGET_USD/,
    );
  });
});
