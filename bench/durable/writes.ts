/**
 * What an acknowledged write costs in devhost's embedded Azurite on a data folder, where each 2xx waits
 * until Azurite's metadata is on disk (devhost/services/azurite.ts, SAVE_BEFORE_ANSWER), and what the
 * Durable task-hub store costs per episode (devhost/durable/sqliteStore.ts):
 *
 *   1. sequential 1 KB blob uploads and Table inserts: latency p50/p95
 *   2. 16 MB blob uploads (staged blocks + commit)
 *   3. 16 concurrent 1 KB uploads: uploads/s (saves coalesce)
 *   4. a 1 KB upload with more blobs kept: each save writes Azurite's whole metadata database
 *   5. SQLite store: one episode append (4 events) p50/p95
 *
 *   npm run bench:durable (after the Durable figures)        (BENCH_WRITES=200)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { events } from '../../devhost/durable/history';
import { SqliteTaskHubStore } from '../../devhost/durable/sqliteStore';
import { startAzurite } from '../../devhost/services/azurite';

const n = Number(process.env.BENCH_WRITES ?? 200);
const kept = (process.env.BENCH_KEPT ?? '1000,5000').split(',').map(Number);
const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

const pct = (values: number[], p: number): number => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const summary = (ms: number[]): string =>
  `p50 ${pct(ms, 50).toFixed(2)} ms, p95 ${pct(ms, 95).toFixed(2)} ms (${ms.length} writes)`;

async function timed(count: number, op: (i: number) => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await op(i);
    ms.push(performance.now() - t);
  }
  return ms;
}

async function main(): Promise<void> {
  console.log(`devhost acknowledged-write benchmark (node ${process.version})`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bench-writes-'));
  const azurite = await startAzurite({ location: path.join(dataDir, 'azurite'), log: quiet });
  try {
    const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'bench',
    );
    await blobs.create();
    const table = TableClient.fromConnectionString(azurite.connectionString, 'Bench', {
      allowInsecureConnection: true,
    });
    await table.createTable();
    const body = 'x'.repeat(1024);
    await timed(20, (i) => blobs.getBlockBlobClient(`warm-${i}`).upload(body, body.length));

    console.log('\n1. sequential writes answered 2xx, Azurite on a data folder');
    const blob = await timed(n, (i) => blobs.getBlockBlobClient(`b-${i}`).upload(body, body.length));
    console.log(`   1 KB blob upload      ${summary(blob)}`);
    const entity = await timed(n, (i) => table.createEntity({ partitionKey: 'p', rowKey: `r${i}`, body }));
    console.log(`   Table insert          ${summary(entity)}`);

    console.log('\n2. 16 MB blob uploads (4 MB blocks, 4 in parallel, then the block list)');
    const big = Buffer.alloc(16 * 1024 * 1024, 7);
    const large = await timed(5, (i) =>
      blobs.getBlockBlobClient(`big-${i}`).uploadData(big, { blockSize: 4 * 1024 * 1024, concurrency: 4 }),
    );
    console.log(
      `   ${large.map((m) => `${m.toFixed(0)} ms`).join(', ')} (${((16 * 1000) / pct(large, 50)).toFixed(0)} MB/s at p50)`,
    );

    console.log('\n3. 16 concurrent 1 KB uploads at a time');
    const started = performance.now();
    let done = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < n / 8; i++) {
          await blobs.getBlockBlobClient(`c-${w}-${i}`).upload(body, body.length);
          done++;
        }
      }),
    );
    console.log(`   ${((done * 1000) / (performance.now() - started)).toFixed(0)} uploads/s`);

    console.log('\n4. a 1 KB upload with more blobs kept (filled 16 at a time)');
    let made = 0;
    for (const target of kept) {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (made < target) await blobs.getBlockBlobClient(`kept-${made++}`).upload(body, body.length);
        }),
      );
      const ms = await timed(50, (i) =>
        blobs.getBlockBlobClient(`at-${target}-${i}`).upload(body, body.length),
      );
      console.log(`   ${target.toLocaleString('en-US')} more blobs kept: ${summary(ms)}`);
    }
  } finally {
    await azurite.stop();
  }

  console.log('\n5. Durable task-hub store (SQLite, WAL, synchronous=NORMAL): one episode of 4 events');
  const store = SqliteTaskHubStore.open(dataDir, 'BenchHub');
  const t0 = Date.now();
  const ms: number[] = [];
  for (let i = 0; i < n * 5; i++) {
    const added = [
      events.orchestratorStarted(t0 + i),
      events.taskCompleted(t0 + i, i, String(i)),
      events.taskScheduled(t0 + i, i + 1, 'noop', `[${i}]`),
      events.orchestratorCompleted(t0 + i),
    ];
    const t = performance.now();
    await store.appendEpisode('bench', 0, i, added, { status: 'Running', lastUpdatedTime: t0 + i });
    ms.push(performance.now() - t);
  }
  store.close();
  console.log(`   ${summary(ms)}`);
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
