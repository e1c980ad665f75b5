// Every role assignment Sluice needs, in one place. The app's user-assigned identity gets exactly
// the data-plane roles for the services the code calls; the deployer (azd's principal) gets data
// access for troubleshooting and rotating the approval signing keys.

@description('Principal (object) id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Principal id of the person or pipeline running azd; empty skips the deployer roles.')
param principalId string = ''

@description('Kind of principal in principalId: User for a person, ServicePrincipal for CI.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Name of the storage account (host storage, artifacts, deployment package).')
param storageAccountName string

@description('Name of the Cosmos DB account.')
param cosmosAccountName string

@description('Name of the Key Vault holding the approval signing keys.')
param keyVaultName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Whether Communication Services Email is deployed.')
param enableEmail bool = false

@description('Name of the Communication Services resource (used when enableEmail).')
param communicationServiceName string = ''

@description('Whether the Azure Machine Learning workspace is deployed.')
param enableAzureMl bool = false

@description('Name of the Azure ML workspace (used when enableAzureMl).')
param mlWorkspaceName string = ''

@description('Name of the Azure ML workspace\'s own storage account, where user code is uploaded as code assets (used when enableAzureMl).')
param mlStorageAccountName string = ''

@description('How the app identity may send mail: custom = a custom role with only the send actions (the deployer needs Microsoft.Authorization/roleDefinitions/write, as Owner or User Access Administrator have); builtIn = Communication and Email Service Owner, which also lists keys and deletes the resource.')
@allowed([
  'custom'
  'builtIn'
])
param emailRole string = 'custom'

@description('Principal id of the user-assigned identity Azure ML training jobs run as (used when enableAzureMl).')
param mlJobsPrincipalId string = ''

@description('Whether the Durable Task Scheduler is the Durable backend (durableBackend = durableTaskScheduler).')
param enableDurableTaskScheduler bool = false

@description('Name of the Durable Task Scheduler (used when enableDurableTaskScheduler).')
param durableSchedulerName string = ''

@description('Name of the artifact account\'s jobs container: Sluice\'s records of each job and the data staged for it. Job identities may read it, never write it.')
param jobsContainerName string = 'jobs'

@description('Name of the artifact account\'s datasets container (the Azure ML worker mode reads the dataset blob from it).')
param datasetsContainerName string = 'datasets'

@description('Name of the artifact account\'s container Databricks runs write their model folders to (joboutputs/<jobId>/).')
param jobOutputsContainerName string = 'joboutputs'

@description('Principal id of the Access Connector for Azure Databricks (the Unity Catalog storage credential of the jobs container); empty assigns nothing.')
param databricksAccessConnectorPrincipalId string = ''

// Built-in role definition ids, from the builtInRoleNames maps of Azure Verified Modules unless a
// comment names another source. Check one with: az role definition list --name "<role name>".
var roles = {
  // Storage Blob Data Contributor: read, write and delete blobs (training jobs' data and models,
  // user code uploads to the Azure ML workspace's storage, the deployer).
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  // Storage Blob Data Reader: read blobs only (what training jobs get on their inputs).
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  // Storage Blob Data Owner: the Functions host's documented minimum on its host storage
  // account with an identity (the Durable and Flex Consumption samples grant it too); it also
  // covers Sluice's artifact containers and the Flex deployment package on the same account.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // Storage Queue Data Contributor: the Durable task hub's control and work-item queues.
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Storage Table Data Contributor: the Durable task hub's instances and history tables.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Key Vault Secrets User: read secret values (Key Vault references in app settings).
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Key Vault Secrets Officer: create and rotate secrets (the deployer, for the signing keys).
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  // Monitoring Metrics Publisher: send telemetry to Application Insights with Entra auth
  // (source: the azd templates' rbac.bicep).
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Communication and Email Service Owner: can send with Entra auth, but also lists and regenerates
  // the access keys and deletes the resource; only with emailRole = builtIn (source: public Bicep
  // templates, not AVM).
  communicationAndEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
  // Durable Task Data Contributor: start, run and manage orchestrations and entities in a Durable
  // Task Scheduler's task hubs (source: the Durable Functions azd templates; built-in-roles/integration).
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
  // AzureML Data Scientist: create, read and cancel jobs in the workspace (not its compute or RBAC).
  azureMlDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  // Cosmos DB Built-in Data Contributor: read and write items. A data-plane role: it is one of the
  // account's sqlRoleDefinitions, not a Microsoft.Authorization role definition.
  cosmosDbBuiltInDataContributor: '00000000-0000-0000-0000-000000000002'
}

var grantDeployer = !empty(principalId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' existing = {
  name: cosmosAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' existing = if (enableEmail) {
  name: communicationServiceName
}

resource mlWorkspace 'Microsoft.MachineLearningServices/workspaces@2025-06-01' existing = if (enableAzureMl) {
  name: mlWorkspaceName
}

var grantConnector = !empty(databricksAccessConnectorPrincipalId)

resource jobsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = if (enableAzureMl || grantConnector) {
  name: '${storageAccountName}/default/${jobsContainerName}'
}

resource datasetsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = if (enableAzureMl) {
  name: '${storageAccountName}/default/${datasetsContainerName}'
}

resource jobOutputsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = if (grantConnector) {
  name: '${storageAccountName}/default/${jobOutputsContainerName}'
}

resource mlStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = if (enableAzureMl) {
  name: mlStorageAccountName
}

// ---- The app's identity ----

resource appBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTableData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appCosmosData 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: cosmos
  name: guid(cosmos.id, appPrincipalId, roles.cosmosDbBuiltInDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${roles.cosmosDbBuiltInDataContributor}'
    principalId: appPrincipalId
    scope: cosmos.id
  }
}

resource appVaultSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Sending mail with Entra auth. The built-in roles that can send (Communication and Email Service
// Owner, Contributor) also read and regenerate the access keys and delete the resource; Microsoft's
// documented minimum for an Entra principal that sends is a custom role with these three actions
// (Communication Services docs, "Use a custom role to limit permissions granted to the Microsoft
// Entra Application"). No data action exists for email, so nothing narrower is possible.
resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (enableEmail && emailRole == 'custom') {
  name: guid(resourceGroup().id, 'sluice-email-sender')
  properties: {
    // Custom role names are unique per Microsoft Entra tenant, and resource group names repeat
    // across subscriptions: the suffix keeps two deployments' roles apart.
    roleName: 'Sluice Email Sender (${resourceGroup().name} ${take(uniqueString(resourceGroup().id), 6)})'
    description: 'Send email through the Communication Services resource of this Sluice deployment; no keys, no delete.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read'
          'Microsoft.Communication/CommunicationServices/Write'
          'Microsoft.Communication/EmailServices/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

var emailRoleDefinitionId = emailRole == 'custom' ? emailSenderRole.id : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.communicationAndEmailServiceOwner)

resource appEmail 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableEmail) {
  name: guid(communication.id, appPrincipalId, emailRoleDefinitionId)
  scope: communication
  properties: {
    roleDefinitionId: emailRoleDefinitionId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource durableScheduler 'Microsoft.DurableTask/schedulers@2025-11-01' existing = if (enableDurableTaskScheduler) {
  name: durableSchedulerName
}

// The Durable Task Scheduler backend: the host's worker and client both connect with the app identity.
resource appDurableTasks 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableDurableTaskScheduler) {
  name: guid(durableScheduler.id, appPrincipalId, roles.durableTaskDataContributor)
  scope: durableScheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMlJobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableAzureMl) {
  name: guid(mlWorkspace.id, appPrincipalId, roles.azureMlDataScientist)
  scope: mlWorkspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMlDataScientist)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// User jobs (algorithm "custom") upload the user's code folder to the workspace's default datastore
// (its own storage account, shared keys off) before creating the code asset, as the Azure ML SDK does.
resource appMlCode 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableAzureMl) {
  name: guid(mlStorage.id, appPrincipalId, roles.storageBlobDataContributor)
  scope: mlStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- The Azure ML jobs' identity, which training jobs (and the user code in them) run as: a
// user-assigned identity attached to the workspace (ml.bicep; serverless compute cannot use the
// workspace's system-assigned identity). Read-only on their inputs, and no write role anywhere on
// the artifact account: a job writes only its own output container, through a datastore of its own
// whose credential is a SAS for that container alone (lib/training/userJob/outputGrant.ts), so it
// can touch neither Sluice's records in the jobs container nor another job's output nor the
// registry's models. ----

resource mlJobsRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableAzureMl) {
  name: guid(jobsContainer.id, mlJobsPrincipalId, roles.storageBlobDataReader)
  scope: jobsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: mlJobsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Serverless jobs also read their code snapshot (code assets) from the workspace's own storage.
resource mlJobsIdentityCode 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableAzureMl) {
  name: guid(mlStorage.id, mlJobsPrincipalId, roles.storageBlobDataReader)
  scope: mlStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: mlJobsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource mlDatasetsRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enableAzureMl) {
  name: guid(datasetsContainer.id, mlJobsPrincipalId, roles.storageBlobDataReader)
  scope: datasetsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: mlJobsPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- The Databricks access connector's identity (the Unity Catalog storage credential runs use):
// runs read their data from the jobs container and write their model folder to the joboutputs
// container (through external locations or volumes over them), and nothing else of the account.
// Sluice's records stay in the jobs container, which the connector can only read. The app
// identity's own access to Databricks is not an Azure role: it is added to the workspace as a
// service principal (docs/training.md, "Azure Databricks"). ----

resource databricksJobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantConnector) {
  name: guid(jobsContainer.id, databricksAccessConnectorPrincipalId, roles.storageBlobDataReader)
  scope: jobsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: databricksAccessConnectorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource databricksOutputs 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantConnector) {
  name: guid(jobOutputsContainer.id, databricksAccessConnectorPrincipalId, roles.storageBlobDataContributor)
  scope: jobOutputsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: databricksAccessConnectorPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// ---- The deployer ----

resource deployerBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployer) {
  name: guid(storage.id, principalId, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

// Cosmos DB locks the account while it writes a data-plane role assignment: two created at once
// fail with 412 (precondition failed), so this one waits for the app's.
resource deployerCosmosData 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = if (grantDeployer) {
  parent: cosmos
  name: guid(cosmos.id, principalId, roles.cosmosDbBuiltInDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${roles.cosmosDbBuiltInDataContributor}'
    principalId: principalId
    scope: cosmos.id
  }
  dependsOn: [
    appCosmosData
  ]
}

resource deployerVaultSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployer) {
  name: guid(vault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: principalType
  }
}
