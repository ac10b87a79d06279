// The registry's function app on the Flex Consumption plan (Linux, Python 3.11), running as a
// user-assigned identity. Its app settings are the registry's own (passed in, one per entry of
// shared/settings.py SETTINGS) plus the host settings below; tests/test_infra.py keeps both in step.

param location string
param tags object
param name string
param planName string

@description('Resource id and client id of the user-assigned identity the app runs as.')
param identityId string
param identityClientId string

param hostStorageName string
param deploymentContainerUrl string
param appInsightsConnectionString string

@description('Queue service of the registry storage: the connection (RegistryStorage) of the queue-triggered functions.')
param registryQueueEndpoint string

@description('The registry settings (shared/settings.py SETTINGS), name to value.')
param registrySettings object

@description('The azd service this app is (its azd-service-name tag); empty for a replica region\'s app, which azd does not deploy to (it takes one app per service).')
param azdServiceName string = 'registry'

@description('Most instances Flex Consumption scales the app out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of one instance; an upload holds at most one block (REGISTRY_UPLOAD_BLOCK_MIB) in memory.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Settings of the Functions host itself, not of the registry. Flex Consumption takes the runtime
// from functionAppConfig and does not take FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION.
//
// HTTP streams (functions/http.py): the worker indexes the app at start-up
// (PYTHON_ENABLE_INIT_INDEXING) and, finding the azurefunctions-extensions-http-fastapi types,
// starts its own HTTP server, to which the host forwards each request unbuffered. The host still
// caps every request body (100 MB unless FUNCTIONS_REQUEST_BODY_SIZE_LIMIT says otherwise, in
// bytes): a `docker push` sends a whole layer in one PATCH, and ACR takes layers up to 200 GiB.
var requestBodyLimitBytes = 200 * 1024 * 1024 * 1024

var hostSettings = {
  AzureWebJobsStorage__accountName: hostStorageName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AZURE_CLIENT_ID: identityClientId
  PYTHON_ENABLE_INIT_INDEXING: '1'
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: string(requestBodyLimitBytes)
  // The queue triggers' connection (shared/kernel/jobs.py QUEUE_CONNECTION), with the app's identity.
  RegistryStorage__queueServiceUri: registryQueueEndpoint
  RegistryStorage__credential: 'managedidentity'
  RegistryStorage__clientId: identityClientId
}

var appSettings = union(hostSettings, registrySettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions and needs zone-redundant host storage; an operator who wants it sets zoneRedundant here
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

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, empty(azdServiceName) ? {} : {
    'azd-service-name': azdServiceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  //checkov:skip=CKV_AZURE_222: a container registry must be reachable by its clients (docker, oras) on its public endpoint; it authenticates every request itself
  //checkov:skip=CKV_AZURE_17: registry clients do not present TLS client certificates; they authenticate with Basic or Bearer credentials
  //checkov:skip=CKV_AZURE_212: Flex Consumption scales instances per demand (scaleAndConcurrency); siteConfig.numberOfWorkers does not apply
  //checkov:skip=CKV_AZURE_213: Flex Consumption does not offer App Service health check; the platform replaces failed instances itself
  properties: {
    serverFarmId: plan.id
    // Key Vault references in the app settings are resolved with the user-assigned identity (the
    // default would be a system-assigned one, which this app does not have).
    keyVaultReferenceIdentity: identityId
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
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
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Deployments authenticate with Entra ID (azd, func publish); no FTP or basic-auth publishing.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
