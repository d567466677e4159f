/**
 * infra/main.bicep evaluated for a set of azd parameters: the function app's app
 * settings, the queues and containers the storage module creates, the outputs.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { asString, BicepModule, type Value } from './bicep';

export const INFRA = join(__dirname, '..', '..', 'infra');

/** Every .bicep file under infra/. */
export function bicepFiles(dir = INFRA): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.bicep'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

export const KUSTO = {
  kustoClusterUri: 'https://telemetry.westeurope.kusto.windows.net',
  kustoDatabase: 'copilot',
};

/** The parameter sets the tests deploy: azd's two plus the optional ones. */
export const SCENARIOS: Record<string, Record<string, Value>> = {
  'defaults (new Azure OpenAI, uploaded files)': {},
  'Kusto in reach (viewer granted by Bicep)': {
    ...KUSTO,
    kustoClusterResourceId:
      '/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-data/providers/Microsoft.Kusto/clusters/telemetry',
  },
  'Kusto out of reach (KQL command), existing Azure OpenAI': {
    ...KUSTO,
    openAiEndpoint: 'https://shared-aoai.openai.azure.com/',
    openAiDeploymentName: 'gpt-4o-mini-judge',
    openAiCapacity: 30,
  },
};

export interface Deployment {
  main: BicepModule;
  api: BicepModule;
  storage: BicepModule;
  appSettings: Record<string, string>;
  queues: string[];
  containers: string[];
}

export function deploy(params: Record<string, Value>): Deployment {
  const main = new BicepModule(join(INFRA, 'main.bicep'), {
    environmentName: 'sftb-test',
    location: 'swedencentral',
    ...params,
  });
  const api = main.module('api');
  const [config] = api.resourcesOfType('Microsoft.Web/sites/config');
  const body = api.body(config!);
  if (body.name !== 'appsettings') throw new Error('expected the appsettings config');
  const props = body.properties as Record<string, Value>;
  const appSettings: Record<string, string> = {};
  for (const [k, v] of Object.entries(props)) {
    // App settings are strings; anything else would not deploy.
    appSettings[k] = asString(v, `app setting ${k}`);
  }
  const storage = main.module('storage');
  const namesOf = (type: string) => storage.resourcesOfType(type).flatMap((r) => storage.names(r));
  return {
    main,
    api,
    storage,
    appSettings,
    queues: namesOf('Microsoft.Storage/storageAccounts/queueServices/queues'),
    containers: namesOf('Microsoft.Storage/storageAccounts/blobServices/containers'),
  };
}
