/**
 * `npm run bench:console`: how fast the console's pages answer with 10,000 runs in the Cosmos
 * emulator, and how heavy each page is.
 *
 * Starts devhost on Sluice (its embedded Azurite and Cosmos emulator), writes 10,000 run documents
 * (four pipelines, 60 days, every status) straight into the emulator, a pipeline with three versions
 * and a schedule through the API, and a model with 24 versions and alias moves into the registry.
 * Then, per page, BENCH_REQUESTS sequential GETs after BENCH_WARMUP warm-up ones: p50/p95/max of the
 * time to the whole answer on loopback (devhost's own overhead included), and the page weight:
 * HTML plus the stylesheet and script it links, without images (the console has none).
 * Goals (issue 18): runs and run pages p95 ≤ 300 ms on devhost; every page ≤ 100 KB.
 * The runs and run pages are timed first on a devhost whose emulator runs queries as
 * @vercel/cosmosdb-server ships them (DEVHOST_COSMOS_QUERIES=library, BENCH_LIBRARY_REQUESTS GETs,
 * BENCH_BEFORE=0 skips it), then everything on devhost as it runs by default; a last table puts the
 * two p95s side by side.
 * Prints figures; asserts nothing on time.
 */
import { randomBytes } from 'node:crypto';
import { CosmosClient } from '@azure/cosmos';
import { COSMOS_EMULATOR_KEY } from '../../devhost/services/wellKnown';
import { ModelRegistry } from '../../lib/registry/registry';
import { RunStore } from '../../lib/runs/store';
import { CosmosStore } from '../../lib/storage/cosmos';
import { startDevhost } from '../../test/support/devhost';
import { freePort } from '../../test/support/emulators';
import { testPipeline } from '../../test/e2e/pipeline/harness';
import { hex, pool, quantile, runDoc, RUNS } from './seed';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 60);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
async function weigh(base: string, path: string): Promise<{ html: number; assets: number }> {
  const html = await (await fetch(`${base}${path}`)).text();
  let assets = 0;
  for (const m of html.matchAll(/(?:href|src)="(\/console\/assets\/[^"]+)"/g)) {
    assets += (await (await fetch(`${base}${m[1]!.replace(/&amp;/g, '&')}`)).arrayBuffer()).byteLength;
  }
  return { html: Buffer.byteLength(html), assets };
}

async function time(
  base: string,
  path: string,
  requests: number,
): Promise<{ status: number; p50: number; p95: number; max: number }> {
  let status = 0;
  for (let i = 0; i < WARMUP; i++) await (await fetch(`${base}${path}`)).arrayBuffer();
  const ms: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t = performance.now();
    const res = await fetch(`${base}${path}`);
    await res.arrayBuffer();
    ms.push(performance.now() - t);
    status = res.status;
  }
  ms.sort((a, b) => a - b);
  return { status, p50: quantile(ms, 0.5), p95: quantile(ms, 0.95), max: ms.at(-1)! };
}

type Queries = 'linear' | 'library';

/**
 * One devhost, seeded, its pages timed. `library` starts devhost with DEVHOST_COSMOS_QUERIES=library
 * (the emulator's queries as @vercel/cosmosdb-server ships them: the "before" figures) and times
 * only the pages named in `only`, `requests` times each. Returns each timed page's p95.
 */
async function run(
  queries: Queries,
  only: string[] | undefined,
  requests: number,
): Promise<Map<string, number>> {
  const p95s = new Map<string, number>();
  const cosmosPort = await freePort();
  const port = await freePort();
  const host = await startDevhost({
    app: '.',
    port,
    args: ['--cosmos-port', String(cosmosPort)],
    env: {
      APPROVAL_SIGNING_KEYS: JSON.stringify({ bench: randomBytes(32).toString('base64') }),
      APPROVAL_ACTIVE_KEY_ID: 'bench',
      NOTIFIER: 'outbox',
      PUBLIC_BASE_URL: `http://localhost:${port}`,
      DURABLE_TASK_HUB: 'ConsoleBench',
      DEVHOST_COSMOS_QUERIES: queries,
    },
    readyTimeoutMs: 120_000,
  });
  host.discardOutput();
  const base = host.url;
  const client = new CosmosClient({
    endpoint: `http://127.0.0.1:${cosmosPort}`,
    key: COSMOS_EMULATOR_KEY,
    connectionPolicy: { enableEndpointDiscovery: false },
  });
  try {
    // The app creates its containers on first use.
    await fetch(`${base}/api/pipelines`);
    const store = new CosmosStore(client);
    const runs = store.container('runs');
    const seedStart = performance.now();
    await pool(
      Array.from({ length: RUNS }, (_, i) => i),
      32,
      (i) => runs.items.create(runDoc(i)),
    );
    const seeded = (performance.now() - seedStart) / 1000;

    // A pipeline with three versions and a schedule, through the API.
    for (const alpha of [1, 1.05, 1.1]) {
      const def = testPipeline('wages', {
        training: {
          ...(testPipeline('wages').training as Record<string, unknown>),
          hyperparameters: { alpha },
        },
        schedule: { cron: '0 0 3 * * *', source: { blob: 'datasets/files/wages.csv' } },
      });
      const res = await fetch(`${base}/api/pipelines/wages`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(def),
      });
      if (res.status !== 201) throw new Error(`PUT pipeline answered ${res.status}: ${await res.text()}`);
    }
    // A model with 24 versions, production moved six times.
    const registry = new ModelRegistry(store.container('models'));
    for (let v = 1; v <= 24; v++) {
      await registry.registerVersion({
        modelName: 'wages',
        modelDigest: hex(),
        artifactUri: `models/wages/v${v}`,
        datasetDigest: hex(),
        metrics: { rmse: 4.4 - v * 0.01, r2: 0.2 + v * 0.004, mae: 3.3 - v * 0.008 },
        trainingSpec: { algorithm: 'ridge' },
        algorithm: 'ridge',
        runId: runDoc(v * 4 + 1).id,
      });
      if (v % 4 === 0) {
        await registry.moveAlias({
          modelName: 'wages',
          alias: 'production',
          to: v,
          by: 'bench',
          reason: 'approved',
          approvalRef: `run-${v}:approval`,
        });
      }
    }

    const aRun = runDoc(RUNS - 8); // a succeeded run, every step done
    const pages = [
      { name: 'runs (newest 50 of 10,000)', path: '/runs' },
      { name: 'runs, filtered (pipeline + status)', path: '/runs?pipeline=churn&status=failed' },
      { name: 'run', path: `/runs/${aRun.pipeline}/${encodeURIComponent(aRun.id)}` },
      { name: 'run, old URL /runs/{id} (redirect)', path: `/runs/${encodeURIComponent(aRun.id)}` },
      { name: 'approvals', path: '/approvals' },
      { name: 'models', path: '/models' },
      { name: 'model (24 versions)', path: '/models/wages' },
      { name: 'pipelines', path: '/pipelines' },
      { name: 'pipeline (diff v1→v3)', path: '/pipelines/wages?from=1&to=3' },
    ];
    const timed = only ? pages.filter((p) => only.some((o) => p.name.split(/[ ,]/)[0] === o)) : pages;
    console.log(
      `\nconsole bench, emulator queries: ${queries}: ${RUNS} runs seeded in ${seeded.toFixed(1)} s; ${requests} sequential GETs per timed page after ${WARMUP} warm-up\n`,
    );
    console.log(
      'page                                   status     p50 ms    p95 ms    max ms   HTML KB  +assets KB  total KB',
    );
    for (const p of timed) {
      const w = await weigh(base, p.path);
      const t = await time(base, p.path, requests);
      p95s.set(p.name, t.p95);
      const kb = (n: number) => (n / 1024).toFixed(1);
      console.log(
        `${p.name.padEnd(38)} ${String(t.status).padStart(6)} ${t.p50.toFixed(1).padStart(10)} ${t.p95.toFixed(1).padStart(9)} ${t.max.toFixed(1).padStart(9)} ${kb(w.html).padStart(9)} ${kb(w.assets).padStart(11)} ${kb(w.html + w.assets).padStart(9)}`,
      );
    }
    // The floor, side by side under the same load: the same Cosmos reads the Runs and Run pages
    // make, from this process straight to devhost's emulator through @azure/cosmos (no Functions
    // host, no rendering). What a page costs above its floor is ours.
    const runStore = new RunStore(store);
    const floors: [string, () => Promise<unknown>][] = [
      ['floor: RunStore.page, newest 50', () => runStore.page({}, 50)],
      [
        'floor: RunStore.page, pipeline + status',
        () => runStore.page({ pipeline: 'churn', status: 'failed' }, 50),
      ],
      ['floor: RunStore.find(id), cross-partition', () => runStore.find(aRun.id)],
      ['floor: RunStore.get(pipeline, id), point', () => runStore.get(aRun.pipeline, aRun.id)],
    ];
    for (const [name, work] of queries === 'library' ? [] : floors) {
      for (let i = 0; i < WARMUP; i++) await work();
      const ms: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const t = performance.now();
        await work();
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      console.log(
        `${name.padEnd(38)} ${''.padStart(6)} ${quantile(ms, 0.5).toFixed(1).padStart(10)} ${quantile(ms, 0.95).toFixed(1).padStart(9)} ${ms.at(-1)!.toFixed(1).padStart(9)}`,
      );
    }
  } finally {
    client.dispose();
    await host.stop();
  }
  return p95s;
}

async function main(): Promise<void> {
  // BENCH_PAGES=runs,run times only the pages whose name starts with one of these words.
  const only = process.env.BENCH_PAGES?.split(',').filter(Boolean);
  // BENCH_BEFORE=0 skips the "before" devhost (the library's query executor).
  const before =
    process.env.BENCH_BEFORE === '0'
      ? new Map<string, number>()
      : await run('library', only ?? ['runs', 'run'], Number(process.env.BENCH_LIBRARY_REQUESTS ?? 15));
  const after = await run('linear', only, REQUESTS);
  if (before.size) {
    console.log(`\n${'p95 ms, before → after'.padEnd(38)}    library     linear`);
    for (const [name, p95] of before) {
      console.log(
        `${name.padEnd(38)} ${p95.toFixed(1).padStart(10)} ${(after.get(name) ?? NaN).toFixed(1).padStart(10)}`,
      );
    }
  }
  console.log('\ngoals: runs and run page p95 <= 300 ms on devhost; every page <= 100 KB without images');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
