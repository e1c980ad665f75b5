// Optional Azure Machine Learning workspace for the azureml training backend. Sluice submits command
// jobs on serverless compute through the REST API with its managed identity (AzureML Data Scientist,
// roles.bicep), so no compute cluster is created and nothing is billed while no job runs. The
// workspace gets its own storage account and vault; both use Microsoft Entra ID only.
//
// Jobs run as their own user-assigned identity (jobsIdentity), attached to the workspace: serverless
// compute cannot use the workspace's system-assigned identity, and a separate identity keeps what a
// training job (possibly the team's own code) may touch apart from what the app may.

@description('Name of the workspace (3-33 letters, digits, hyphens and underscores).')
@minLength(3)
@maxLength(33)
param name string

@description('Azure region.')
param location string

@description('Tags for the workspace and its dependencies.')
param tags object

@description('Name of the storage account the workspace keeps its system datastores in.')
@minLength(3)
@maxLength(24)
param storageAccountName string

@description('Name of the vault the workspace keeps its own secrets in.')
@minLength(3)
@maxLength(24)
param keyVaultName string

@description('Resource id of the Application Insights component shared with the app.')
param applicationInsightsId string

@description('Name of Sluice\'s artifact storage account, whose jobs container user jobs read their data from and write their model to.')
param artifactStorageAccountName string

@description('Blob endpoint of the artifact storage account, e.g. https://st.blob.core.windows.net/.')
param artifactBlobEndpoint string

@description('Name of the artifact container that holds the jobs\' data and outputs.')
param jobsContainerName string

@description('Name of the user-assigned identity training jobs run as.')
param jobsIdentityName string

resource jobsIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: jobsIdentityName
  location: location
  tags: tags
}

resource mlStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource mlVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'Default'
  sku: {
    name: 'Basic'
    tier: 'Basic'
  }
  // The system identity stays the workspace's own (its storage, vault and Application Insights); the
  // user-assigned one is attached so jobs may name it.
  identity: {
    type: 'SystemAssigned,UserAssigned'
    userAssignedIdentities: {
      '${jobsIdentity.id}': {}
    }
  }
  properties: {
    friendlyName: 'Sluice training'
    storageAccount: mlStorage.id
    keyVault: mlVault.id
    applicationInsights: applicationInsightsId
    // The workspace reaches its own storage with its identity, since shared keys are off.
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: 'Enabled'
    v1LegacyMode: false
  }
}

// Sluice's jobs container as a datastore with identity-based access (no keys or SAS): user jobs name
// their inputs and output as azureml://datastores/sluicejobs/paths/<jobId>/..., and the compute
// reaches the data with the job's identity (jobsIdentity), which roles.bicep lets read and write there.
resource jobsDatastore 'Microsoft.MachineLearningServices/workspaces/datastores@2025-06-01' = {
  parent: workspace
  name: 'sluicejobs'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: artifactStorageAccountName
    containerName: jobsContainerName
    endpoint: replace(replace(artifactBlobEndpoint, 'https://${artifactStorageAccountName}.blob.', ''), '/', '')
    protocol: 'https'
    credentials: {
      credentialsType: 'None'
    }
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
    description: 'Sluice training jobs: staged data in, model folders out'
  }
}

// The workspace's Event Grid system topic: Azure ML publishes job status changes to it. A webhook
// subscription to the app's /api/events/training is added after the first deploy (Event Grid
// validates the endpoint when the subscription is created, so the code must be running; see
// docs/training.md). The topic itself costs nothing while no subscription exists.
resource jobEvents 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${replace(name, '_', '-')}-events'
  location: location
  tags: tags
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

output id string = workspace.id
output eventsTopicName string = jobEvents.name
output name string = workspace.name
output principalId string = workspace.identity.principalId
output jobsIdentityId string = jobsIdentity.id
output jobsIdentityClientId string = jobsIdentity.properties.clientId
output jobsIdentityPrincipalId string = jobsIdentity.properties.principalId
output storageAccountName string = mlStorage.name
output jobsDatastoreName string = jobsDatastore.name
output subscriptionId string = subscription().subscriptionId
output resourceGroupName string = resourceGroup().name
