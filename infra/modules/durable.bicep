// The Durable Task Scheduler backend (durableBackend = durableTaskScheduler): a managed scheduler
// and the task hub the app's orchestrations run in. The app connects with its user-assigned
// identity (DURABLE_TASK_SCHEDULER_CONNECTION_STRING, Authentication=ManagedIdentity) and holds
// Durable Task Data Contributor on the scheduler (roles.bicep). With the Azure Storage backend this
// module is not deployed.

@description('Name of the scheduler (3-64 letters, digits and hyphens).')
@minLength(3)
@maxLength(64)
param name string

@description('Azure region.')
param location string

@description('Tags for the scheduler.')
param tags object

@description('Name of the task hub; the same name host.json reads from DURABLE_TASK_HUB.')
param taskHubName string

@description('Consumption (billed per action, no minimum) or Dedicated (reserved capacity units).')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Capacity units of a Dedicated scheduler; ignored for Consumption.')
@minValue(1)
@maxValue(3)
param skuCapacity int = 1

@description('Addresses allowed to reach the scheduler; an empty list blocks everything, so the default admits all and access rests on Entra ID roles.')
param ipAllowlist array = [
  '0.0.0.0/0'
]

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    sku: skuName == 'Dedicated' ? {
      name: skuName
      capacity: skuCapacity
    } : {
      name: skuName
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

output name string = scheduler.name
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
