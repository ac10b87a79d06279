// The whole registry in one resource group: the function app (Flex Consumption, Python 3.11) and
// its identity, the registry storage, the host storage, the Event Grid topic and its subscriptions,
// monitoring and the Key Vault; on Premium, per replica location the same storage, app, topic and
// subscriptions (modules/replica-region.bicep), and a Front Door giving all regions one login
// server (docs/replication.md).
// Deploy with `azd up` or `az deployment group create` (docs/deploy.md).

@description('Name of the registry and of the function app; the login server is its default host name (output REGISTRY_LOGIN_SERVER).')
@minLength(3)
@maxLength(50)
param registryName string

@description('Registry SKU (ACR tiers). Replica locations need Premium: a deployment listing them on another SKU is refused.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param sku string = 'Standard'

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Azure locations of the replica regions, e.g. [\'eastus\', \'southeastasia\'] (Premium only): each gets its own registry storage, function app and Event Grid topic, and a Front Door routes the one login server to the nearest region.')
param replicaLocations array = []

@description('Path Front Door probes every region on (replicas only): /acr/health answers 200 without credentials while the region serves and 503 while its endpoint is switched off (docs/replication.md).')
param frontDoorProbePath string = '/acr/health'

@description('Prefix of the blob container and tables in the registry storage (REGISTRY_STORAGE_PREFIX).')
param storagePrefix string = 'registry'

@description('Redundancy of the registry storage accounts.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSkuName string = 'Standard_ZRS'

@description('Create the Event Grid subscriptions; needs the code published first, because Event Grid checks that each function exists.')
param eventSubscriptionsEnabled bool = false

@description('Enable the admin user (username registryName, password the Key Vault secret admin-password). Off by default, as in ACR.')
param adminUserEnabled bool = false

@description('Give the admin user a second password, the Key Vault secret admin-password2 (rotation). Needs adminUserEnabled.')
param adminPassword2Enabled bool = false

@description('Also accept tokens signed by the Key Vault secret token-signing-key-previous (signing key rotation; the secret must exist).')
param tokenPreviousKeyEnabled bool = false

@description('Object id of the user or service principal deploying (azd: AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer so that it can create the secrets. Empty: no assignment.')
param deployerPrincipalId string = ''

@description('Entra ID object ids (users, groups, service principals) that are Owners of the registry by configuration (REGISTRY_OWNER_PRINCIPALS). Empty: the deploying principal.')
param ownerPrincipals array = []

@description('Tags added to every resource (azd adds azd-env-name).')
param tags object = {}

// One entry per Event Grid-triggered function of the app: the same list, field for field, as
// shared.composition SUBSCRIPTIONS, one per registered Event Grid consumer (the local Event Grid delivers by them);
// tests/test_infra.py checks both against the functions the app indexes.
var eventSubscriptions = [
  {
    name: 'webhooks'
    functionName: 'webhook_fanout'
    includedEventTypes: [
      'Microsoft.ContainerRegistry.ImagePushed'
      'Microsoft.ContainerRegistry.ImageDeleted'
      'Microsoft.ContainerRegistry.ChartPushed'
      'Microsoft.ContainerRegistry.ChartDeleted'
      'ContainerRegistry.ImageQuarantined'
    ]
    subjectBeginsWith: ''
    subjectEndsWith: ''
    maxDeliveryAttempts: 30
    eventTimeToLiveInMinutes: 1440
    deadLetter: true
  }
]

// The subscription of the replication consumer, which exists only when the registry has two or more
// regions (REGISTRY_REGIONS): the same, field for field, as shared.composition.configure()'s with two
// regions (tests/test_infra_replicas.py).
var replicationSubscription = {
  name: 'replication'
  functionName: 'replicate'
  includedEventTypes: [
    'Microsoft.ContainerRegistry.ImagePushed'
    'Microsoft.ContainerRegistry.ImageDeleted'
    'Microsoft.ContainerRegistry.ChartPushed'
    'Microsoft.ContainerRegistry.ChartDeleted'
    'ContainerRegistry.TagDeleted'
    'ContainerRegistry.AttributesChanged'
  ]
  subjectBeginsWith: ''
  subjectEndsWith: ''
  maxDeliveryAttempts: 30
  eventTimeToLiveInMinutes: 1440
  deadLetter: true
}

// Every region's topic has the same subscriptions, to its own region's app.
var regionSubscriptions = concat(eventSubscriptions, empty(replicaLocations) ? [] : [replicationSubscription])

// The schema the app publishes in (REGISTRY_EVENTS_SCHEMA), the topic accepts and subscriptions deliver.
var eventSchema = 'EventGridSchema'

var token = uniqueString(subscription().id, resourceGroup().id, registryName)
var allTags = union(tags, {
  registry: registryName
  'registry-sku': sku
})
var deadLetterContainerName = 'eventgrid-deadletter'

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${registryName}'
  location: location
  tags: allTags
}

resource topicIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${registryName}-events'
  location: location
  tags: allTags
}

// The webhook delivery queue and its poison queue: shared/storage/layout.py delivery_queue and
// poison_queue of the storage prefix (the app's ensure() creates them too).
var deliveryQueue = '${storagePrefix}-webhooks'
var deliveryQueues = [
  deliveryQueue
  '${deliveryQueue}-poison'
]

// Every region, home first: its name in REGISTRY_REGIONS (the Azure location, lower case), its
// function app and its registry storage account. The names are computed here, not read from the
// modules, because every region's app lists every region's storage in its settings.
var regionLocations = concat([location], replicaLocations)
var regions = [for (regionLocation, i) in regionLocations: {
  name: toLower(replace(regionLocation, ' ', ''))
  location: regionLocation
  appName: (i == 0) ? registryName : take('${registryName}-${toLower(replace(regionLocation, ' ', ''))}', 60)
  storageName: (i == 0) ? 'reg${token}' : 'rep${uniqueString(subscription().id, resourceGroup().id, registryName, regionLocation)}'
  hostStorageName: (i == 0) ? 'fn${token}' : 'fn${uniqueString(subscription().id, resourceGroup().id, registryName, regionLocation)}'
}]

var replicaAppNames = [for (replicaLocation, i) in replicaLocations: regions[i + 1].appName]

// REGISTRY_REGIONS (shared/replication/settings.py): every region's storage endpoints, reached with
// the managed identity (no keys), and the region's own registry URL.
var regionEntries = [for region in regions: {
  name: region.name
  blob_endpoint: 'https://${region.storageName}.blob.${environment().suffixes.storage}/'
  table_endpoint: 'https://${region.storageName}.table.${environment().suffixes.storage}/'
  queue_endpoint: 'https://${region.storageName}.queue.${environment().suffixes.storage}/'
  endpoint: 'https://${region.appName}.azurewebsites.net'
}]

module registryStorage 'modules/registry-storage.bicep' = {
  name: 'registry-storage'
  params: {
    location: location
    tags: allTags
    name: regions[0].storageName
    skuName: storageSkuName
    principalId: appIdentity.properties.principalId
    queueNames: deliveryQueues
  }
}

module hostStorage 'modules/host-storage.bicep' = {
  name: 'host-storage'
  params: {
    location: location
    tags: allTags
    name: regions[0].hostStorageName
    deploymentContainerName: 'app-package'
    deadLetterContainerName: deadLetterContainerName
    appPrincipalId: appIdentity.properties.principalId
    eventsPrincipalId: topicIdentity.properties.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: allTags
    workspaceName: 'log-${registryName}'
    appInsightsName: 'appi-${registryName}'
    publisherPrincipalId: appIdentity.properties.principalId
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  params: {
    location: location
    tags: allTags
    name: 'kv-${token}'
    readerPrincipalId: appIdentity.properties.principalId
    secretsOfficerPrincipalId: deployerPrincipalId
  }
}

// Before the function app, so that a registry setting can name the topic endpoint.
module eventTopic 'modules/event-topic.bicep' = {
  name: 'event-topic'
  params: {
    location: location
    tags: allTags
    topicName: take('${registryName}-events', 50)
    inputSchema: eventSchema
    publisherPrincipalId: appIdentity.properties.principalId
    topicIdentityId: topicIdentity.id
  }
}

// Secrets are Key Vault references, resolved by App Service with the app's identity
// (keyVaultReferenceIdentity in modules/function-app.bicep). Bicep cannot make a PEM key, so the
// secrets are created by the postprovision hook (azure.yaml, infra/hooks/) or by hand
// (docs/deploy.md), each only if absent. A reference App Service cannot resolve reaches the app as
// its literal text, which the app refuses to start with; so a setting whose secret need not exist
// (the previous signing key, the admin user's passwords) names it only when a parameter says so.
//
// REGISTRY_LOGIN_SERVER stays empty: the login server is then the Host of each request. The
// default host name is not known here: the site cannot read its own defaultHostName in its own
// settings, and it is not always <name>.azurewebsites.net (an app created with a unique default
// host name, which Functions offer, is <name>-<hash>.<region>.azurewebsites.net); a custom domain
// adds another. App Service routes only the host names bound to the site, and a token is valid
// only on the host it was issued for (its audience).
//
// Exactly the settings of shared/settings.py SETTINGS (tests/test_infra.py checks the names).
var registrySettings = {
  REGISTRY_NAME: registryName
  REGISTRY_STORAGE_CONNECTION_STRING: ''
  REGISTRY_BLOB_ENDPOINT: registryStorage.outputs.blobEndpoint
  REGISTRY_TABLE_ENDPOINT: registryStorage.outputs.tableEndpoint
  REGISTRY_QUEUE_ENDPOINT: registryStorage.outputs.queueEndpoint
  REGISTRY_STORAGE_PREFIX: storagePrefix
  REGISTRY_BLOB_REDIRECT: 'true'
  REGISTRY_SAS_TTL_SECONDS: '600'
  REGISTRY_UPLOAD_BLOCK_MIB: '8'
  REGISTRY_CHUNK_MIN_BYTES: '0'
  REGISTRY_UPLOAD_TTL_HOURS: '24'
  REGISTRY_LOCATION: location
  REGISTRY_RESOURCE_ID: resourceId('Microsoft.Web/sites', registryName)
  REGISTRY_EVENTGRID_ENDPOINT: eventTopic.outputs.endpoint
  REGISTRY_EVENTGRID_KEY: '' // the topic takes Entra ID only: the app's identity is an EventGrid Data Sender
  REGISTRY_EVENTS_SCHEMA: eventSchema
  // Settings of the local Event Grid only: Azure delivers through the subscriptions above.
  REGISTRY_EVENTS_FUNCTIONS_URL: ''
  REGISTRY_EVENTS_SUBSCRIBER_URLS: ''
  REGISTRY_EVENTS_MAX_ATTEMPTS: '8'
  REGISTRY_EVENTS_RETRY_MS: '1000'
  REGISTRY_OUTBOX_GRACE_SECONDS: '60'
  REGISTRY_OUTBOX_SWEEP_SECONDS: '0' // the republish_outbox timer function sweeps the outbox
  REGISTRY_WEBHOOKS_ENABLED: 'true'
  REGISTRY_WEBHOOK_MAX_ATTEMPTS: '30'
  REGISTRY_WEBHOOK_RETRY_MS: '30000'
  REGISTRY_WEBHOOK_RETRY_MAX_SECONDS: '3600'
  REGISTRY_WEBHOOK_TIMEOUT_SECONDS: '10'
  REGISTRY_WEBHOOK_ALLOW_PRIVATE: 'false'
  // One region: replication off. Replica apps override REGISTRY_REGION (modules/replica-region.bicep).
  REGISTRY_REGION: empty(replicaLocations) ? '' : regions[0].name
  REGISTRY_REGIONS: empty(replicaLocations) ? '' : string(regionEntries)
  REGISTRY_REPLICATION_RETRY_SECONDS: '120'
  REGISTRY_BACKGROUND_JOBS: 'false' // the Functions host runs the timer and queue functions
  REGISTRY_AUTH_ENABLED: 'true'
  // One region: the request's Host (see above). With replicas, the Front Door's host for every region.
  REGISTRY_LOGIN_SERVER: empty(replicaLocations) ? '' : frontDoor.outputs.hostName
  REGISTRY_TOKEN_SIGNING_KEY: '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=token-signing-key)'
  REGISTRY_TOKEN_PREVIOUS_KEY: tokenPreviousKeyEnabled ? '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=token-signing-key-previous)' : ''
  REGISTRY_ACCESS_TOKEN_TTL_SECONDS: '600'
  REGISTRY_REFRESH_TOKEN_TTL_SECONDS: '10800'
  REGISTRY_ADMIN_ENABLED: adminUserEnabled ? 'true' : 'false'
  REGISTRY_ADMIN_PASSWORD: adminUserEnabled ? '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=admin-password)' : ''
  REGISTRY_ADMIN_PASSWORD2: (adminUserEnabled && adminPassword2Enabled) ? '@Microsoft.KeyVault(VaultName=${keyVault.outputs.name};SecretName=admin-password2)' : ''
  REGISTRY_ENTRA_AUTHORITY: environment().authentication.loginEndpoint
  REGISTRY_ENTRA_TENANTS: subscription().tenantId // principals of the deployment's own tenant
  // Whoever deploys can administer the new registry at once, before any role is assigned in it.
  REGISTRY_OWNER_PRINCIPALS: join(empty(ownerPrincipals) && !empty(deployerPrincipalId) ? [deployerPrincipalId] : ownerPrincipals, ',')
  // ARM's audiences of this cloud (what `az acr login` exchanges) and ACR's own.
  REGISTRY_ENTRA_AUDIENCES: join(union(environment().authentication.audiences, ['https://containerregistry.azure.net']), ',')
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    location: location
    tags: allTags
    name: registryName
    planName: 'plan-${registryName}'
    identityId: appIdentity.id
    identityClientId: appIdentity.properties.clientId
    hostStorageName: hostStorage.outputs.name
    deploymentContainerUrl: hostStorage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    registryQueueEndpoint: registryStorage.outputs.queueEndpoint
    registrySettings: registrySettings
  }
}

// After the function app: Event Grid checks that each subscription's function exists.
module topicSubscriptions 'modules/event-subscriptions.bicep' = {
  name: 'event-subscriptions'
  params: {
    topicName: eventTopic.outputs.name
    topicIdentityId: topicIdentity.id
    functionAppId: functionApp.outputs.id
    deadLetterStorageId: hostStorage.outputs.id
    deadLetterContainerName: hostStorage.outputs.deadLetterContainerName
    subscriptions: regionSubscriptions
    deliverySchema: eventSchema
    subscriptionsEnabled: eventSubscriptionsEnabled
  }
}

// The routing front (replicas only): one login server for every region. Before the apps, whose
// settings name its host; the origins join it with their apps, the route comes last.
module frontDoor 'modules/front-door.bicep' = if (!empty(replicaLocations)) {
  name: 'front-door'
  params: {
    tags: allTags
    profileName: 'afd-${registryName}'
    endpointName: take(registryName, 46)
    probePath: frontDoorProbePath
  }
}

module homeOrigin 'modules/front-door-origin.bicep' = if (!empty(replicaLocations)) {
  name: 'front-door-origin-${regions[0].name}'
  params: {
    profileName: frontDoor.outputs.profileName
    originGroupName: frontDoor.outputs.originGroupName
    name: regions[0].name
    hostName: functionApp.outputs.defaultHostName
  }
}

// Each replica location (regions[i + 1]): refused unless sku is Premium (registrySku's allowed value).
module replicas 'modules/replica-region.bicep' = [for (replicaLocation, i) in replicaLocations: {
  name: 'replica-${regions[i + 1].name}'
  params: {
    location: replicaLocation
    tags: allTags
    registrySku: any(sku)
    regionName: regions[i + 1].name
    appName: regions[i + 1].appName
    registryStorageName: regions[i + 1].storageName
    hostStorageName: regions[i + 1].hostStorageName
    storageSkuName: storageSkuName
    queueNames: deliveryQueues
    identityId: appIdentity.id
    identityClientId: appIdentity.properties.clientId
    identityPrincipalId: appIdentity.properties.principalId
    topicIdentityId: topicIdentity.id
    topicIdentityPrincipalId: topicIdentity.properties.principalId
    appInsightsConnectionString: monitoring.outputs.connectionString
    baseSettings: registrySettings
    eventSchema: eventSchema
    deadLetterContainerName: deadLetterContainerName
    subscriptions: regionSubscriptions
    subscriptionsEnabled: eventSubscriptionsEnabled
    frontDoorProfileName: frontDoor.outputs.profileName
    frontDoorOriginGroupName: frontDoor.outputs.originGroupName
  }
}]

module frontDoorRoute 'modules/front-door-route.bicep' = if (!empty(replicaLocations)) {
  name: 'front-door-route'
  params: {
    profileName: frontDoor.outputs.profileName
    endpointName: frontDoor.outputs.endpointName
    originGroupName: frontDoor.outputs.originGroupName
  }
  dependsOn: [
    homeOrigin
    replicas
  ]
}

@description('Host name clients log in to and tag images with (docker login <host>): the Front Door\'s with replicas.')
output REGISTRY_LOGIN_SERVER string = empty(replicaLocations) ? functionApp.outputs.defaultHostName : frontDoor.outputs.hostName
@description('URL of the registry API.')
output REGISTRY_LOGIN_SERVER_URL string = 'https://${empty(replicaLocations) ? functionApp.outputs.defaultHostName : frontDoor.outputs.hostName}'
@description('Function apps of the replica regions, space-separated (the postdeploy hook publishes the package to each).')
output REPLICA_FUNCTION_APP_NAMES string = join(replicaAppNames, ' ')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output EVENT_GRID_TOPIC_ENDPOINT string = eventTopic.outputs.endpoint
output REGISTRY_STORAGE_ACCOUNT string = registryStorage.outputs.name
@description('Key Vault holding the token-signing key and the admin passwords (read by the postprovision hook).')
output KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_RESOURCE_GROUP string = resourceGroup().name
