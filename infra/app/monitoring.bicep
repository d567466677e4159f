// Log Analytics plus workspace-based Application Insights with local (key) auth off:
// the app sends telemetry with its identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING
// and the Monitoring Metrics Publisher role in rbac.bicep).
param logAnalyticsName string
param applicationInsightsName string
param location string
param tags object = {}

@minValue(30)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
output logAnalyticsName string = logAnalytics.name
