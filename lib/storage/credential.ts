import type { TokenCredential } from '@azure/identity';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';

const credentials = new Map<string, TokenCredential>();

/**
 * The Entra credential for Azure data planes, one per process (tokens are cached inside it). In
 * Azure, AZURE_CLIENT_ID names the user-assigned managed identity; without it (a developer pointing
 * at real Azure) DefaultAzureCredential tries the usual local sources.
 */
export function azureCredential(clientId: string | undefined): TokenCredential {
  const key = clientId ?? '';
  let credential = credentials.get(key);
  if (!credential) {
    credential = clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential();
    credentials.set(key, credential);
  }
  return credential;
}
