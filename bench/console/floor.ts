/**
 * The floor under `bench:console`: the same Cosmos reads the Runs and Run pages make, straight
 * through @azure/cosmos on devhost's embedded emulator (in this process, in memory) with the same
 * 10,000 runs, without the Functions host, rendering or HTTP to the app. What the pages cost above
 * these figures is ours; these figures are the emulator's (it scans every document of a container
 * in JavaScript for each query, with no index).
 *
 *   node dist/bench/console/floor.js     (BENCH_RUNS, BENCH_REQUESTS change the sizes)
 *
 * Prints figures; asserts nothing on time.
 */
import { CosmosClient } from '@azure/cosmos';
import { startCosmosEmulator } from '../../devhost/services/cosmos';
import { COSMOS_EMULATOR_KEY } from '../../devhost/services/wellKnown';
import { RunStore } from '../../lib/runs/store';
import { CosmosStore } from '../../lib/storage/cosmos';
import { pool, quantile, runDoc, RUNS } from './seed';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 40);
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function time(name: string, work: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 3; i++) await work();
  const ms: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t = performance.now();
    await work();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(1).padStart(9);
  console.log(`${name.padEnd(58)} ${f(quantile(ms, 0.5))} ${f(quantile(ms, 0.95))} ${f(ms.at(-1)!)}`);
}

async function main(): Promise<void> {
  const emulator = await startCosmosEmulator({ location: null, log: quiet });
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
    console.log(`Cosmos floor: ${RUNS} runs in the embedded emulator; ${REQUESTS} sequential reads each\n`);
    console.log(`${'read'.padEnd(58)}    p50 ms    p95 ms    max ms`);
    await time('runs page: RunStore.page, newest 50', () => runs.page({}, 50));
    await time('runs page: RunStore.page, a cursor mid-list', () => runs.page({ before: mid }, 50));
    await time('runs page: RunStore.page, pipeline + status', () =>
      runs.page({ pipeline: 'churn', status: 'failed' }, 50),
    );
    await time('the same TOP 51 ORDER BY, one raw query', () =>
      container.items
        .query({
          query: 'SELECT TOP 51 c.id, c.createdAt FROM c ORDER BY c.createdAt DESC',
        })
        .fetchAll(),
    );
    await time('SELECT VALUE COUNT(1) (a bare scan)', () =>
      container.items.query('SELECT VALUE COUNT(1) FROM c').fetchAll(),
    );
    await time('run: RunStore.find(id), cross-partition query', () => runs.find(aRun.id));
    await time('run: RunStore.get(pipeline, id), point read', () => runs.get(aRun.pipeline, aRun.id));
  } finally {
    client.dispose();
    await emulator.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
