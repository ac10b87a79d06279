// The Key Vault holding the registry's secrets: the token-signing key and the admin user's
// passwords. Access is by Azure RBAC only: the function app's identity reads secrets (Key Vault
// references in app settings); the deploying principal may write them, because the postprovision
// hook creates the secrets Bicep cannot (a PEM key).

param location string
param tags object
param name string

@description('Principal id of the function app identity, which reads secrets.')
param readerPrincipalId string

@description('Object id of the principal that creates the secrets (the deployer); empty: none.')
param secretsOfficerPrincipalId string = ''

var secretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var secretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_109: the function app has no virtual network, so Key Vault references reach the vault over its public endpoint; every access still needs an Entra ID token and an RBAC role
  //checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109: public network access is needed by the app's Key Vault references
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, readerPrincipalId, secretsUser)
  scope: vault
  properties: {
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUser)
  }
}

// No principalType: the deployer may be a user (azd up) or a service principal (a pipeline).
resource officer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(vault.id, secretsOfficerPrincipalId, secretsOfficer)
  scope: vault
  properties: {
    principalId: secretsOfficerPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsOfficer)
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
