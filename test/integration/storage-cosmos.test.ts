import type { CosmosClient } from '@azure/cosmos';
import { startCosmosEmulator, type CosmosEmulatorHandle } from '../../devhost/services/cosmos';
import { CosmosStore, containerNames, type Stored } from '../../lib/storage';
import resources from '../../lib/resources.json';
import { memoryLog } from '../devhost/servicesLog';
import { cosmosStoreOn } from '../support/emulators';

interface Run {
  id: string;
  pipeline: string;
  status: string;
  [key: string]: unknown;
}

describe('CosmosStore on the Cosmos DB emulator', () => {
  let emulator: CosmosEmulatorHandle;
  let store: CosmosStore;
  let raw: CosmosClient;

  beforeAll(async () => {
    emulator = await startCosmosEmulator({ location: null, log: memoryLog() });
    store = cosmosStoreOn(emulator);
    raw = store.client;
    await store.ensure();
  });
  afterAll(async () => {
    store?.client.dispose();
    await emulator?.stop();
  });

  describe('ensure', () => {
    it('creates the database and every container with its partition key', async () => {
      const { resources: containers } = await raw
        .database(resources.cosmos.database)
        .containers.readAll()
        .fetchAll();
      const byId = Object.fromEntries(containers.map((c) => [c.id, c.partitionKey?.paths]));
      for (const name of containerNames) {
        const spec = resources.cosmos.containers[name];
        expect(byId[spec.name]).toEqual([spec.partitionKey]);
      }
    });

    it('is idempotent, also from another process-wide store: same containers, data kept', async () => {
      const kept = await store.create<Run>('runs', { id: 'run-kept', pipeline: 'ensure', status: 'running' });
      expect(kept.ok).toBe(true);
      await store.ensure();
      const other = cosmosStoreOn(emulator);
      await Promise.all([other.ensure(), other.ensure()]);
      other.client.dispose();

      // Every container exists exactly once with its partition key, and nothing was recreated:
      // the document written before the repeated ensure is still there, unchanged.
      const { resources: containers } = await raw
        .database(resources.cosmos.database)
        .containers.readAll()
        .fetchAll();
      const expected = containerNames.map((n) => resources.cosmos.containers[n]);
      expect(containers.map((c) => c.id).sort()).toEqual(expected.map((c) => c.name).sort());
      for (const spec of expected) {
        expect(containers.find((c) => c.id === spec.name)?.partitionKey?.paths).toEqual([spec.partitionKey]);
      }
      expect(await store.read<Run>('runs', 'run-kept', 'ensure')).toMatchObject({
        id: 'run-kept',
        status: 'running',
        _etag: kept.ok ? kept.etag : undefined,
      });
    });

    it('refuses a container whose partition key differs from lib/resources.json', async () => {
      const { database } = await raw.databases.createIfNotExists({ id: 'drifted' });
      await database.containers.createIfNotExists({
        id: resources.cosmos.containers.runs.name,
        partitionKey: { paths: ['/id'] },
      });
      const drifted = new CosmosStore(raw, 'drifted');
      await expect(drifted.ensure()).rejects.toMatchObject({ code: 'COSMOS_PARTITION_KEY_MISMATCH' });
    });
  });

  describe('conditional create (first write wins)', () => {
    it('creates once; a second create of the same id is a conflict value, not an exception', async () => {
      const first = await store.create<Run>('runs', { id: 'run-1', pipeline: 'iris', status: 'running' });
      expect(first.ok).toBe(true);
      const second = await store.create<Run>('runs', { id: 'run-1', pipeline: 'iris', status: 'other' });
      expect(second.ok).toBe(false);
      if (!second.ok)
        expect(second.conflict).toMatchObject({ name: 'ConflictError', code: 'COSMOS_CONFLICT' });
      expect((await store.read<Run>('runs', 'run-1', 'iris'))?.status).toBe('running');
    });

    it('lets exactly one of many concurrent creates win', async () => {
      const attempts = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.create('approvals', {
            id: 'decision-alice',
            runId: 'run-9',
            decision: i % 2 ? 'approve' : 'reject',
          }),
        ),
      );
      expect(attempts.filter((a) => a.ok)).toHaveLength(1);
    });

    it('scopes ids to their partition', async () => {
      await store.create<Run>('runs', { id: 'shared', pipeline: 'a', status: 'x' });
      const other = await store.create<Run>('runs', { id: 'shared', pipeline: 'b', status: 'y' });
      expect(other.ok).toBe(true);
    });

    it('requires the partition key field', async () => {
      await expect(store.create('runs', { id: 'no-pk' })).rejects.toMatchObject({
        name: 'ValidationError',
        code: 'MISSING_PARTITION_KEY',
        field: 'pipeline',
      });
    });
  });

  describe('reads', () => {
    it('returns the document with its system properties, or undefined', async () => {
      await store.create<Run>('runs', { id: 'run-r', pipeline: 'iris', status: 'ok' });
      const doc = await store.read<Run>('runs', 'run-r', 'iris');
      expect(doc).toMatchObject({ id: 'run-r', pipeline: 'iris', status: 'ok' });
      expect(typeof doc?._etag).toBe('string');
      expect(typeof doc?._ts).toBe('number');
      expect(await store.read('runs', 'missing', 'iris')).toBeUndefined();
      expect(await store.read('runs', 'run-r', 'another-pipeline')).toBeUndefined();
    });

    it('queries one partition only, even though the emulator ignores the partition option', async () => {
      await store.create<Run>('runs', { id: 'q1', pipeline: 'qp', status: 'a' });
      await store.create<Run>('runs', { id: 'q2', pipeline: 'qp', status: 'b' });
      await store.create<Run>('runs', { id: 'q3', pipeline: 'elsewhere', status: 'a' });
      const all = await store.query<Run>('runs', 'SELECT * FROM c', 'qp');
      expect(all.map((d) => d.id).sort()).toEqual(['q1', 'q2']);
      const filtered = await store.query<Run>(
        'runs',
        { query: 'SELECT * FROM c WHERE c.status = @s', parameters: [{ name: '@s', value: 'a' }] },
        'qp',
      );
      expect(filtered.map((d) => d.id)).toEqual(['q1']);
    });
  });

  describe('replace with If-Match', () => {
    it('replaces the version that was read and rejects a stale ETag', async () => {
      const created = await store.create<Run>('runs', { id: 'run-e', pipeline: 'iris', status: 'pending' });
      if (!created.ok) throw created.conflict;
      const updated = await store.replace<Run>('runs', { ...created.doc, status: 'running' }, created.etag);
      expect(updated.ok).toBe(true);
      if (!updated.ok) return;
      expect(updated.etag).not.toBe(created.etag);
      const stale = await store.replace<Run>('runs', { ...created.doc, status: 'lost' }, created.etag);
      expect(stale.ok).toBe(false);
      if (!stale.ok) expect(stale.conflict.code).toBe('COSMOS_PRECONDITION_FAILED');
      expect((await store.read<Run>('runs', 'run-e', 'iris'))?.status).toBe('running');
    });

    it('lets exactly one of two concurrent read-modify-writes win', async () => {
      const created = await store.create<Run>('runs', {
        id: 'run-race',
        pipeline: 'iris',
        status: 'waiting',
      });
      if (!created.ok) throw created.conflict;
      const [a, b] = await Promise.all([
        store.replace<Run>('runs', { ...created.doc, status: 'approved' }, created.etag),
        store.replace<Run>('runs', { ...created.doc, status: 'rejected' }, created.etag),
      ]);
      expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
      const winner = a.ok ? 'approved' : 'rejected';
      expect((await store.read<Run>('runs', 'run-race', 'iris'))?.status).toBe(winner);
    });

    it('treats a document that vanished as a conflict', async () => {
      const result = await store.replace<Run>('runs', { id: 'never', pipeline: 'iris', status: 'x' }, 'etag');
      expect(result.ok).toBe(false);
    });

    it('deletes only the version that was read', async () => {
      const created = await store.create<Run>('runs', { id: 'run-d', pipeline: 'iris', status: 'x' });
      if (!created.ok) throw created.conflict;
      await expect(store.delete('runs', 'run-d', 'iris', 'stale')).rejects.toMatchObject({
        name: 'ConflictError',
      });
      expect(await store.delete('runs', 'run-d', 'iris', created.etag)).toBe(true);
      expect(await store.delete('runs', 'run-d', 'iris')).toBe(false);
    });
  });

  describe('what the emulator itself honours (pinned so a library upgrade that changes it is noticed)', () => {
    const runs = () =>
      raw.database(resources.cosmos.database).container(resources.cosmos.containers.runs.name);
    let doc: Stored<Run>;

    beforeAll(async () => {
      const created = await store.upsert<Run>('runs', { id: 'sem', pipeline: 'sem', status: 'v1' });
      doc = created.doc;
    });

    it('enforces If-Match on replace, upsert, patch and delete (412)', async () => {
      const stale = { accessCondition: { type: 'IfMatch', condition: 'not-the-etag' } };
      const codes = await Promise.all([
        runs()
          .item('sem', 'sem')
          .replace({ ...doc, status: 'x' }, stale)
          .catch((e: { code: number }) => e.code),
        runs()
          .items.upsert({ ...doc, status: 'x' }, stale)
          .catch((e: { code: number }) => e.code),
        runs()
          .item('sem', 'sem')
          .patch([{ op: 'set', path: '/status', value: 'x' }], stale)
          .catch((e: { code: number }) => e.code),
        runs()
          .item('sem', 'sem')
          .delete(stale)
          .catch((e: { code: number }) => e.code),
      ]);
      expect(codes).toEqual([412, 412, 412, 412]);
    });

    it('answers a conditional read (If-None-Match with the current ETag) with 200, where Azure answers 304', async () => {
      const read = await runs()
        .item('sem', 'sem')
        .read({ accessCondition: { type: 'IfNoneMatch', condition: doc._etag } });
      expect(read.statusCode).toBe(200);
    });

    it('maps an unreachable endpoint to a TransientError', async () => {
      const dead = cosmosStoreOn({ endpoint: 'http://127.0.0.1:1/', key: emulator.key });
      await expect(dead.read('runs', 'x', 'y')).rejects.toMatchObject({
        name: 'TransientError',
        code: 'COSMOS_UNAVAILABLE',
      });
      dead.client.dispose();
    });
  });
});
