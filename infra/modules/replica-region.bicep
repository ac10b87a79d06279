// One replica region of the registry: its own registry storage (the same module, containers, tables
// and queues as the home region's), its own host storage, Event Grid topic and function app (the
// same package and settings as the home region's app, except the region's own storage, topic,
// location and REGISTRY_REGION), the topic's subscriptions to that app, and the app as an origin of
// the Front Door. Every app runs as the one user-assigned identity, which has the data roles on
// every region's storage (each region's replicator writes to the others).

param location string
param tags object

// Not read below: declaring it is the check. Azure Resource Manager refuses any other value.
@description('Replicas are a Premium feature (as in ACR): a deployment with replica regions on another SKU is refused here.')
@allowed([
  'Premium'
])
param registrySku string

@description('Name of the region in REGISTRY_REGIONS (REGISTRY_REGION of this app).')
param regionName string

param appName string
param registryStorageName string
param hostStorageName string
param storageSkuName string

@description('Queues of the registry storage (the webhook delivery queue and its poison queue).')
param queueNames array

@description('The user-assigned identity every region\'s app runs as.')
param identityId string
param identityClientId string
param identityPrincipalId string

@description('The identity Event Grid writes dead letters with.')
param topicIdentityId string
param topicIdentityPrincipalId string

param appInsightsConnectionString string

@description('The home region\'s registry settings; this region overrides only its own (regionSettings).')
param baseSettings object

param eventSchema string
param deadLetterContainerName string
param subscriptions array
param subscriptionsEnabled bool

param frontDoorProfileName string
param frontDoorOriginGroupName string

module registryStorage 'registry-storage.bicep' = {
  name: 'registry-storage-${regionName}'
  params: {
    location: location
    tags: tags
    name: registryStorageName
    skuName: storageSkuName
    principalId: identityPrincipalId
    queueNames: queueNames
  }
}

module hostStorage 'host-storage.bicep' = {
  name: 'host-storage-${regionName}'
  params: {
    location: location
    tags: tags
    name: hostStorageName
    deploymentContainerName: 'app-package'
    deadLetterContainerName: deadLetterContainerName
    appPrincipalId: identityPrincipalId
    eventsPrincipalId: topicIdentityPrincipalId
  }
}

module eventTopic 'event-topic.bicep' = {
  name: 'event-topic-${regionName}'
  params: {
    location: location
    tags: tags
    topicName: take('${appName}-events', 50)
    inputSchema: eventSchema
    publisherPrincipalId: identityPrincipalId
    topicIdentityId: topicIdentityId
  }
}

// The settings that differ from the home region's app; tests/test_infra_replicas.py keeps the list.
var regionSettings = {
  REGISTRY_REGION: regionName
  REGISTRY_LOCATION: location
  REGISTRY_RESOURCE_ID: resourceId('Microsoft.Web/sites', appName)
  REGISTRY_BLOB_ENDPOINT: registryStorage.outputs.blobEndpoint
  REGISTRY_TABLE_ENDPOINT: registryStorage.outputs.tableEndpoint
  REGISTRY_QUEUE_ENDPOINT: registryStorage.outputs.queueEndpoint
  REGISTRY_EVENTGRID_ENDPOINT: eventTopic.outputs.endpoint
}

module functionApp 'function-app.bicep' = {
  name: 'function-app-${regionName}'
  params: {
    location: location
    tags: tags
    name: appName
    planName: 'plan-${appName}'
    identityId: identityId
    identityClientId: identityClientId
    hostStorageName: hostStorage.outputs.name
    deploymentContainerUrl: hostStorage.outputs.deploymentContainerUrl
    appInsightsConnectionString: appInsightsConnectionString
    registryQueueEndpoint: registryStorage.outputs.queueEndpoint
    registrySettings: union(baseSettings, regionSettings)
    azdServiceName: ''
  }
}

module topicSubscriptions 'event-subscriptions.bicep' = {
  name: 'event-subscriptions-${regionName}'
  params: {
    topicName: eventTopic.outputs.name
    topicIdentityId: topicIdentityId
    functionAppId: functionApp.outputs.id
    deadLetterStorageId: hostStorage.outputs.id
    deadLetterContainerName: hostStorage.outputs.deadLetterContainerName
    subscriptions: subscriptions
    deliverySchema: eventSchema
    subscriptionsEnabled: subscriptionsEnabled
  }
}

module origin 'front-door-origin.bicep' = {
  name: 'front-door-origin-${regionName}'
  params: {
    profileName: frontDoorProfileName
    originGroupName: frontDoorOriginGroupName
    name: regionName
    hostName: functionApp.outputs.defaultHostName
  }
}

output name string = functionApp.outputs.name
output defaultHostName string = functionApp.outputs.defaultHostName
output registryStorageName string = registryStorage.outputs.name
