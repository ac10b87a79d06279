// A storage account holding registry content (blob container) and metadata (tables), reached only
// with Entra ID: the function app's identity reads and writes data and signs user-delegation SAS
// URLs for blob downloads, and sends and consumes webhook delivery messages on its queues. The app
// creates its container and tables itself (shared/storage/layout.py names them); the queues are
// created here too, because the Functions host listens on them before the app first runs.
// Geo-replicas use the same module.

param location string
param tags object
param name string

@description('Storage redundancy of the account.')
param skuName string

@description('Principal id of the function app identity that gets data access.')
param principalId string

@description('Queues to create (the webhook delivery queue and its poison queue).')
param queueNames array = []

var roles = {
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  blobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_35: clients download blobs from this account directly (307 to a user-delegation SAS URL), so it must accept traffic from anywhere; shared keys are off and every request needs Entra ID or a SAS
  //checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: the public endpoint serves SAS downloads; anonymous blob access stays off (allowBlobPublicAccess false)
  //checkov:skip=CKV_AZURE_206: redundancy is the skuName parameter (default Standard_ZRS in main.bicep); geo-redundancy comes from Premium replica regions, as in ACR
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in items(roles): {
  name: guid(account.id, principalId, role.value)
  scope: account
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
  }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queueNames: {
  parent: queueService
  name: queue
}]

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = account.properties.primaryEndpoints.table
output queueEndpoint string = account.properties.primaryEndpoints.queue
