// One Event Grid subscription per Event Grid-triggered function of the app, on the registry's
// topic. Undeliverable events are dead-lettered to a blob container through the topic's own
// identity (the storage account takes no shared keys).

param topicName string

@description('Resource id of the user-assigned identity the topic writes dead letters with.')
param topicIdentityId string

param functionAppId string
param deadLetterStorageId string
param deadLetterContainerName string

@description('One entry per Event Grid-triggered function: functionName, includedEventTypes, subjectBeginsWith, subjectEndsWith.')
param subscriptions array

@description('Create the subscriptions. Event Grid checks that each function exists, so this is false until the code is published.')
param subscriptionsEnabled bool

@description('Delivery attempts before an event is dead-lettered.')
param maxDeliveryAttempts int = 30

@description('Minutes an event is retried before it is dead-lettered.')
param eventTimeToLiveInMinutes int = 1440

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
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
