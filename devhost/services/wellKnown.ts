/**
 * Credentials that the local emulators accept. They are published by Microsoft for the Azurite and
 * Cosmos DB emulators, protect nothing, and must never appear in Azure app settings.
 */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const COSMOS_EMULATOR_KEY =
  'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

/** Every embedded service listens on IPv4 loopback only. */
export const LOOPBACK = '127.0.0.1';

export interface StorageEndpoints {
  blob: string;
  queue: string;
  table: string;
}

/** An Azurite connection string with explicit per-service endpoints (path-style, account in the path). */
export function azuriteConnectionString(endpoints: StorageEndpoints): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=${endpoints.blob}`,
    `QueueEndpoint=${endpoints.queue}`,
    `TableEndpoint=${endpoints.table}`,
  ].join(';');
}
