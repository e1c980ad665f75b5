import type { TokenCredential } from '@azure/identity';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';

/**
 * An Entra credential for Azure data planes (it caches its tokens inside). In Azure, AZURE_CLIENT_ID
 * names the user-assigned managed identity; without it (a developer pointing at real Azure)
 * DefaultAzureCredential tries the usual local sources. The composition root (lib/services.ts)
 * builds one per process and hands it to every client; nothing here is cached across calls.
 */
export function azureCredential(clientId: string | undefined): TokenCredential {
  return clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential();
}
