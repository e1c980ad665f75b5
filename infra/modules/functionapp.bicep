// The Sluice Function App on Flex Consumption (FC1, Linux, Node 22). It runs as the user-assigned
// identity, which also downloads the deployment package from its blob container and resolves Key
// Vault references. On Flex the runtime lives in functionAppConfig, so FUNCTIONS_WORKER_RUNTIME,
// WEBSITE_RUN_FROM_PACKAGE and WEBSITE_CONTENT* are deliberately not set.

@description('Name of the Function App (globally unique; it is the default host name).')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan and the app; the app also gets azd-service-name.')
param tags object

@description('The azd service name in azure.yaml; azd finds the app by this tag.')
param serviceName string

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Blob endpoint of the storage account holding the deployment package, ending in /.')
param storageBlobEndpoint string

@description('Name of the blob container for the deployment package.')
param deploymentContainerName string

@description('All app settings (main.bicep builds them; no secrets, only Key Vault references).')
param appSettings object

@description('Name of an app setting that receives the app\'s own origin, https://<default host name>; empty adds none.')
param hostOriginSettingName string = ''

@description('Memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound on instances; caps the cost of a traffic spike.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances of the durable function group (orchestrators, activities and entities): 0 leaves them to scale from zero.')
@minValue(0)
@maxValue(20)
param durableAlwaysReadyInstances int = 0

@description('Client id of the Microsoft Entra app registration that signs people in to the console (App Service Authentication); empty leaves authentication off.')
param authClientId string = ''

@description('Tenant of that app registration.')
param authTenantId string = tenant().tenantId

@description('Paths App Service Authentication lets through without a sign-in: the API, which keeps its function keys (the approval pages under it carry their own signed links), and the host\'s runtime endpoints, which keep their system keys.')
param authExcludedPaths array = [
  '/api/*'
  '/runtime/*'
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    // No ftpsState: Flex Consumption rejects it (FTP is not offered there at all); basic-auth
    // publishing is off below, which is what that setting meant to ensure.
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // Flex scales each function group separately; `durable` is the group of the Durable
        // triggers. A warm instance there picks up timers and approval events without a cold start.
        alwaysReady: durableAlwaysReadyInstances > 0 ? [
          {
            name: 'durable'
            instanceCount: durableAlwaysReadyInstances
          }
        ] : []
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// The host name is only known once the site exists (it may carry a generated suffix).
var hostOrigin = empty(hostOriginSettingName) ? {} : {
  '${hostOriginSettingName}': 'https://${site.properties.defaultHostName}'
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(appSettings, hostOrigin)
}

// App Service Authentication for the console (issue 18): a browser without a session is sent to
// the Microsoft Entra sign-in; /api/* is excluded and keeps its function keys. No client secret:
// with none, sign-in uses the OpenID Connect implicit flow (id tokens), whose roles claim carries
// the app roles Sluice.Viewer, Sluice.Operator and Sluice.BreakGlass (infra/console-app-roles.json).
resource auth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(authClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: authExcludedPaths
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          openIdIssuer: '${environment().authentication.loginEndpoint}${authTenantId}/v2.0'
          clientId: authClientId
        }
        validation: {
          allowedAudiences: [
            authClientId
            'api://${authClientId}'
          ]
        }
      }
    }
    // No token store: the console needs the session and the x-ms-client-principal header only,
    // and the file-system token store needs persistent storage Flex Consumption does not have.
    login: {
      tokenStore: {
        enabled: false
      }
      preserveUrlFragmentsForLogins: true
    }
  }
  // One write to the site's config at a time: the app settings first.
  dependsOn: [
    settings
  ]
}

// azd deploys with Microsoft Entra tokens; basic-auth publishing credentials stay off.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
