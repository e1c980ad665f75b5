import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  QUERY_PLAN_REFUSAL,
  startCosmosEmulator,
  type CosmosEmulatorHandle,
  SNAPSHOT_FILE,
} from '../../devhost/services/cosmos';
import type { CosmosStore } from '../../lib/storage';
import { cosmosStoreOn } from '../support/emulators';
import { memoryLog } from './servicesLog';

// Regression: a SIGKILL of devhost lost the Cosmos writes of the last snapshot interval, while the
// Durable task hub had already recorded the activities that made them (the pipeline crash e2e then
// waited forever for a run-document step). An acknowledged write is now on disk before its response.
describe('Cosmos emulator: an acknowledged write is already in the snapshot', () => {
  let dir: string;
  let emulator: CosmosEmulatorHandle;
  let store: CosmosStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-cosmos-ack-'));
    // A long interval: only the write path can have saved the item.
    emulator = await startCosmosEmulator({ location: dir, log: memoryLog(), snapshotIntervalMs: 3_600_000 });
    store = cosmosStoreOn(emulator);
    await store.ensure();
  });
  afterAll(async () => {
    store?.client.dispose();
    await emulator?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, replaces and deletes are on disk when the client gets the answer', async () => {
    const created = await store.create('runs', { id: 'ack-1', pipeline: 'p', status: 'queued' });
    expect(created.ok).toBe(true);
    let onDisk = await readFile(join(dir, SNAPSHOT_FILE), 'utf8');
    expect(onDisk).toContain('ack-1');
    if (!created.ok) return;
    const replaced = await store.replace(
      'runs',
      { id: 'ack-1', pipeline: 'p', status: 'running-now' },
      created.etag,
    );
    expect(replaced.ok).toBe(true);
    onDisk = await readFile(join(dir, SNAPSHOT_FILE), 'utf8');
    expect(onDisk).toContain('running-now');
    await store.delete('runs', 'ack-1', 'p');
    onDisk = await readFile(join(dir, SNAPSHOT_FILE), 'utf8');
    expect(onDisk).not.toContain('ack-1');
  });

  it('a rejected write changes nothing and is answered at once', async () => {
    await store.create('runs', { id: 'ack-2', pipeline: 'p' });
    const again = await store.create('runs', { id: 'ack-2', pipeline: 'p' });
    expect(again.ok).toBe(false);
  });
});

// A query changes nothing, so it neither waits for nor causes a snapshot: the write hook took the
// SDK's `x-ms-documentdb-isquery: true` (lower case) for a write, and every query then held its
// answer until the whole account was serialised to disk.
describe('Cosmos emulator: queries and query plans are reads', () => {
  let dir: string;
  let emulator: CosmosEmulatorHandle;
  let store: CosmosStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-cosmos-reads-'));
    emulator = await startCosmosEmulator({ location: dir, log: memoryLog(), snapshotIntervalMs: 3_600_000 });
    store = cosmosStoreOn(emulator);
    await store.ensure();
    expect((await store.create('runs', { id: 'read-1', pipeline: 'p', createdAt: 'a' })).ok).toBe(true);
  });
  afterAll(async () => {
    store?.client.dispose();
    await emulator?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a cross-partition query answers without writing the snapshot again', async () => {
    const file = join(dir, SNAPSHOT_FILE);
    const before = await stat(file);
    await rm(file);
    const { resources } = await store
      .container('runs')
      .items.query<{ id: string }>('SELECT c.id FROM c ORDER BY c.createdAt DESC')
      .fetchAll();
    expect(resources.map((r) => r.id)).toEqual(['read-1']);
    await emulator.flush();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(before.size).toBeGreaterThan(0);
  });

  it("refuses the SDK's query-plan request with a 400 instead of running the query", async () => {
    const res = await fetch(`${emulator.endpoint}dbs/sluice/colls/runs/docs`, {
      method: 'POST',
      headers: {
        'content-type': 'application/query+json',
        'x-ms-cosmos-is-query-plan-request': 'True',
        'x-ms-documentdb-query-enablecrosspartition': 'true',
      },
      body: JSON.stringify({ query: 'SELECT * FROM c' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: 'BadRequest', message: QUERY_PLAN_REFUSAL });
  });
});
