/** Sluice's storage adapters: artifacts in Blob Storage, documents in Cosmos DB, host Table storage. */
export * from './blob';
export * from './cosmos';
export * from './errors';
export * from './health';
export * from './tableService';
export { azureCredential } from './credential';
