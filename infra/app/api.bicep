// The function app: Flex Consumption (FC1) on Linux, Node 22/24, running as the
// user-assigned identity. Storage is reached by endpoint + identity
// (AzureWebJobsStorage__*), never by a connection string.
param name string
param planName string
param location string
param tags object = {}

@allowed([
  '22'
  '24'
])
param nodeVersion string

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int
param instanceMemoryMB int

@description('Resource id of the user-assigned identity.')
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param deploymentContainerName string
param applicationInsightsName string

@description('The app\'s own settings (SFT_*, JUDGE_*, ...), merged with the platform ones below.')
param appSettings object = {}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  }

  resource settings 'config' = {
    name: 'appsettings'
    properties: union(appSettings, {
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
      // Needed by the queue triggers (and read by the app's own queue clients).
      AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
      // DefaultAzureCredential (Kusto, Azure OpenAI) picks the user-assigned identity.
      AZURE_CLIENT_ID: identityClientId
      // The connection string names the component (no key is accepted: local auth is
      // off); the authentication string makes the host sign in with the identity.
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    })
  }

  // Publishing with a user name and password is off; azd deploys with Entra ID.
  resource ftp 'basicPublishingCredentialsPolicies' = {
    name: 'ftp'
    properties: {
      allow: false
    }
  }

  resource scm 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: {
      allow: false
    }
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
