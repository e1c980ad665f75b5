// Azure Communication Services Email for approval requests, reminders and outcomes. An
// Azure-managed domain (DoNotReply@<guid>.azurecomm.net) works at once; link a verified custom
// domain later for production mail. The app sends with its managed identity (roles.bicep); no
// connection string or access key is ever read.

@description('Name of the Communication Services resource.')
param communicationServiceName string

@description('Name of the Email Communication Services resource.')
param emailServiceName string

@description('Where the services store data at rest, for example United States or Europe.')
param dataLocation string

@description('Tags for the three resources.')
param tags object

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      managedDomain.id
    ]
  }
}

output id string = communication.id
output name string = communication.name
output endpoint string = 'https://${communication.properties.hostName}'
output senderAddress string = 'DoNotReply@${managedDomain.properties.mailFromSenderDomain}'
