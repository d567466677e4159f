// sft-balancer on Azure: one `azd up` provisions a Flex Consumption function app that
// reaches every service with one user-assigned managed identity. No keys anywhere:
// storage has shared keys off, Application Insights and Azure OpenAI have local auth
// off, and Kusto is read with the identity as a database viewer.
// Layout follows Azure-Samples/functions-quickstart-typescript-azd: this file wires
// modules in infra/app/, role assignments live in infra/app/rbac.bicep.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource (it must offer Flex Consumption and, when one is created, the Azure OpenAI model).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person running azd (AZURE_PRINCIPAL_ID): granted data access to storage so they can upload telemetry and read datasets. Empty: nobody but the app.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Node.js on Azure: 22 or 24 (20 reached end of life on 2026-04-30).')
@allowed([
  '22'
  '24'
])
param nodeVersion string = '22'

@description('Upper bound on function app instances. The judge budget is split across this many instances; see judgeBudget below.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 4

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('SFT_JUDGE: the judge builds use by default: `openai` labels with the Azure OpenAI deployment below (through the managed identity); `signals` is the offline heuristic (not for training a production router).')
param judgeName string = 'openai'

@description('SFT_WAVES: builds judge in waves only what the balance needs (yield-aware judging); a request\'s `waves` overrides it.')
@allowed([
  'true'
  'false'
])
param judgeInWaves string = 'true'

@description('SFT_JUDGE_BUDGET: with waves, the most samples a build judges. Empty: no limit.')
param wavesJudgeBudget string = ''

@description('SFT_JUDGE_BUDGET_USD: with waves, the judge budget of a build in US dollars at the price table (e.g. 25 or 12.5). Empty: no limit.')
param wavesJudgeBudgetUsd string = ''

@description('An existing Azure OpenAI endpoint (https://RESOURCE.openai.azure.com). Empty: an account and a deployment are created here.')
param openAiEndpoint string = ''

@description('Deployment name the judge calls (created here, or existing at openAiEndpoint).')
param openAiDeploymentName string = 'judge'

param openAiModelName string = 'gpt-4o-mini'
param openAiModelVersion string = '2024-07-18'

@allowed([
  'GlobalStandard'
  'Standard'
  'DataZoneStandard'
])
param openAiSkuName string = 'GlobalStandard'

@description('Deployment capacity in units of 1,000 tokens per minute (the quota). With an existing endpoint, give the capacity of that deployment: the judge budget is derived from it.')
@minValue(1)
param openAiCapacity int = 50

@description('Kusto cluster URL the telemetry is read from (https://CLUSTER.REGION.kusto.windows.net). Empty: builds read uploaded files.')
param kustoClusterUri string = ''

@description('Kusto database holding the telemetry table.')
param kustoDatabase string = ''

@description('Resource id of that Kusto cluster, when this deployment may change it (/subscriptions/.../resourceGroups/.../providers/Microsoft.Kusto/clusters/NAME): the identity is then made a database viewer here. Empty: run the KQL command in the KUSTO_VIEWER_COMMAND output.')
param kustoClusterResourceId string = ''

@description('SFT_KUSTO_TABLE: the table the queries read.')
param kustoTable string = 'Telemetry'

@description('SFT_SOURCE of scheduled builds. Empty: the seed\'s session query when Kusto is configured, else the default upload blob.')
param telemetrySource string = ''

@description('SFT_SCHEDULE (NCRONTAB, seconds first) of the scheduled build.')
param schedule string = '0 0 3 * * 1'

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-sftb-${resourceToken}'
// Flex Consumption deploys the app package from this blob container.
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'

// Every container and queue the code uses, named once here: the app settings below
// hand the same names to the code, and the storage module creates them (with the
// poison queue the Functions host moves a message to after maxDequeueCount).
// test/infra/settings.test.ts proves the app's loadSettings reads exactly these.
var storageNames = {
  container: 'sft-balancer'
  judgeCacheContainer: 'judge-cache'
  planQueue: 'sft-plan'
  shardQueue: 'sft-shards'
  faninQueue: 'sft-fanin'
}
var queueNames = [
  storageNames.planQueue
  storageNames.shardQueue
  storageNames.faninQueue
]

// The judge's share of the Azure OpenAI quota.
// A deployment of capacity C allows C x 1,000 tokens and C x 6 requests a minute
// (Azure OpenAI gives 6 RPM per 1,000 TPM). Each instance runs one judge per process
// (sharedJudge), whose RPM/TPM token buckets are JUDGE_RPM/JUDGE_TPM, so N instances
// never exceed N x JUDGE_RPM: splitting the quota by the instance cap keeps the whole
// app inside it. host.json lets an instance work on batchSize + newBatchThreshold
// judge batches at once; an instance whose share is below one request a minute per
// such batch would only hold messages while its limiter waits, so the cap is also
// lowered until every instance gets at least that (effectiveInstanceCount).
// Only the judgeBatch queue function calls the judge; Flex scales each queue function
// on its own, and no function of the app gets more than maximumInstanceCount.
var hostQueues = loadJsonContent('../host.json').extensions.queues
var judgeBatchesPerInstance = int(hostQueues.batchSize) + int(hostQueues.newBatchThreshold)
var deploymentRpm = openAiCapacity * 6
var deploymentTpm = openAiCapacity * 1000
var effectiveInstanceCount = max(1, min(maximumInstanceCount, deploymentRpm / judgeBatchesPerInstance))
var judgeBudget = {
  rpmPerInstance: deploymentRpm / effectiveInstanceCount
  tpmPerInstance: deploymentTpm / effectiveInstanceCount
  // One request in flight per batch the instance works on.
  concurrency: judgeBatchesPerInstance
}

var createOpenAi = empty(openAiEndpoint)
var useKusto = !empty(kustoClusterUri) && !empty(kustoDatabase)
var defaultSource = useKusto ? 'kusto:sft_session_router_first_turns' : ''
var source = empty(telemetrySource) ? defaultSource : telemetrySource
// Empty means "the code's default": such settings are left out, not set to ''.
var sourceSetting = empty(source) ? {} : {
  SFT_SOURCE: source
}
var wavesBudgetSetting = empty(wavesJudgeBudget) ? {} : {
  SFT_JUDGE_BUDGET: wavesJudgeBudget
}
var wavesBudgetUsdSetting = empty(wavesJudgeBudgetUsd) ? {} : {
  SFT_JUDGE_BUDGET_USD: wavesJudgeBudgetUsd
}
var kustoSettings = useKusto ? {
  SFT_KUSTO_CLUSTER_URI: kustoClusterUri
  SFT_KUSTO_DATABASE: kustoDatabase
  SFT_KUSTO_TABLE: kustoTable
} : {}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-sftb-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'stsftb${resourceToken}'
    location: location
    tags: tags
    containers: [
      storageNames.container
      storageNames.judgeCacheContainer
      deploymentContainerName
    ]
    queues: queueNames
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-sftb-${resourceToken}'
    applicationInsightsName: 'appi-sftb-${resourceToken}'
    location: location
    tags: tags
  }
}

module openAi './app/openai.bicep' = if (createOpenAi) {
  name: 'openai'
  scope: rg
  params: {
    name: 'oai-sftb-${resourceToken}'
    location: location
    tags: tags
    deploymentName: openAiDeploymentName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    skuName: openAiSkuName
    capacity: openAiCapacity
  }
}

var judgeEndpoint = createOpenAi ? openAi.outputs.endpoint : openAiEndpoint

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-sftb-${resourceToken}'
    location: location
    tags: tags
    nodeVersion: nodeVersion
    maximumInstanceCount: effectiveInstanceCount
    instanceMemoryMB: instanceMemoryMB
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appSettings: union(
      {
        SFT_CONTAINER: storageNames.container
        SFT_PLAN_QUEUE: storageNames.planQueue
        SFT_SHARD_QUEUE: storageNames.shardQueue
        SFT_FANIN_QUEUE: storageNames.faninQueue
        SFT_SCHEDULE: schedule
        SFT_JUDGE: judgeName
        SFT_WAVES: judgeInWaves
        // The LLM judge: Azure OpenAI through the managed identity (no JUDGE_API_KEY).
        JUDGE_KIND: 'openai'
        JUDGE_PROVIDER: 'azure'
        JUDGE_MODEL: openAiDeploymentName
        JUDGE_CACHE_MODEL: '${openAiModelName}-${openAiModelVersion}'
        JUDGE_CACHE_CONTAINER: storageNames.judgeCacheContainer
        AZURE_OPENAI_ENDPOINT: judgeEndpoint
        JUDGE_RPM: string(judgeBudget.rpmPerInstance)
        JUDGE_TPM: string(judgeBudget.tpmPerInstance)
        JUDGE_CONCURRENCY: string(judgeBudget.concurrency)
      },
      sourceSetting,
      kustoSettings,
      wavesBudgetSetting,
      wavesBudgetUsdSetting
    )
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    openAiAccountName: createOpenAi ? openAi.outputs.name : ''
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

// The viewer grant on Kusto, when the cluster is one this deployment may change.
// (A placeholder id keeps the scope expression valid when no cluster is given.)
var kustoClusterId = empty(kustoClusterResourceId) ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/${rg.name}/providers/Microsoft.Kusto/clusters/none' : kustoClusterResourceId
var kustoIdParts = split(kustoClusterId, '/')
module kustoViewer './app/kusto-viewer.bicep' = if (useKusto && !empty(kustoClusterResourceId)) {
  name: 'kustoViewer'
  scope: resourceGroup(kustoIdParts[2], kustoIdParts[4])
  params: {
    clusterName: last(kustoIdParts)
    databaseName: kustoDatabase
    identityClientId: identity.outputs.clientId
    tenantId: tenant().tenantId
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output SFT_CONTAINER string = storageNames.container
output AZURE_OPENAI_ENDPOINT string = judgeEndpoint
output AZURE_OPENAI_DEPLOYMENT string = openAiDeploymentName
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MAXIMUM_INSTANCE_COUNT int = effectiveInstanceCount
output JUDGE_RPM_PER_INSTANCE int = judgeBudget.rpmPerInstance
output JUDGE_TPM_PER_INSTANCE int = judgeBudget.tpmPerInstance
// Kusto database permissions are not Azure RBAC: without kustoClusterResourceId, a
// database admin runs this once (see README, "Grant access to an existing Kusto database").
output KUSTO_VIEWER_COMMAND string = useKusto
  ? '.add database [\'${kustoDatabase}\'] viewers (\'aadapp=${identity.outputs.clientId};${tenant().tenantId}\') \'sft-balancer function app\''
  : ''
