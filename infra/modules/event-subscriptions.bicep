// One Event Grid subscription per Event Grid-triggered function of the app, on the registry's
// topic. Undeliverable events are dead-lettered to a blob container through the topic's own
// identity (the storage account takes no shared keys).

param topicName string

@description('Resource id of the user-assigned identity the topic writes dead letters with.')
param topicIdentityId string

param functionAppId string
param deadLetterStorageId string
param deadLetterContainerName string

@description('One entry per Event Grid-triggered function: name, functionName, includedEventTypes, subjectBeginsWith, subjectEndsWith, maxDeliveryAttempts, eventTimeToLiveInMinutes, deadLetter.')
param subscriptions array

@description('Schema events are delivered in; the topic\'s input schema.')
param deliverySchema string

@description('Create the subscriptions. Event Grid checks that each function exists, so this is false until the code is published.')
param subscriptionsEnabled bool

resource topic 'Microsoft.EventGrid/topics@2025-02-15' existing = {
  name: topicName
}

resource eventSubscriptions 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = [for sub in subscriptions: if (subscriptionsEnabled) {
  parent: topic
  name: sub.name
  properties: {
    eventDeliverySchema: deliverySchema
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
      // Subscription.matches in shared/kernel/jobs.py compares subjects case-sensitively.
      isSubjectCaseSensitive: true
    }
    retryPolicy: {
      maxDeliveryAttempts: sub.maxDeliveryAttempts
      eventTimeToLiveInMinutes: sub.eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: (sub.deadLetter) ? {
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
    } : null
  }
}]
