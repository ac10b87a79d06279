// The Event Grid custom topic the registry publishes its events to. It is deployed before the
// function app, so that the app's settings can name its endpoint; the subscriptions to the app's
// functions come after the app (event-subscriptions.bicep).

param location string
param tags object
param topicName string

@description('Schema of the events the app publishes (REGISTRY_EVENTS_SCHEMA).')
@allowed([
  'EventGridSchema'
  'CloudEventSchemaV1_0'
])
param inputSchema string

@description('Principal id of the function app identity, which publishes events to the topic.')
param publisherPrincipalId string

@description('Resource id of the user-assigned identity the topic writes dead letters with.')
param topicIdentityId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: topicName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${topicIdentityId}': {}
    }
  }
  //checkov:skip=CKV_AZURE_193: the function app on Flex Consumption without a virtual network publishes over the public endpoint; access needs an Entra ID token (local auth is disabled)
  properties: {
    inputSchema: inputSchema
    publicNetworkAccess: 'Enabled'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, publisherPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    principalId: publisherPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
  }
}

output name string = topic.name
output endpoint string = topic.properties.endpoint
