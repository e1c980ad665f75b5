import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EmbeddedServices, EmbeddedServicesOptions } from '../contracts';
import { startAzurite, type AzuriteHandle } from './azurite';
import { startCosmosEmulator, type CosmosEmulatorHandle } from './cosmos';
import { lockDataDir } from './lock';
import { assertPortsFree } from './ports';

export { PortInUseError, portFlags } from './ports';
export type { ServiceName } from './ports';
export { AZURITE_ACCOUNT, AZURITE_KEY, COSMOS_EMULATOR_KEY } from './wellKnown';

export interface RunningServices extends EmbeddedServices {
  /** The ports actually bound (useful when 0 asked for free ones). */
  ports: { blob: number; queue: number; table: number; cosmos: number };
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
  /** Absolute data folder, or null when everything is in memory. */
  dataDir: string | null;
  /** Writes the Cosmos snapshot now if anything changed (the host may call it on its own schedule). */
  flush(): Promise<void>;
}

export interface StartServicesOptions extends EmbeddedServicesOptions {
  /** How often the Cosmos emulator's state is written to `<dataDir>/cosmos/snapshot.json` (default 2 s). */
  cosmosSnapshotIntervalMs?: number;
}

/**
 * Starts Azurite (Blob, Queue, Table; child process) and the Cosmos DB emulator (in process), both
 * on loopback, with data under `<dataDir>/azurite` and `<dataDir>/cosmos`, or in memory when
 * `dataDir` is null. Fixed ports already taken fail with PortInUseError naming the devhost flag.
 */
export async function startServices(opts: StartServicesOptions): Promise<RunningServices> {
  const { log } = opts;
  const dataDir = opts.dataDir === null ? null : resolve(opts.dataDir);
  const ports = opts.ports ?? {};
  await assertPortsFree(ports);

  let unlock: (() => Promise<void>) | undefined;
  if (dataDir !== null) {
    await mkdir(dataDir, { recursive: true });
    if (!opts.dataDirLocked) unlock = await lockDataDir(dataDir);
  }

  // The Cosmos emulator first: it starts in milliseconds and fails fast on a damaged snapshot,
  // before Azurite's few seconds of start-up are spent.
  let cosmos: CosmosEmulatorHandle;
  let azurite: AzuriteHandle;
  try {
    cosmos = await startCosmosEmulator({
      location: dataDir === null ? null : join(dataDir, 'cosmos'),
      port: ports.cosmos,
      log,
      snapshotIntervalMs: opts.cosmosSnapshotIntervalMs,
      // DEVHOST_COSMOS_QUERIES=library runs the emulator's queries as the library ships them
      // (bench:console's "before" figures); anything else, the linear executor.
      queries: process.env.DEVHOST_COSMOS_QUERIES === 'library' ? 'library' : 'linear',
    });
  } catch (err) {
    await unlock?.();
    throw err;
  }
  try {
    azurite = await startAzurite({
      location: dataDir === null ? null : join(dataDir, 'azurite'),
      ports: { blob: ports.blob, queue: ports.queue, table: ports.table },
      log,
    });
  } catch (err) {
    await cosmos.stop().catch(() => undefined);
    await unlock?.();
    throw err;
  }

  const storageConnectionString = azurite.connectionString;
  const env: Record<string, string> = {
    AzureWebJobsStorage: storageConnectionString,
    ARTIFACT_STORAGE_CONNECTION: storageConnectionString,
    COSMOS_ENDPOINT: cosmos.endpoint,
    COSMOS_KEY: cosmos.key,
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const results = await Promise.allSettled([cosmos.stop(), azurite.stop()]);
      await unlock?.();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      log.info('embedded services stopped');
    })();
    return stopping;
  };

  return {
    env,
    storageConnectionString,
    cosmosEndpoint: cosmos.endpoint,
    cosmosKey: cosmos.key,
    ports: { ...azurite.ports, cosmos: cosmos.port },
    blobEndpoint: azurite.endpoints.blob,
    queueEndpoint: azurite.endpoints.queue,
    tableEndpoint: azurite.endpoints.table,
    dataDir,
    flush: () => cosmos.flush(),
    stop,
  };
}
