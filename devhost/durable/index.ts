/**
 * devhost's Durable engine: drives unmodified durable-functions 3.x orchestrations by history replay,
 * persists the task hub in a SQLite file under the data folder and serves the Durable HTTP API. See
 * docs/durable.md.
 */
import type { CreateDurableEngine, DurableEngine } from '../contracts';
import { durableSystemKeyName } from '../http/keys';
import { clientBindingData, webhookPath } from './clientData';
import { readDurableConfig } from './config';
import { DurableEngineCore } from './engine';
import { DurableHttpApi } from './httpApi';
import { openTaskHubStore } from './sqliteStore';

export const createDurableEngine: CreateDurableEngine = async (options): Promise<DurableEngine> => {
  const config = readDurableConfig(options.hostJson);
  const store = await openTaskHubStore(
    options.dataDir,
    options.hubName,
    options.storageConnectionString,
    options.log,
  );
  const core = new DurableEngineCore(options, config, store);
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const systemKey = options.keys?.systemKeys.get(durableSystemKeyName);
  const urls = { baseUrl, hubName: options.hubName, ...(systemKey === undefined ? {} : { systemKey }) };
  const api = new DurableHttpApi(core, urls, options.keys);
  // The client calls the same handler on the devhost port (spec §8: rpcBaseUrl must end with '/'). With
  // keys on, its URL carries the handler's own secret path, since the client drops a base URL's query.
  const port = new URL(baseUrl).port || '80';
  const rpcBaseUrl = config.localRpcEndpointEnabled
    ? `http://127.0.0.1:${port}${webhookPath}/${api.rpcPath()}`
    : undefined;
  const binding = clientBindingData({ ...urls, rpcBaseUrl });
  return {
    clientBindingData: () => structuredClone(binding),
    handle: (req, res, url, body) => api.handle(req, res, url, body),
    admits: (req, url) => api.admits(req, url),
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
