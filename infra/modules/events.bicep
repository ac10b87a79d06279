// The Event Grid custom topic the registry publishes its events to, and one subscription per
// Event Grid-triggered function of the app. Undeliverable events are dead-lettered to a blob
// container through the topic's own identity (the storage account takes no shared keys).

param location string
param tags object
param topicName string

@description('Principal id of the function app identity, which publishes events to the topic.')
param publisherPrincipalId string

@description('Resource id of the user-assigned identity the topic writes dead letters with.')
param topicIdentityId string

param functionAppId string
param deadLetterStorageId string
param deadLetterContainerName string

@description('One entry per Event Grid-triggered function: functionName, includedEventTypes, subjectBeginsWith, subjectEndsWith.')
param subscriptions array

@description('Create the subscriptions. Event Grid checks that each function exists, so this is false until the code is published.')
param subscriptionsEnabled bool

@description('Delivery attempts and time to live before an event is dead-lettered.')
param maxDeliveryAttempts int = 30
param eventTimeToLiveInMinutes int = 1440

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
    inputSchema: 'EventGridSchema'
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

resource eventSubscriptions 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = [for sub in subscriptions: if (subscriptionsEnabled) {
  parent: topic
  name: replace(sub.functionName, '_', '-')
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${sub.functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: sub.includedEventTypes
      subjectBeginsWith: sub.subjectBeginsWith
      subjectEndsWith: sub.subjectEndsWith
      isSubjectCaseSensitive: false
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: topicIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}]

output endpoint string = topic.properties.endpoint
output name string = topic.name
