import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableClient } from '@azure/data-tables';
import { CosmosClient, type Container } from '@azure/cosmos';
import { startServices, type RunningServices } from '../../devhost/services';
import { startAzurite } from '../../devhost/services/azurite';
import { memoryLog } from './servicesLog';

const cosmosOf = (s: RunningServices) =>
  new CosmosClient({
    endpoint: s.cosmosEndpoint,
    key: s.cosmosKey,
    connectionPolicy: { enableEndpointDiscovery: false },
  });

async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i += 1) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

// Each test starts and stops the services (Azurite takes seconds to load) up to twice.
jest.setTimeout(180_000);

describe('embedded services on a data folder', () => {
  let dataDir: string;
  const log = memoryLog();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sluice-services-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps Blob, Table and the exact Cosmos state across a restart', async () => {
    // A long interval: only the snapshot written by stop() can carry the state.
    let services = await startServices({ dataDir, log, cosmosSnapshotIntervalMs: 3_600_000 });
    let client = cosmosOf(services);
    let before: Record<string, { _etag: string; _rid: string; _ts: number }>;
    let staleForReplace: string;
    try {
      const blobs = BlobServiceClient.fromConnectionString(services.storageConnectionString);
      await blobs.getContainerClient('kept').create();
      await blobs.getContainerClient('kept').getBlockBlobClient('x/y.txt').upload('blob body', 9);
      const table = TableClient.fromConnectionString(services.storageConnectionString, 'Kept', {
        allowInsecureConnection: true,
      });
      await table.createTable();
      await table.createEntity({ partitionKey: 'p', rowKey: 'r', n: 7 });

      const { database } = await client.databases.createIfNotExists({ id: 'app' });
      const { container } = await database.containers.createIfNotExists({
        id: 'runs',
        partitionKey: { paths: ['/pipeline'] },
        uniqueKeyPolicy: { uniqueKeys: [{ paths: ['/slot'] }] },
      });
      await database.containers.createIfNotExists({ id: 'models', partitionKey: { paths: ['/modelName'] } });
      for (const id of ['a', 'b', 'c', 'd'])
        await container.items.create({ id, pipeline: 'iris', slot: id, v: 1 });
      const b = await container.item('b', 'iris').read();
      await container.item('b', 'iris').replace({ ...b.resource, v: 2 });
      await container.item('c', 'iris').delete();
      const d = await container.item('d', 'iris').read();
      staleForReplace = d.etag;
      const { resources: docs } = await container.items.readAll().fetchAll();
      before = Object.fromEntries(docs.map((x) => [x.id, { _etag: x._etag!, _rid: x._rid!, _ts: x._ts! }]));
    } finally {
      client.dispose();
      await services.stop();
    }

    const files = await readdir(join(dataDir, 'cosmos'));
    expect(files).toEqual(['snapshot.json']);
    expect((await readdir(join(dataDir, 'azurite'))).length).toBeGreaterThan(0);

    services = await startServices({ dataDir, log });
    client = cosmosOf(services);
    try {
      expect(log.lines.some((l) => l.message === 'Cosmos emulator state restored')).toBe(true);
      const blobs = BlobServiceClient.fromConnectionString(services.storageConnectionString);
      const body = await blobs.getContainerClient('kept').getBlockBlobClient('x/y.txt').downloadToBuffer();
      expect(body.toString()).toBe('blob body');
      const table = TableClient.fromConnectionString(services.storageConnectionString, 'Kept', {
        allowInsecureConnection: true,
      });
      expect((await table.getEntity<{ n: number }>('p', 'r')).n).toBe(7);

      const database = client.database('app');
      const { resources: containers } = await database.containers.readAll().fetchAll();
      expect(Object.fromEntries(containers.map((c) => [c.id, c.partitionKey?.paths]))).toEqual({
        runs: ['/pipeline'],
        models: ['/modelName'],
      });
      const runs: Container = database.container('runs');
      const { resources: docs } = await runs.items.readAll().fetchAll();
      // Same documents, same system properties, same order.
      expect(docs.map((x) => x.id)).toEqual(Object.keys(before));
      for (const x of docs)
        expect({ _etag: x._etag, _rid: x._rid, _ts: x._ts }).toEqual(before[String(x.id)]);
      expect(docs.find((x) => x.id === 'b')?.v).toBe(2);

      // An ETag read before the restart still guards a write after it.
      const replaced = await runs
        .item('d', 'iris')
        .replace(
          { id: 'd', pipeline: 'iris', slot: 'd', v: 5 },
          { accessCondition: { type: 'IfMatch', condition: staleForReplace } },
        );
      expect(replaced.statusCode).toBe(200);
      // The unique key policy survived, and new documents get fresh resource ids.
      await expect(runs.items.create({ id: 'e', pipeline: 'iris', slot: 'a' })).rejects.toMatchObject({
        code: 409,
      });
      const created = await runs.items.create({ id: 'f', pipeline: 'iris', slot: 'f' });
      expect(Object.values(before).map((x) => x._rid)).not.toContain(created.resource?._rid);
    } finally {
      client.dispose();
      await services.stop();
    }
  });

  it('writes snapshots periodically while running, always as whole files, one devhost per folder', async () => {
    const services = await startServices({ dataDir, log, cosmosSnapshotIntervalMs: 100 });
    const client = cosmosOf(services);
    try {
      const { container } = await client
        .database('app')
        .containers.createIfNotExists({ id: 'runs', partitionKey: { paths: ['/pipeline'] } });
      await container.items.create({ id: 'periodic', pipeline: 'iris', slot: 'periodic' });
      const file = join(dataDir, 'cosmos', 'snapshot.json');
      const text = await waitFor('the periodic snapshot', async () => {
        const t = await readFile(file, 'utf8');
        JSON.parse(t); // never half-written
        return t.includes('"periodic"') ? t : undefined;
      });
      expect(JSON.parse(text)).toMatchObject({ format: 'sluice-cosmos-snapshot', version: 1 });
      await expect(startServices({ dataDir, log })).rejects.toThrow(/in use by another devhost \(pid \d+\)/);
    } finally {
      client.dispose();
      await services.stop();
    }
    expect(await readdir(dataDir)).not.toContain('services.lock');
  });

  it('refuses a damaged snapshot, naming the file, and leaves nothing running', async () => {
    const broken = await mkdtemp(join(tmpdir(), 'sluice-broken-'));
    try {
      await mkdir(join(broken, 'cosmos'));
      await writeFile(join(broken, 'cosmos', 'snapshot.json'), '{"format":"sluice-cosmos-snapshot","vers');
      await expect(startServices({ dataDir: broken, log })).rejects.toThrow(
        join(broken, 'cosmos', 'snapshot.json'),
      );
      expect(await readdir(broken)).not.toContain('services.lock');
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});

describe('Azurite on a data folder, SIGKILLed right after it answered', () => {
  it('keeps every write it answered 2xx for (its metadata is saved before the answer)', async () => {
    const location = await mkdtemp(join(tmpdir(), 'sluice-azurite-kill-'));
    const log = memoryLog();
    try {
      let azurite = await startAzurite({ location, log });
      const blobs = () =>
        BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('answered');
      const table = () =>
        TableClient.fromConnectionString(azurite.connectionString, 'Answered', {
          allowInsecureConnection: true,
        });
      await blobs().create();
      await table().createTable();
      for (let i = 0; i < 5; i++) {
        await blobs().getBlockBlobClient(`b${i}`).upload(`body ${i}`, `body ${i}`.length);
        await table().createEntity({ partitionKey: 'p', rowKey: `r${i}`, i });
      }
      await blobs().getBlockBlobClient('b0').delete();
      // At once, well inside Azurite's 5 s autosave interval, and with no chance to save on the way out.
      process.kill(azurite.pid, 'SIGKILL');
      await waitFor('Azurite to die', async () => {
        try {
          process.kill(azurite.pid, 0);
          return undefined;
        } catch {
          return true;
        }
      });

      azurite = await startAzurite({ location, log });
      try {
        const names: string[] = [];
        for await (const b of blobs().listBlobsFlat()) names.push(b.name);
        expect(names).toEqual(['b1', 'b2', 'b3', 'b4']);
        expect((await blobs().getBlockBlobClient('b4').downloadToBuffer()).toString()).toBe('body 4');
        const rows: string[] = [];
        for await (const e of table().listEntities()) rows.push(e.rowKey!);
        expect(rows).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
      } finally {
        await azurite.stop();
      }
    } finally {
      await rm(location, { recursive: true, force: true });
    }
  });
});
