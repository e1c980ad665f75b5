/**
 * Real emulators for integration tests, each on a free loopback port, started and stopped by the
 * test: Azurite's Blob service (in-memory) and the Cosmos DB emulator (@vercel/cosmosdb-server over
 * HTTP, so clients turn endpoint discovery off).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { CosmosClient } from '@azure/cosmos';
import type { Container } from '@azure/cosmos';
import { createHttpServer } from '@vercel/cosmosdb-server';
import { AZURITE_ACCOUNT, AZURITE_KEY, COSMOS_EMULATOR_KEY } from '../../devhost/services/wellKnown';
import { startCosmosEmulator } from '../../devhost/services/cosmos';
import { repoRoot as findRepoRoot } from '../../cli/localSluice';
import { memoryLog } from '../devhost/servicesLog';
import resources from '../../lib/resources.json';
import { CosmosStore, createCosmosClient } from '../../lib/storage';

// The repository, from the sources or from dist/ (benchmarks start Azurite through this too).
const root = findRepoRoot(__dirname);

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface BlobEmulator {
  connectionString: string;
  stop(): Promise<void>;
}

export async function startAzuriteBlob(): Promise<BlobEmulator> {
  const port = await freePort();
  const bin = path.join(root, 'node_modules', 'azurite', 'dist', 'src', 'blob', 'main.js');
  const proc = spawn(
    process.execPath,
    [
      bin,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--inMemoryPersistence',
      '--disableTelemetry',
      '--skipApiVersionCheck',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start: ${out}`)), 30_000);
    const onData = (c: Buffer) => {
      out += c.toString();
      if (/successfully listens/i.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`Azurite exited ${code}: ${out}`)));
  });
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

export interface CosmosEmulator {
  endpoint: string;
  key: string;
  client: CosmosClient;
  stop(): Promise<void>;
}

export async function startCosmos(): Promise<CosmosEmulator> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new CosmosClient({
    endpoint,
    key: COSMOS_EMULATOR_KEY,
    connectionPolicy: { enableEndpointDiscovery: false },
  });
  return {
    endpoint,
    key: COSMOS_EMULATOR_KEY,
    client,
    stop: async () => {
      client.dispose();
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A CosmosStore on an emulator (this file's or devhost's), with its client built by the app's own
 * `createCosmosClient` from key settings. The caller runs `ensure()` and disposes `store.client`.
 */
export function cosmosStoreOn(emulator: { endpoint: string; key: string }): CosmosStore {
  return new CosmosStore(
    createCosmosClient({
      COSMOS_ENDPOINT: emulator.endpoint,
      COSMOS_KEY: emulator.key,
      AZURE_CLIENT_ID: undefined,
    }),
  );
}

/** The app's Cosmos container `key` (lib/resources.json) on the emulator, created with its partition key. */
export async function cosmosContainer(
  emulator: CosmosEmulator,
  key: keyof typeof resources.cosmos.containers,
): Promise<Container> {
  const { database } = await emulator.client.databases.createIfNotExists({ id: resources.cosmos.database });
  const spec = resources.cosmos.containers[key];
  const { container } = await database.containers.createIfNotExists({
    id: spec.name,
    partitionKey: { paths: [spec.partitionKey] },
  });
  return container;
}

/**
 * devhost's Cosmos emulator, in memory, with the app's database and containers created and a
 * CosmosStore on it; `stop()` disposes the client and stops the emulator.
 */
export async function startCosmosStore(): Promise<{ cosmos: CosmosStore; stop(): Promise<void> }> {
  const emulator = await startCosmosEmulator({ location: null, log: memoryLog() });
  const cosmos = cosmosStoreOn(emulator);
  await cosmos.ensure();
  return {
    cosmos,
    stop: async () => {
      cosmos.client.dispose();
      await emulator.stop();
    },
  };
}
