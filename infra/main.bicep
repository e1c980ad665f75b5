// Sluice on Azure: `azd up` provisions one resource group per azd environment with everything the
// app needs, all reached through one user-assigned managed identity. No app setting holds a key or
// a connection string with a secret: storage, Cosmos DB, Application Insights, Communication
// Services and Azure ML take Microsoft Entra tokens, and the approval signing keys are Key Vault
// references. Names shared with the code (blob containers, Cosmos containers and partition keys,
// app-setting names) come from lib/resources.json.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds the resource token.')
param environmentName string

@minLength(1)
@description('Azure region for every regional resource; it must offer Flex Consumption.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person or pipeline running azd. It gets data access for troubleshooting and for rotating the signing keys; empty skips those grants.')
param principalId string = deployer().objectId

@description('Kind of principal in principalId (azd passes AZURE_PRINCIPAL_TYPE).')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

@description('Deploy Azure Communication Services Email and send approval mail through it (NOTIFIER=acs-email).')
param enableEmail bool = false

@description('Where Communication Services keeps data at rest, for example United States or Europe.')
param emailDataLocation string = 'United States'

@description('Sender address on a verified custom domain linked to the Communication Services resource; empty uses DoNotReply@ on the Azure-managed domain.')
param emailSenderAddress string = ''

@description('Deploy an Azure Machine Learning workspace for the azureml training backend.')
param enableAzureMl bool = false

@description('Azure ML environment the training jobs run in (Node.js 22 and the Sluice worker), e.g. azureml:sluice-node22:1.')
param azureMlEnvironmentId string = ''

@description('Azure ML code asset holding the compiled Sluice worker.')
param azureMlCodeId string = ''

@description('ARM id of an Azure ML compute cluster; empty runs jobs on serverless compute.')
param azureMlComputeId string = ''

@description('VM size of serverless training jobs; empty keeps the app\'s default.')
param azureMlInstanceType string = ''

@description('URL of an Azure Databricks workspace for the databricks training backend, e.g. https://adb-1234567890123456.7.azuredatabricks.net; empty leaves that backend unconfigured. The app identity must also be added to the workspace as a service principal (docs/training.md, "Azure Databricks"): no Azure role does that.')
param databricksHost string = ''

@description('Where Databricks runs see the artifact account\'s jobs container: a Unity Catalog volume /Volumes/<catalog>/<schema>/<volume> whose storage location is that container; empty uses abfss://jobs@<account>.dfs.core.windows.net.')
param databricksJobRoot string = ''

@description('Where Databricks runs see the artifact account\'s joboutputs container, the only one they may write: a Unity Catalog volume /Volumes/<catalog>/<schema>/<volume> over it (required when databricksJobRoot is a volume); empty uses abfss://joboutputs@<account>.dfs.core.windows.net.')
param databricksOutputRoot string = ''

@description('Id of the Databricks notification destination (an HTTP webhook to /api/training/databricks-events) named on every run; empty leaves the monitor to its polling.')
param databricksWebhookDestinationId string = ''

@description('Principal (object) id of the Access Connector for Azure Databricks whose managed identity is the Unity Catalog storage credential for the jobs container; empty assigns no role.')
param databricksAccessConnectorPrincipalId string = ''

@secure()
@description('A Databricks personal access token, only when the managed identity cannot be used; stored in Key Vault, the app setting is a reference to it. Empty: the app uses its managed identity.')
param databricksToken string = ''

@secure()
@description('Password (HTTP Basic) of the Databricks notification destination, checked by /api/training/databricks-events on top of the function key; stored in Key Vault. Empty: the function key alone.')
param databricksWebhookSecret string = ''

@description('GitHub App that answers custom deployment protection rules (/api/checks/github): its numeric App id. Empty: the GitHub check is off.')
param githubAppId string = ''

@secure()
@description('The GitHub App\'s private key (PEM); stored in Key Vault, the app setting is a reference to it. Needed with githubAppId on the first provision; empty afterwards keeps the stored key.')
param githubAppPrivateKey string = ''

@secure()
@description('The GitHub App\'s webhook secret, checked against X-Hub-Signature-256; stored in Key Vault. Needed with githubAppId on the first provision; empty afterwards keeps the stored secret.')
param githubWebhookSecret string = ''

@description('MLflow tracking URI every run is mirrored to (docs/mlflow.md): an http(s):// MLflow server, databricks (the workspace of databricksHost) or an Azure ML workspace\'s azureml:// URI; empty: no mirror.')
param mlflowTrackingUri string = ''

@description('MLflow model registry URI when it is not the tracking server: databricks-uc for Unity Catalog of databricksHost; empty: the tracking server.')
param mlflowRegistryUri string = ''

@description('With mlflowRegistryUri databricks-uc: the <catalog>.<schema> Sluice\'s models are registered under, e.g. main.ml.')
param mlflowUcSchema string = ''

@description('Prefix of the experiment names (experiment = prefix + pipeline); for Databricks a workspace folder such as /Shared/sluice/.')
param mlflowExperimentPrefix string = ''

@description('User name of an MLflow server with HTTP Basic authentication; empty: none.')
param mlflowTrackingUsername string = ''

@secure()
@description('Password of mlflowTrackingUsername; stored in Key Vault, the app setting is a reference to it.')
param mlflowTrackingPassword string = ''

@secure()
@description('Bearer token of the MLflow server (or a Databricks PAT); stored in Key Vault. Empty with databricks or azureml: the app uses its managed identity.')
param mlflowTrackingToken string = ''

@description('Environment of user training jobs (algorithm "custom") whose spec names none: an environment asset (azureml:name:version, azureml://registries/...) or a Docker image; empty = each spec names its own.')
param azureMlUserEnvironment string = ''

@description('Deprecated: use trainingQueuedLimitSeconds (it bounds Databricks runs too). Still sets AZUREML_QUEUED_LIMIT_SECONDS, read when TRAINING_QUEUED_LIMIT_SECONDS is unset.')
param azureMlQueuedLimitSeconds string = ''

@description('Seconds a remote training job (Azure ML or Databricks) may stay queued before it is canceled and fails with queued_too_long (a whole number); empty keeps the app\'s default (4 hours).')
param trainingQueuedLimitSeconds string = ''

@description('Incoming-webhook URL (Teams, Slack or your own) for approval notifications when email is off; empty keeps the Blob outbox.')
param notifyWebhookUrl string = ''

@description('Public origin of approval links, for a custom domain or a gateway; empty uses the Function App\'s default host name.')
param publicBaseUrl string = ''

@description('Durable Functions task hub name (3-45 letters and digits, starting with a letter). Change it to run two deployments against one storage account.')
@minLength(3)
@maxLength(45)
param taskHubName string = 'SluiceHub'

@description('Which of the two signing-key slots signs new approval links; the other slot still verifies. Switch slots to rotate.')
@allowed([
  'a'
  'b'
])
param approvalActiveKeyId string = 'a'

@description('Require App Service Authentication on approval decisions (configure an identity provider on the app first).')
param approvalRequireSignin bool = false

@description('Memory per Flex Consumption instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on Flex Consumption instances; it caps the cost of a traffic spike.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Durable Functions backend: azureStorage (queues and tables in the app\'s storage account, about 5 sequential activities per second per instance) or durableTaskScheduler (the managed Durable Task Scheduler, built for more; docs/scale.md).')
@allowed([
  'azureStorage'
  'durableTaskScheduler'
])
param durableBackend string = 'azureStorage'

@description('SKU of the Durable Task Scheduler (durableBackend = durableTaskScheduler): Consumption or Dedicated.')
@allowed([
  'Consumption'
  'Dedicated'
])
param durableSchedulerSku string = 'Consumption'

@description('Always-ready Flex Consumption instances for the durable function group (Microsoft recommends 1 for Durable Functions on Flex): timers, approval events and new runs start without a cold start, at the price of one instance billed at the always-ready rate all the time. 0 = scale from zero.')
@minValue(0)
@maxValue(20)
param durableAlwaysReadyInstances int = 1

@description('Longest wait, in seconds, between polls of an idle Durable task hub queue (Azure Storage backend; the provider\'s own default is 30). Microsoft recommends 10 or less on Flex Consumption: lower = events picked up sooner, more storage transactions while idle.')
@minValue(1)
@maxValue(30)
param durableQueuePollingSeconds int = 10

@description('Client id of the Microsoft Entra app registration for console sign-in (App Service Authentication, docs/deploy.md "Console sign-in"); empty = authentication off and the console is not protected by a sign-in.')
param consoleAuthClientId string = ''

@description('Tenant of the console\'s app registration; empty = the deployment\'s tenant.')
param consoleAuthTenantId string = ''

@description('Role the app identity gets to send mail: custom (only the send actions; deploying needs Owner or User Access Administrator to create the role) or builtIn (Communication and Email Service Owner, which can also read keys and delete the resource).')
@allowed([
  'custom'
  'builtIn'
])
param emailRole string = 'custom'

@description('Turn on Key Vault purge protection. It cannot be turned off again, and a deleted vault keeps its name taken for 90 days.')
param keyVaultPurgeProtection bool = false

// Secrets: azd generates each one once (letters and digits, so they are valid base64) and keeps it
// in the environment's config; `azd env config unset infra.parameters.<name>` makes it generate a
// new one on the next `azd provision`.

@secure()
@description('Signing key in slot a of APPROVAL_SIGNING_KEYS (64 base64 characters = 48 bytes).')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 64
      noSpecial: true
    }
  }
})
param approvalSigningKeyA string

@secure()
@description('Signing key in slot b of APPROVAL_SIGNING_KEYS (64 base64 characters = 48 bytes).')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 64
      noSpecial: true
    }
  }
})
param approvalSigningKeyB string

@secure()
@description('HMAC secret for the X-Sluice-Signature header of webhook notifications.')
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 48
      noSpecial: true
    }
  }
})
param notifyWebhookSecret string

// ---------------------------------------------------------------------------------------------
// Name overrides (empty = generated from the resource token)
// ---------------------------------------------------------------------------------------------

@description('Overrides the resource group name.')
param resourceGroupName string = ''

@description('Overrides the Function App name (globally unique).')
param functionAppName string = ''

@description('Overrides the Flex Consumption plan name.')
param functionPlanName string = ''

@description('Overrides the storage account name (globally unique, 3-24 lowercase letters and digits).')
param storageAccountName string = ''

@description('Overrides the Cosmos DB account name (globally unique).')
param cosmosAccountName string = ''

@description('Overrides the Key Vault name (globally unique, 3-24 characters).')
param keyVaultName string = ''

@description('Overrides the Log Analytics workspace name.')
param logAnalyticsName string = ''

@description('Overrides the Application Insights name.')
param applicationInsightsName string = ''

@description('Overrides the user-assigned managed identity name.')
param identityName string = ''

@description('Overrides the Communication Services name (globally unique).')
param communicationServiceName string = ''

@description('Overrides the Email Communication Services name.')
param emailServiceName string = ''

@description('Overrides the Azure ML workspace name.')
param mlWorkspaceName string = ''

@description('Overrides the Durable Task Scheduler name.')
param durableSchedulerName string = ''

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('./abbreviations.json')
var shared = loadJsonContent('../lib/resources.json')
var settingNames = shared.appSettings.azure
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
// The azd service in azure.yaml; the Function App carries it as the azd-service-name tag.
var serviceName = 'api'

var names = {
  resourceGroup: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  functionApp: !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}${resourceToken}'
  functionPlan: !empty(functionPlanName) ? functionPlanName : '${abbrs.webServerFarms}${resourceToken}'
  storage: !empty(storageAccountName) ? storageAccountName : '${abbrs.storageStorageAccounts}${resourceToken}'
  cosmos: !empty(cosmosAccountName) ? cosmosAccountName : '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
  keyVault: !empty(keyVaultName) ? keyVaultName : '${abbrs.keyVaultVaults}${resourceToken}'
  logAnalytics: !empty(logAnalyticsName) ? logAnalyticsName : '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
  applicationInsights: !empty(applicationInsightsName) ? applicationInsightsName : '${abbrs.insightsComponents}${resourceToken}'
  identity: !empty(identityName) ? identityName : '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
  communication: !empty(communicationServiceName) ? communicationServiceName : '${abbrs.communicationCommunicationServices}${resourceToken}'
  emailService: !empty(emailServiceName) ? emailServiceName : '${abbrs.communicationEmailServices}${resourceToken}'
  mlWorkspace: !empty(mlWorkspaceName) ? mlWorkspaceName : '${abbrs.machineLearningServicesWorkspaces}${resourceToken}'
  durableScheduler: !empty(durableSchedulerName) ? durableSchedulerName : '${abbrs.durableTaskSchedulers}${resourceToken}'
  mlJobsIdentity: '${abbrs.managedIdentityUserAssignedIdentities}mljobs-${resourceToken}'
  mlStorage: '${abbrs.storageStorageAccounts}ml${resourceToken}'
  mlKeyVault: '${abbrs.keyVaultVaults}ml-${resourceToken}'
}

// Flex Consumption downloads the app package from this container with the app's identity.
var deploymentContainerName = 'app-package-${take(toLower(names.functionApp), 32)}-${take(toLower(uniqueString(names.functionApp, resourceToken)), 7)}'
var blobContainerNames = concat(map(items(shared.blobContainers), container => container.value), [
  deploymentContainerName
])
var immutableContainerNames = map(items(shared.immutableBlobContainers), container => container.value)
var cosmosContainers = map(items(shared.cosmos.containers), container => container.value)
var durableNames = shared.durable
var useScheduler = durableBackend == 'durableTaskScheduler'

var secretNames = {
  approvalSigningKeys: 'approval-signing-keys'
  notifyWebhookSecret: 'notify-webhook-secret'
  databricksToken: 'databricks-token'
  databricksWebhookSecret: 'databricks-webhook-secret'
  githubAppPrivateKey: 'github-app-private-key'
  githubWebhookSecret: 'github-webhook-secret'
  mlflowTrackingPassword: 'mlflow-tracking-password'
  mlflowTrackingToken: 'mlflow-tracking-token'
}

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: names.resourceGroup
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: names.logAnalytics
    applicationInsightsName: names.applicationInsights
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: names.storage
    location: location
    tags: tags
    containerNames: blobContainerNames
    immutableContainerNames: immutableContainerNames
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: names.cosmos
    location: location
    tags: tags
    databaseName: shared.cosmos.database
    containers: cosmosContainers
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: names.keyVault
    location: location
    tags: tags
    enablePurgeProtection: keyVaultPurgeProtection
    secrets: union({
      // The keyring lib/approval/token.ts parses: {"kid":"base64 secret"}.
      '${secretNames.approvalSigningKeys}': string({
        a: approvalSigningKeyA
        b: approvalSigningKeyB
      })
      '${secretNames.notifyWebhookSecret}': notifyWebhookSecret
    }, empty(databricksToken) ? {} : {
      '${secretNames.databricksToken}': databricksToken
    }, empty(databricksWebhookSecret) ? {} : {
      '${secretNames.databricksWebhookSecret}': databricksWebhookSecret
    // Each GitHub secret only when given: a provision that does not pass it (a pipeline whose azd
    // environment lacks it) keeps the stored one instead of writing an empty key over it; the app
    // settings reference the secret by name, so they resolve to whatever is stored.
    }, empty(githubAppId) || empty(githubAppPrivateKey) ? {} : {
      '${secretNames.githubAppPrivateKey}': githubAppPrivateKey
    }, empty(githubAppId) || empty(githubWebhookSecret) ? {} : {
      '${secretNames.githubWebhookSecret}': githubWebhookSecret
    }, empty(mlflowTrackingPassword) ? {} : {
      '${secretNames.mlflowTrackingPassword}': mlflowTrackingPassword
    }, empty(mlflowTrackingToken) ? {} : {
      '${secretNames.mlflowTrackingToken}': mlflowTrackingToken
    })
  }
}

module communication 'modules/communication.bicep' = if (enableEmail) {
  name: 'communication'
  scope: rg
  params: {
    communicationServiceName: names.communication
    emailServiceName: names.emailService
    dataLocation: emailDataLocation
    tags: tags
  }
}

module ml 'modules/ml.bicep' = if (enableAzureMl) {
  name: 'ml'
  scope: rg
  params: {
    name: names.mlWorkspace
    location: location
    tags: tags
    storageAccountName: names.mlStorage
    keyVaultName: names.mlKeyVault
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    artifactStorageAccountName: storage.outputs.name
    artifactBlobEndpoint: storage.outputs.blobEndpoint
    jobsContainerName: shared.blobContainers.jobs
    jobsIdentityName: names.mlJobsIdentity
  }
}

module durable 'modules/durable.bicep' = if (useScheduler) {
  name: 'durable'
  scope: rg
  params: {
    name: names.durableScheduler
    location: location
    tags: tags
    taskHubName: taskHubName
    skuName: durableSchedulerSku
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    appPrincipalId: identity.outputs.principalId
    principalId: principalId
    principalType: principalType
    storageAccountName: storage.outputs.name
    cosmosAccountName: cosmos.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    enableEmail: enableEmail
    communicationServiceName: names.communication
    enableAzureMl: enableAzureMl
    mlWorkspaceName: names.mlWorkspace
    mlStorageAccountName: names.mlStorage
    mlJobsPrincipalId: enableAzureMl ? ml.outputs.jobsIdentityPrincipalId : ''
    jobsContainerName: shared.blobContainers.jobs
    datasetsContainerName: shared.blobContainers.datasets
    jobOutputsContainerName: shared.blobContainers.jobOutputs
    databricksAccessConnectorPrincipalId: databricksAccessConnectorPrincipalId
    emailRole: emailRole
    enableDurableTaskScheduler: useScheduler
    durableSchedulerName: useScheduler ? durable.outputs.name : ''
  }
  dependsOn: [
    communication
  ]
}

// ---------------------------------------------------------------------------------------------
// App settings: names from lib/resources.json, parsed by lib/config.ts
// ---------------------------------------------------------------------------------------------

var notifier = enableEmail ? 'acs-email' : (!empty(notifyWebhookUrl) ? 'webhook' : 'outbox')

// The Functions host and the Durable task hub (Azure Storage provider) with the managed identity.
var hostSettings = {
  '${settingNames.hostStorageAccountName}': storage.outputs.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
}

// The Durable backend. host.json names the Azure Storage provider (what devhost runs locally);
// these app settings override extensions.durableTask.storageProvider for this deployment, with the
// names from lib/resources.json (durable). The scheduler's connection uses the app identity.
var durableSettingPrefix = durableNames.storageProviderSettingPrefix
var durableSettings = useScheduler ? {
  '${durableSettingPrefix}type': durableNames.schedulerProviderType
  '${durableSettingPrefix}connectionStringName': durableNames.schedulerConnectionSetting
  '${durableNames.schedulerConnectionSetting}': 'Endpoint=${durable.outputs.endpoint};Authentication=ManagedIdentity;ClientID=${identity.outputs.clientId}'
} : {
  '${durableSettingPrefix}maxQueuePollingInterval': '00:00:${durableQueuePollingSeconds < 10 ? '0' : ''}${durableQueuePollingSeconds}'
}

var sluiceSettings = {
  '${settingNames.artifactStorageAccountUrl}': storage.outputs.blobEndpoint
  '${settingNames.cosmosEndpoint}': cosmos.outputs.endpoint
  '${settingNames.cosmosDatabase}': cosmos.outputs.databaseName
  '${settingNames.azureClientId}': identity.outputs.clientId
  '${settingNames.durableTaskHub}': taskHubName
  '${settingNames.approvalSigningKeys}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.approvalSigningKeys}/)'
  '${settingNames.approvalActiveKeyId}': approvalActiveKeyId
  '${settingNames.approvalRequireSignin}': approvalRequireSignin ? 'true' : 'false'
  '${settingNames.notifier}': notifier
}

var emailSender = !empty(emailSenderAddress) ? emailSenderAddress : (enableEmail ? communication.outputs.senderAddress : '')
var emailSettings = enableEmail ? {
  '${settingNames.acsEndpoint}': communication.outputs.endpoint
  '${settingNames.acsSender}': emailSender
} : {}

var webhookSettings = !empty(notifyWebhookUrl) ? {
  '${settingNames.notifyWebhookUrl}': notifyWebhookUrl
  '${settingNames.notifyWebhookSecret}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.notifyWebhookSecret}/)'
} : {}

// Without an override, the Function App module sets PUBLIC_BASE_URL to its own host name.
var publicBaseUrlSettings = !empty(publicBaseUrl) ? {
  '${settingNames.publicBaseUrl}': publicBaseUrl
} : {}

// The azureml training backend: where the workspace is, the worker's assets for built-in algorithms,
// and the default environment and queue limit of user jobs, if given.
var azureMlSettings = enableAzureMl ? union({
  '${settingNames.azureMlSubscriptionId}': subscription().subscriptionId
  '${settingNames.azureMlResourceGroup}': rg.name
  '${settingNames.azureMlWorkspaceName}': ml.outputs.name
  '${settingNames.azureMlJobsDatastore}': ml.outputs.jobsDatastoreName
  '${settingNames.azureMlJobIdentityClientId}': ml.outputs.jobsIdentityClientId
  '${settingNames.azureMlJobIdentityId}': ml.outputs.jobsIdentityId
}, empty(azureMlEnvironmentId) ? {} : {
  '${settingNames.azureMlEnvironmentId}': azureMlEnvironmentId
}, empty(azureMlCodeId) ? {} : {
  '${settingNames.azureMlCodeId}': azureMlCodeId
}, empty(azureMlComputeId) ? {} : {
  '${settingNames.azureMlComputeId}': azureMlComputeId
}, empty(azureMlInstanceType) ? {} : {
  '${settingNames.azureMlInstanceType}': azureMlInstanceType
}, empty(azureMlUserEnvironment) ? {} : {
  '${settingNames.azureMlUserEnvironment}': azureMlUserEnvironment
}, empty(azureMlQueuedLimitSeconds) ? {} : {
  '${settingNames.azureMlQueuedLimitSeconds}': azureMlQueuedLimitSeconds
}) : {}

// The databricks training backend: the workspace, and how runs reach Sluice's data and events.
// Secrets only as Key Vault references.
var databricksSettings = !empty(databricksHost) ? union({
  '${settingNames.databricksHost}': databricksHost
}, empty(databricksJobRoot) ? {} : {
  '${settingNames.databricksJobRoot}': databricksJobRoot
}, empty(databricksOutputRoot) ? {} : {
  '${settingNames.databricksOutputRoot}': databricksOutputRoot
}, empty(databricksWebhookDestinationId) ? {} : {
  '${settingNames.databricksWebhookDestinationId}': databricksWebhookDestinationId
}, empty(databricksToken) ? {} : {
  '${settingNames.databricksToken}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.databricksToken}/)'
}, empty(databricksWebhookSecret) ? {} : {
  '${settingNames.databricksWebhookSecret}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.databricksWebhookSecret}/)'
}) : {}

// How long a remote training job (Azure ML or Databricks) may stay queued, when given.
var trainingSettings = empty(trainingQueuedLimitSeconds) ? {} : {
  '${settingNames.trainingQueuedLimitSeconds}': trainingQueuedLimitSeconds
}

// The GitHub deployment protection rule's App: its id, and its key and webhook secret only as
// Key Vault references.
var githubSettings = !empty(githubAppId) ? {
  '${settingNames.githubAppId}': githubAppId
  '${settingNames.githubAppPrivateKey}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.githubAppPrivateKey}/)'
  '${settingNames.githubWebhookSecret}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.githubWebhookSecret}/)'
} : {}


// The MLflow mirror (docs/mlflow.md): only when a tracking URI is given; secrets as Key Vault references.
var mlflowSettings = !empty(mlflowTrackingUri) ? union({
  '${settingNames.mlflowTrackingUri}': mlflowTrackingUri
}, empty(mlflowRegistryUri) ? {} : {
  '${settingNames.mlflowRegistryUri}': mlflowRegistryUri
}, empty(mlflowUcSchema) ? {} : {
  '${settingNames.mlflowUcSchema}': mlflowUcSchema
}, empty(mlflowExperimentPrefix) ? {} : {
  '${settingNames.mlflowExperimentPrefix}': mlflowExperimentPrefix
}, empty(mlflowTrackingUsername) ? {} : {
  '${settingNames.mlflowTrackingUsername}': mlflowTrackingUsername
}, empty(mlflowTrackingPassword) ? {} : {
  '${settingNames.mlflowTrackingPassword}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.mlflowTrackingPassword}/)'
}, empty(mlflowTrackingToken) ? {} : {
  '${settingNames.mlflowTrackingToken}': '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${secretNames.mlflowTrackingToken}/)'
}) : {}

var appSettings = union(hostSettings, durableSettings, sluiceSettings, publicBaseUrlSettings, emailSettings, webhookSettings, azureMlSettings, databricksSettings, trainingSettings, githubSettings, mlflowSettings)

module api 'modules/functionapp.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: names.functionApp
    planName: names.functionPlan
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    appSettings: appSettings
    hostOriginSettingName: empty(publicBaseUrl) ? settingNames.publicBaseUrl : ''
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    durableAlwaysReadyInstances: durableAlwaysReadyInstances
    authClientId: consoleAuthClientId
    authTenantId: !empty(consoleAuthTenantId) ? consoleAuthTenantId : tenant().tenantId
  }
  // The host needs its storage roles and Key Vault access before it starts: the site and its app
  // settings (with the Key Vault references) are written only after every role assignment exists.
  // Azure RBAC may still take minutes to apply a new assignment; the postprovision hook in
  // azure.yaml then asks App Service to resolve the references again (docs/deploy.md).
  dependsOn: [
    roles
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd writes them to .azure/<env>/.env)
// ---------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
// Not AZURE_CLIENT_ID: that name would make local Azure SDK credentials try the app's identity.
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = 'https://${api.outputs.defaultHostName}'
output PUBLIC_BASE_URL string = !empty(publicBaseUrl) ? publicBaseUrl : 'https://${api.outputs.defaultHostName}'
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output ARTIFACT_STORAGE_ACCOUNT_URL string = storage.outputs.blobEndpoint
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmos.outputs.databaseName
output DURABLE_TASK_HUB string = taskHubName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output NOTIFIER string = notifier
output ACS_ENDPOINT string = enableEmail ? communication.outputs.endpoint : ''
output ACS_SENDER string = enableEmail ? emailSender : ''
output AZUREML_WORKSPACE_NAME string = enableAzureMl ? ml.outputs.name : ''
output AZUREML_JOB_IDENTITY_CLIENT_ID string = enableAzureMl ? ml.outputs.jobsIdentityClientId : ''
output DURABLE_BACKEND string = durableBackend
output DURABLE_TASK_SCHEDULER_ENDPOINT string = useScheduler ? durable.outputs.endpoint : ''
output CONSOLE_AUTH_ENABLED bool = !empty(consoleAuthClientId)
output DATABRICKS_HOST string = databricksHost
