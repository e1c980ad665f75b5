// Cosmos DB for NoSQL, serverless (billed per request unit and GB, nothing when idle). Keys are
// off: the app reaches the data plane with its managed identity and the Cosmos DB Built-in Data
// Contributor role (roles.bicep). Data-plane roles cannot create databases or containers, so they
// are all declared here, with the partition keys lib/ uses (lib/resources.json).

@description('Name of the Cosmos DB account (3-44 lowercase letters, digits and hyphens).')
@minLength(3)
@maxLength(44)
param name string

@description('Azure region.')
param location string

@description('Tags for the account.')
param tags object

@description('Name of the SQL database.')
param databaseName string

@description('Containers to create, as in lib/resources.json.')
param containers cosmosContainer[]

@description('A container and the path of its partition key, for example /pipeline.')
type cosmosContainer = {
  name: string
  partitionKey: string
  @description('Time to live: -1 turns it on with no default (only documents with a ttl expire); absent: off.')
  defaultTtl: int?
}

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = [
  for container in containers: {
    parent: database
    name: container.name
    properties: {
      resource: {
        id: container.name
        partitionKey: {
          paths: [
            container.partitionKey
          ]
          kind: 'Hash'
          version: 2
        }
        defaultTtl: container.?defaultTtl
      }
    }
  }
]

output id string = account.id
output name string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
