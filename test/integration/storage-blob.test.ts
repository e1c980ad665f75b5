import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { z } from 'zod';
import { startServices, type RunningServices } from '../../devhost/services';
import { ArtifactStore, parseBlobUri, TEMP_PREFIX } from '../../lib/storage';
import resources from '../../lib/resources.json';
import { memoryLog } from '../devhost/servicesLog';

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A deterministic pseudo-random stream of `size` bytes in `chunk`-sized pieces. */
function bytes(size: number, seed: number, chunk = 16 * 1024): { stream: Readable; all: Buffer } {
  const all = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i += 1) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    all[i] = x & 0xff;
  }
  async function* pieces() {
    for (let i = 0; i < size; i += chunk) yield all.subarray(i, Math.min(size, i + chunk));
  }
  return { stream: Readable.from(pieces()), all };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

// Azurite takes seconds to load, more on a busy machine.
jest.setTimeout(120_000);

describe('ArtifactStore on Azurite', () => {
  let services: RunningServices;
  let store: ArtifactStore;
  const datasets = resources.blobContainers.datasets;

  beforeAll(async () => {
    services = await startServices({ dataDir: null, log: memoryLog() });
    // Small limits so the streaming path (temp blob, server-side copy) runs on small data.
    store = ArtifactStore.fromConnectionString(services.storageConnectionString, {
      inlineLimitBytes: 64 * 1024,
      blockSizeBytes: 64 * 1024,
    });
    await store.ensureContainers();
  });
  afterAll(async () => {
    await services?.stop();
  });

  it('creates every container named in lib/resources.json, idempotently', async () => {
    await store.ensureContainers();
    const names = (await collect(store.service.listContainers())).map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(Object.values(resources.blobContainers)));
  });

  describe('content-addressed writes', () => {
    it('stores small content at <prefix>/sha256/<hex>, once', async () => {
      const text = 'a,b\n1,2\n';
      const first = await store.putContentAddressed(datasets, text, {
        prefix: 'iris',
        contentType: 'text/csv',
      });
      expect(first).toMatchObject({ container: datasets, sha256: sha256(text), size: 8, created: true });
      expect(first.path).toBe(`iris/sha256/${sha256(text)}`);
      const again = await store.putContentAddressed(datasets, Buffer.from(text), { prefix: 'iris' });
      expect(again).toMatchObject({ path: first.path, created: false });
      const { data, properties } = await store.getBuffer(first.uri);
      expect(data.toString()).toBe(text);
      expect(properties.contentType).toBe('text/csv');
      expect(properties.metadata.sha256).toBe(sha256(text));
    });

    it('streams large content through a temp blob, hashing as it goes, and cleans up', async () => {
      const { stream, all } = bytes(700 * 1024 + 13, 7);
      const stored = await store.putContentAddressed(datasets, stream, {
        prefix: 'big',
        metadata: { source: 'test' },
      });
      expect(stored).toMatchObject({ sha256: sha256(all), size: all.length, created: true });
      const { data, properties } = await store.getBuffer(stored);
      expect(data.equals(all)).toBe(true);
      expect(properties.metadata).toMatchObject({ sha256: sha256(all), source: 'test' });
      // Read into shared memory for the validation threads: written in place, the same bytes.
      const shared = (await store.getBuffer(stored, { shared: true })).data;
      expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(shared.buffer.byteLength).toBe(all.length);
      expect(shared.equals(all)).toBe(true);
      expect(await collect(store.list(datasets, TEMP_PREFIX))).toEqual([]);

      const rerun = await store.putContentAddressed(datasets, bytes(all.length, 7).stream, { prefix: 'big' });
      expect(rerun).toMatchObject({ path: stored.path, created: false });
      expect((await collect(store.list(datasets, 'big/'))).map((b) => b.path)).toEqual([stored.path]);
      expect(await collect(store.list(datasets, TEMP_PREFIX))).toEqual([]);
    });

    it('rejects content over maxBytes without leaving anything behind', async () => {
      const { stream } = bytes(300 * 1024, 3);
      await expect(
        store.putContentAddressed(datasets, stream, { prefix: 'limited', maxBytes: 200 * 1024 }),
      ).rejects.toMatchObject({ name: 'NonRetriableError', code: 'BLOB_TOO_LARGE' });
      expect(await collect(store.list(datasets, 'limited/'))).toEqual([]);
      expect(await collect(store.list(datasets, TEMP_PREFIX))).toEqual([]);
    });

    it('verifies content-addressed reads and fails on tampered bytes', async () => {
      const stored = await store.putContentAddressed(datasets, 'original', { prefix: 'tamper' });
      const raw = BlobServiceClient.fromConnectionString(services.storageConnectionString);
      await raw.getContainerClient(datasets).getBlockBlobClient(stored.path).upload('tampered', 8);
      await expect(store.getBuffer(stored.uri)).rejects.toMatchObject({ code: 'BLOB_DIGEST_MISMATCH' });
      await expect(store.getBuffer(stored.uri, { shared: true })).rejects.toMatchObject({
        code: 'BLOB_DIGEST_MISMATCH',
      });
      await expect(store.getBuffer(stored.uri, { sha256: sha256('tampered') })).resolves.toBeDefined();
    });
  });

  describe('named writes', () => {
    const reports = resources.blobContainers.reports;

    it('writes once by default; the same content again is success, a different one is not', async () => {
      const at = { container: reports, path: 'runs/r1/summary.json' };
      const first = await store.putJson(at, { accuracy: 0.9 });
      expect(first).toMatchObject({ ok: true, written: true });
      const same = await store.putJson(at, { accuracy: 0.9 });
      expect(same).toMatchObject({ ok: true, written: false });
      const other = await store.putJson(at, { accuracy: 0.1 });
      expect(other).toMatchObject({ ok: false, reason: 'exists' });
      expect((await store.getJson(at)).value).toEqual({ accuracy: 0.9 });
    });

    it('replaces only the version that was read (If-Match)', async () => {
      const at = { container: reports, path: 'runs/r2/state.json' };
      await store.putJson(at, { n: 1 });
      const read = await store.getJson(at, z.object({ n: z.number() }));
      const next = await store.putJson(at, { n: 2 }, { condition: { ifMatch: read.etag } });
      expect(next).toMatchObject({ ok: true, written: true });
      const stale = await store.putJson(at, { n: 3 }, { condition: { ifMatch: read.etag } });
      expect(stale).toMatchObject({ ok: false, reason: 'etag-mismatch' });
      expect((await store.getJson(at)).value).toEqual({ n: 2 });
      await store.putJson(at, { n: 4 }, { condition: 'overwrite' });
      expect((await store.getJson(at)).value).toEqual({ n: 4 });
    });

    it('validates JSON with a schema and distinguishes missing blobs', async () => {
      const at = { container: reports, path: 'runs/r3/bad.json' };
      await store.put(at, '{"n":"x"}', { contentType: 'application/json' });
      await expect(store.getJson(at, z.object({ n: z.number() }))).rejects.toMatchObject({
        code: 'BLOB_INVALID',
      });
      const missing = { container: reports, path: 'runs/none.json' };
      await expect(store.tryGetJson(missing)).resolves.toBeUndefined();
      await expect(store.getBuffer(missing)).rejects.toMatchObject({
        name: 'NonRetriableError',
        code: 'BLOB_NOT_FOUND',
      });
      expect(await store.exists(missing)).toBe(false);
      expect(await store.exists(at)).toBe(true);
      expect(await store.delete(at)).toBe(true);
      expect(await store.delete(at)).toBe(false);
    });

    it('lists by prefix in name order', async () => {
      for (const name of ['b', 'a', 'c'])
        await store.put({ container: reports, path: `list/${name}.txt` }, name);
      await store.put({ container: reports, path: 'listing-other.txt' }, 'x');
      const listed = await collect(store.list(reports, 'list/'));
      expect(listed.map((b) => b.path)).toEqual(['list/a.txt', 'list/b.txt', 'list/c.txt']);
      expect(listed[0]).toMatchObject({
        size: 1,
        uri: store.uri({ container: reports, path: 'list/a.txt' }),
      });
    });
  });

  describe('blob URIs', () => {
    it('round-trips locations with spaces and non-ASCII names', () => {
      const at = { container: 'models', path: 'a b/ünï cødé/#1.json' };
      const uri = store.uri(at);
      expect(uri.startsWith(`http://127.0.0.1:${services.ports.blob}/devstoreaccount1/models/`)).toBe(true);
      expect(store.parseUri(uri)).toEqual(at);
    });

    it('accepts the same account on another port (an emulator restarted elsewhere)', () => {
      expect(store.parseUri('http://127.0.0.1:1/devstoreaccount1/models/m/sha256/ab')).toEqual({
        container: 'models',
        path: 'm/sha256/ab',
      });
    });

    it('rejects other accounts, SAS tokens and malformed URIs', () => {
      expect(() => store.parseUri('https://other.blob.core.windows.net/models/x')).toThrow(
        /not in storage account/,
      );
      expect(() => store.parseUri(`${store.uri({ container: 'models', path: 'x' })}?sig=abc`)).toThrow(/SAS/);
      expect(() => store.parseUri('ftp://host/x/y')).toThrow(/scheme/);
      expect(() => store.parseUri('http://127.0.0.1:1/devstoreaccount1/models')).toThrow(/no blob path/);
      expect(() => store.parseUri('not a uri')).toThrow(expect.objectContaining({ name: 'ValidationError' }));
    });

    it('parses Azure account-host URIs', () => {
      expect(parseBlobUri('https://stabc.blob.core.windows.net/datasets/p/sha256/00')).toEqual({
        account: 'stabc',
        container: 'datasets',
        path: 'p/sha256/00',
      });
    });
  });

  it('maps an unreachable endpoint to a TransientError', async () => {
    const dead = new ArtifactStore(
      BlobServiceClient.fromConnectionString(
        services.storageConnectionString.replace(`:${services.ports.blob}/`, ':1/'),
        { retryOptions: { maxTries: 1 } },
      ),
    );
    await expect(dead.getBuffer({ container: datasets, path: 'x' })).rejects.toMatchObject({
      name: 'TransientError',
      code: 'BLOB_UNAVAILABLE',
    });
  });
});
