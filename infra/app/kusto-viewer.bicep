// Kusto database permissions are Kusto's own, not Azure RBAC: the app's identity is
// made a Viewer of one database through a principal assignment (principal type App,
// principal id = the identity's client id). Deployed into the cluster's resource
// group; whoever runs azd needs rights on the cluster. Otherwise a database admin
// runs the equivalent KQL (main.bicep's KUSTO_VIEWER_COMMAND output):
//   .add database ['DB'] viewers ('aadapp=CLIENT_ID;TENANT_ID') 'sft-balancer function app'
param clusterName string
param databaseName string
param identityClientId string
param tenantId string

resource cluster 'Microsoft.Kusto/clusters@2023-08-15' existing = {
  name: clusterName
}

resource database 'Microsoft.Kusto/clusters/databases@2023-08-15' existing = {
  parent: cluster
  name: databaseName
}

resource viewer 'Microsoft.Kusto/clusters/databases/principalAssignments@2023-08-15' = {
  parent: database
  name: guid(cluster.id, databaseName, identityClientId, 'Viewer')
  properties: {
    principalId: identityClientId
    principalType: 'App'
    role: 'Viewer'
    tenantId: tenantId
  }
}
