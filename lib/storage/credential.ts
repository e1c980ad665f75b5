import type { TokenCredential } from '@azure/identity';
import type * as Identity from '@azure/identity';

// Loaded on first use: @azure/identity is a large module tree, and a process on a connection string
// (a local training job's worker, which starts for every job) never needs it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const identity = (): typeof Identity => require('@azure/identity') as typeof Identity;

/**
 * An Entra credential for Azure data planes (it caches its tokens inside). In Azure, AZURE_CLIENT_ID
 * names the user-assigned managed identity; without it (a developer pointing at real Azure)
 * DefaultAzureCredential tries the usual local sources. The composition root (lib/services.ts)
 * builds one per process and hands it to every client; nothing here is cached across calls.
 */
export function azureCredential(clientId: string | undefined): TokenCredential {
  const { DefaultAzureCredential, ManagedIdentityCredential } = identity();
  return clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential();
}
