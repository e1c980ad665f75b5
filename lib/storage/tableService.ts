import { TableServiceClient } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import type { Config } from '../config';
import { NonRetriableError } from '../errors';
import { azureCredential } from './credential';
import { mapStorageError } from './errors';

/**
 * Table storage of the Functions host (where the Durable task hub lives): the `AzureWebJobsStorage`
 * connection string locally, or the identity-based `AzureWebJobsStorage__accountName` in Azure.
 */
export function createHostTableService(
  config: Pick<Config, 'AzureWebJobsStorage' | 'AzureWebJobsStorage__accountName' | 'AZURE_CLIENT_ID'>,
  credential?: TokenCredential,
): TableServiceClient {
  const connection = config.AzureWebJobsStorage;
  if (connection) {
    const insecure = /UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;|TableEndpoint=http:/i.test(
      connection,
    );
    return TableServiceClient.fromConnectionString(connection, { allowInsecureConnection: insecure });
  }
  if (config.AzureWebJobsStorage__accountName) {
    const url = `https://${config.AzureWebJobsStorage__accountName}.table.core.windows.net`;
    return new TableServiceClient(url, credential ?? azureCredential(config.AZURE_CLIENT_ID));
  }
  throw new NonRetriableError(
    'TABLE_STORAGE_UNSET',
    'set AzureWebJobsStorage (local) or AzureWebJobsStorage__accountName (Azure) for host Table storage',
  );
}

/** Lists at most one table: proves the endpoint answers and the credential may read. */
export async function pingTables(service: TableServiceClient, abortSignal?: AbortSignal): Promise<void> {
  try {
    await service.listTables({ abortSignal }).byPage({ maxPageSize: 1 }).next();
  } catch (err) {
    throw mapStorageError(err, 'table', 'list tables');
  }
}
