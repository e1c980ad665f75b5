/**
 * devhost's Durable engine: drives unmodified durable-functions 3.x orchestrations by history replay,
 * persists the task hub in a SQLite file under the data folder and serves the Durable HTTP API. See
 * docs/durable.md.
 */
import type { CreateDurableEngine, DurableEngine } from '../contracts';
import { clientBindingData, webhookPath } from './clientData';
import { readDurableConfig } from './config';
import { DurableEngineCore } from './engine';
import { DurableHttpApi } from './httpApi';
import { SqliteTaskHubStore } from './sqliteStore';
import { TaskHubStore } from './store';
import type { Logger } from '../contracts';

/** Meta key recording that a data folder's Table-storage hub (devhost ≤ 0.1) was looked for and imported. */
const importedKey = 'importedFromTableStorage';

/**
 * Opens the hub's SQLite store. On the first start on a data folder, the hub an older devhost kept in
 * Azurite Table storage is imported (in-flight orchestrations carry on) and its table deleted.
 */
async function openStore(
  dataDir: string | null,
  hubName: string,
  storageConnectionString: string | undefined,
  log: Logger,
): Promise<SqliteTaskHubStore> {
  const store = SqliteTaskHubStore.open(dataDir, hubName);
  try {
    if (dataDir === null || storageConnectionString === undefined || store.getMeta(importedKey)) return store;
    const old = await TaskHubStore.open(storageConnectionString, hubName, false);
    if (!old) {
      store.setMeta(importedKey, 'none');
      return store;
    }
    const loaded = await old.loadAll();
    store.transaction(() => {
      store.importInstances(loaded);
      store.setMeta(importedKey, old.tableName);
    });
    log.info(
      `durable: imported ${loaded.length} instance(s) of task hub '${hubName}' from Table storage ` +
        `(${old.tableName}) into ${store.location}`,
    );
    await old.drop();
    return store;
  } catch (err) {
    store.close();
    throw err;
  }
}

export const createDurableEngine: CreateDurableEngine = async (options): Promise<DurableEngine> => {
  const config = readDurableConfig(options.hostJson);
  const store = await openStore(
    options.dataDir,
    options.hubName,
    options.storageConnectionString,
    options.log,
  );
  const core = new DurableEngineCore(options, config, store);
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const urls = { baseUrl, hubName: options.hubName };
  const api = new DurableHttpApi(core, urls);
  // The client calls the same handler on the devhost port (spec §8: rpcBaseUrl must end with '/').
  const port = new URL(baseUrl).port || '80';
  const rpcBaseUrl = config.localRpcEndpointEnabled ? `http://127.0.0.1:${port}${webhookPath}/` : undefined;
  const binding = clientBindingData({ ...urls, rpcBaseUrl });
  return {
    clientBindingData: () => structuredClone(binding),
    handle: (req, res, url, body) => api.handle(req, res, url, body),
    start: () => core.restore(),
    stop: async () => {
      try {
        await core.stop();
      } finally {
        store.close();
      }
    },
  };
};

export { DurableEngineCore } from './engine';
export { SqliteTaskHubStore } from './sqliteStore';
export { TaskHubStore } from './store';
