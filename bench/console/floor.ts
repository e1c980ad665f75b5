/**
 * The floor under `bench:console`: the same Cosmos reads the Runs and Run pages make, straight
 * through @azure/cosmos on devhost's embedded emulator (in this process, in memory) with the same
 * 10,000 runs, without the Functions host, rendering or HTTP to the app. What the pages cost above
 * these figures is ours; these figures are the emulator's (it scans every document of a container
 * in JavaScript for each query, with no index). Each read is timed twice, side by side: with the
 * query library as @vercel/cosmosdb-server ships it ("library"), then with devhost's linear
 * executor installed (devhost/services/cosmosQuery.ts), on the same documents in the same process.
 * Both columns still send the SDK's query-plan request, which the library runs as a second full
 * query; devhost by default refuses it unrun (devhost/services/cosmos.ts), so bench:console's
 * figures are lower still.
 *
 *   node dist/bench/console/floor.js     (BENCH_RUNS, BENCH_REQUESTS, BENCH_LIBRARY_REQUESTS change the sizes)
 *
 * Prints figures; asserts nothing on time.
 */
import { CosmosClient } from '@azure/cosmos';
import { startCosmosEmulator } from '../../devhost/services/cosmos';
import { installLinearQueries } from '../../devhost/services/cosmosQuery';
import { COSMOS_EMULATOR_KEY } from '../../devhost/services/wellKnown';
import { RunStore } from '../../lib/runs/store';
import { CosmosStore } from '../../lib/storage/cosmos';
import { pool, quantile, runDoc, RUNS } from './seed';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 40);
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

const LIBRARY_REQUESTS = Number(process.env.BENCH_LIBRARY_REQUESTS ?? 10);

async function sample(work: () => Promise<unknown>, n: number): Promise<number[]> {
  for (let i = 0; i < 3; i++) await work();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await work();
    ms.push(performance.now() - t);
  }
  return ms.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const emulator = await startCosmosEmulator({ location: null, log: quiet, queries: 'library' });
  const client = new CosmosClient({
    endpoint: emulator.endpoint,
    key: COSMOS_EMULATOR_KEY,
    connectionPolicy: { enableEndpointDiscovery: false },
  });
  try {
    const store = new CosmosStore(client);
    await store.ensure();
    const container = store.container('runs');
    await pool(
      Array.from({ length: RUNS }, (_, i) => i),
      32,
      (i) => container.items.create(runDoc(i)),
    );
    const runs = new RunStore(store);
    const aRun = runDoc(RUNS - 8);
    const mid = runDoc(Math.floor(RUNS / 2)).createdAt;
    const reads: [string, () => Promise<unknown>][] = [
      ['runs page: RunStore.page, newest 50', () => runs.page({}, 50)],
      ['runs page: RunStore.page, a cursor mid-list', () => runs.page({ before: mid }, 50)],
      [
        'runs page: RunStore.page, pipeline + status',
        () => runs.page({ pipeline: 'churn', status: 'failed' }, 50),
      ],
      [
        'the same TOP 51 ORDER BY, one raw query',
        () =>
          container.items
            .query({ query: 'SELECT TOP 51 c.id, c.createdAt FROM c ORDER BY c.createdAt DESC' })
            .fetchAll(),
      ],
      [
        'SELECT VALUE COUNT(1) (a bare scan)',
        () => container.items.query('SELECT VALUE COUNT(1) FROM c').fetchAll(),
      ],
      [
        'SELECT * FROM c WHERE 1 = 0 (matches nothing)',
        () => container.items.query('SELECT * FROM c WHERE 1 = 0').fetchAll(),
      ],
      ['run: RunStore.find(id), cross-partition query', () => runs.find(aRun.id)],
      ['run: RunStore.get(pipeline, id), point read', () => runs.get(aRun.pipeline, aRun.id)],
    ];
    // The library's executor first (the patch is per process and cannot be taken back).
    const before: number[][] = [];
    for (const [, work] of reads) before.push(await sample(work, LIBRARY_REQUESTS));
    if (!installLinearQueries()) throw new Error('the linear executor could not be installed');
    const after: number[][] = [];
    for (const [, work] of reads) after.push(await sample(work, REQUESTS));
    console.log(
      `Cosmos floor: ${RUNS} runs in the embedded emulator; sequential reads: ${LIBRARY_REQUESTS} with the library's executor, ${REQUESTS} with devhost's linear one\n`,
    );
    const f = (n: number) => n.toFixed(1).padStart(9);
    console.log(`${''.padEnd(50)} ${'library executor'.padStart(29)}   ${'linear executor'.padStart(29)}`);
    console.log(`${'read'.padEnd(50)}    p50 ms    p95 ms    max ms      p50 ms    p95 ms    max ms`);
    reads.forEach(([name], i) => {
      const b = before[i]!;
      const a = after[i]!;
      console.log(
        `${name.padEnd(50)} ${f(quantile(b, 0.5))} ${f(quantile(b, 0.95))} ${f(b.at(-1)!)}   ${f(quantile(a, 0.5))} ${f(quantile(a, 0.95))} ${f(a.at(-1)!)}`,
      );
    });
  } finally {
    client.dispose();
    await emulator.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
