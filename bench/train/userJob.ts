/**
 * The local user job on synthetic data: the scikit-learn example (examples/training/sklearn, Debian's
 * /usr/bin/python3) submitted to the real local backend (`LocalTrainingBackend`, which starts the
 * compiled worker dist/worker/userJob.js as its own process) against Azurite, as a pipeline's train
 * step runs it. Sluice's time around the user's process is everything from `submit` to the job's
 * end (the worker process starting, the request and status writes, reading the dataset and writing
 * the split, or linking it from the job data cache; after the exit the model folder check and
 * storing it) minus the process's own wall time, which the worker measures from spawn to exit and
 * logs in its `timings:` line. Goal (issue 15): under 10 % of the process's time.
 *
 * Three cases: the job data cache off (what every run paid before the cache), a first run (cache
 * miss: written and stored), and runs on a dataset a job had before (cache hit: a resubmit, another
 * attempt, another pipeline on the same data and split).
 *
 *   node dist/bench/train/userJob.js --rows 100000 --features 20 --runs 2
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { repoRoot } from '../../cli/localSluice';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferDatasetContract } from '../../lib/data/checking/inferDatasetContract';
import resources from '../../lib/resources.json';
import { ArtifactStore } from '../../lib/storage/blob';
import { LocalTrainingBackend } from '../../lib/training/backends/local';
import { syntheticClassification } from '../../lib/training/synthetic';
import { loadColumnar } from '../../lib/data/datasets';
import { writeJobData } from '../../lib/training/userJob/jobData';
import { columnarBytes, tableOf } from '../../test/support/datasets';
import { startAzuriteBlob } from '../../test/support/emulators';

const root = repoRoot(__dirname);
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;

interface JobTimings {
  totalMs: number;
  startupMs: number;
  dataMs: number;
  cache: string;
  processMs: number;
  checkMs: number;
  storeMs: number;
}

/** The worker's `timings:` log line (worker/userJob.ts), read back from the job's status. */
function parseTimings(logTail: string[], totalMs: number): JobTimings {
  const line = logTail.find((l) => l.includes('timings: '));
  const m =
    line &&
    /start-up (\d+) ms, data (\d+) ms \((\w+)\), process (\d+) ms, check (\d+) ms, store (\d+) ms/.exec(line);
  if (!m) throw new Error(`the job logged no timings line:\n${logTail.join('\n')}`);
  const [startupMs, dataMs, cache, processMs, checkMs, storeMs] = [
    Number(m[1]),
    Number(m[2]),
    m[3]!,
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  ];
  return { totalMs, startupMs, dataMs, cache, processMs, checkMs, storeMs };
}

/** Runs `writeJobData` on the same synthetic table in a new Node process; its time in ms. */
async function writeDataInFreshProcess(
  rows: number,
  features: number,
  mode: 'thread' | 'main',
  dir: string,
): Promise<number> {
  const args = [
    __filename,
    '--write-data',
    mode,
    '--dir',
    dir,
    '--rows',
    String(rows),
    '--features',
    String(features),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`writing the job data in a fresh process failed (${code})`);
  return Number(out.trim());
}

/** The child side of writeDataInFreshProcess. */
async function writeDataHere(rows: number, features: number, mode: 'thread' | 'main', dir: string) {
  const table = tableOf(syntheticClassification({ rows, features, seed: 1 }));
  const t0 = performance.now();
  await writeJobData(dir, {
    table,
    contract: inferDatasetContract(table),
    target: 'label',
    features: Array.from({ length: features }, (_, j) => `x${j}`),
    seed: 42,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
    parquetIn: mode,
  });
  return performance.now() - t0;
}

export async function benchUserJob(options: {
  rows: number;
  features: number;
  runs?: number;
}): Promise<string[][]> {
  const lines: string[][] = [];
  const azurite = await startAzuriteBlob();
  const work = await mkdtemp(join(tmpdir(), 'sluice-bench-userjob-'));
  try {
    const store = ArtifactStore.fromConnectionString(azurite.connectionString);
    await store.ensureContainers();
    const ds = syntheticClassification({ rows: options.rows, features: options.features, seed: 1 });
    const table = tableOf(ds);
    const stored = await store.putContentAddressed(resources.blobContainers.datasets, columnarBytes(ds));
    const features = Array.from({ length: options.features }, (_, j) => `x${j}`);
    const code = join(root, 'examples', 'training', 'sklearn');
    const contract = inferDatasetContract(table);
    const cacheDir = join(work, 'job-data-cache');
    let n = 0;

    const backend = (cache: string) =>
      new LocalTrainingBackend({
        files: store,
        env: { ARTIFACT_STORAGE_CONNECTION: azurite.connectionString },
        jobDataCache: cache,
      });
    /** One job through the backend, submit to end, as the pipeline's train step runs it. */
    const runJob = async (on: LocalTrainingBackend): Promise<JobTimings> => {
      const jobId = `bench-userjob-${process.pid}-${++n}`;
      await on.whenSwept();
      const t0 = performance.now();
      await on.submit({
        jobId,
        spec: {
          algorithm: 'custom',
          code,
          command: '/usr/bin/python3 train.py',
          target: 'label',
          features,
          timeLimitSeconds: 3_600,
        },
        dataset: { uri: stored.uri, sha256: stored.sha256 },
        contract,
      });
      await on.whenEnded(jobId);
      const totalMs = performance.now() - t0;
      const status = await on.status(jobId);
      if (status.state !== 'completed')
        throw new Error(
          `the bench job ${status.state}: ${JSON.stringify(status.error)}\n${status.logTail.join('\n')}`,
        );
      return parseTimings(status.logTail, totalMs);
    };

    const runs = Math.max(1, options.runs ?? 2);
    const best = (all: JobTimings[]) =>
      all.reduce((a, b) => (b.totalMs - b.processMs < a.totalMs - a.processMs ? b : a));
    // The first job of a backend starts its worker process; the ones after it find a spare waiting.
    const offBackend = backend('off');
    const cold = await runJob(offBackend);
    const uncached: JobTimings[] = [];
    for (let i = 0; i < runs; i++) uncached.push(await runJob(offBackend));
    const cacheBackend = backend(cacheDir);
    await runJob(cacheBackend); // its spare
    // A first job on a dataset fills the cache (emptied before each); the ones after it are served from it.
    const misses: JobTimings[] = [];
    for (let i = 0; i < runs; i++) {
      await rm(cacheDir, { recursive: true, force: true });
      misses.push(await runJob(cacheBackend));
    }
    const first = best(misses);
    const cached: JobTimings[] = [];
    for (let i = 0; i < runs; i++) cached.push(await runJob(cacheBackend));
    await offBackend.stopAll();
    await cacheBackend.stopAll();

    const name = `user job (sklearn example), ${options.rows.toLocaleString('en')} × ${options.features}`;
    const off = best(uncached);
    const hit = best(cached);
    const cases: [string, JobTimings, string][] = [
      ['cache off, first job of a backend (no spare worker)', cold, '1 run'],
      ['job data cache off', off, `best of ${runs}`],
      ['first job on the dataset (cache miss)', first, `best of ${runs}`],
      ['dataset seen before (cache hit)', hit, `best of ${runs}`],
    ];
    lines.push([
      `${name}: the user's process`,
      fmt(hit.processMs),
      'python: read CSV, fit LogisticRegression, write ONNX (spawn to exit)',
    ]);
    for (const [label, t, runsNote] of cases) {
      const sluice = t.totalMs - t.processMs;
      const rest = sluice - t.startupMs - t.dataMs - t.checkMs - t.storeMs;
      lines.push([
        `Sluice around it, ${label}`,
        fmt(sluice),
        `${pct(sluice, t.processMs)} of the process (goal < 10 %); ${runsNote}; process ${fmt(t.processMs)}`,
      ]);
      lines.push([
        '  worker start-up, data (cache), check, store, rest',
        '',
        `${fmt(t.startupMs)}, ${fmt(t.dataMs)} (${t.cache}), ${fmt(t.checkMs)}, ${fmt(t.storeMs)}, ${fmt(rest)}`,
      ]);
    }

    // The data side alone, in its two halves: the dataset read from Blob and verified, then the files.
    const t0 = performance.now();
    const loaded = await loadColumnar(store, { uri: stored.uri, sha256: stored.sha256 });
    const t1 = performance.now();
    const split = { train: 0.7, validation: 0.15, holdout: 0.15 };
    const data = await writeJobData(join(work, 'prep'), {
      table: loaded,
      contract,
      target: 'label',
      features,
      seed: 42,
      split,
    });
    const t2 = performance.now();
    // Parquet in a thread vs on the main thread, each in a fresh process as a job's worker is (in
    // this one the second would run on code the first had already compiled), alternating, best of 3.
    const fresh = { thread: [] as number[], main: [] as number[] };
    for (let i = 0; i < 3; i++)
      for (const mode of i % 2 ? (['thread', 'main'] as const) : (['main', 'thread'] as const))
        fresh[mode].push(
          await writeDataInFreshProcess(options.rows, options.features, mode, join(work, mode)),
        );
    // The floor of the CSV side: every number of the dataset formatted as text once, nothing else.
    let chars = 0;
    const t4 = performance.now();
    for (const c of loaded.columns) {
      if (c.type !== 'number') continue;
      for (let i = 0; i < c.values.length; i++) chars += String(c.values[i]).length;
    }
    const floor = performance.now() - t4;
    const processMs = off.processMs;
    lines.push([
      '  alone: read + verify + decode the dataset',
      fmt(t1 - t0),
      `${(stored.size / 1e6).toFixed(1)} MB columnar`,
    ]);
    lines.push([
      '  alone: split + CSV, Parquet in a thread beside it',
      fmt(t2 - t1),
      `${data.train.rows + data.validation.rows + data.holdout.rows} rows × ${options.features + 1} columns, each written twice`,
    ]);
    lines.push([
      '  fresh process: split + CSV, Parquet in a thread',
      fmt(Math.min(...fresh.thread)),
      `best of 3; one thread (as before): ${fmt(Math.min(...fresh.main))}`,
    ]);
    lines.push([
      '  floor: String() of every number, nothing else',
      fmt(floor),
      `${pct(floor, processMs)} of the process; ${(chars / 1e6).toFixed(1)} M characters`,
    ]);
  } finally {
    await rm(work, { recursive: true, force: true });
    await azurite.stop();
  }
  return lines;
}

if (require.main === module) {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const i = process.argv.indexOf('--write-data');
  if (i > 0) {
    const mode = process.argv[i + 1] === 'main' ? 'main' : 'thread';
    const dir = process.argv[process.argv.indexOf('--dir') + 1]!;
    void writeDataHere(arg('rows', 100_000), arg('features', 20), mode, dir).then((ms) => {
      process.stdout.write(`${ms}\n`);
      process.exit(0);
    });
  } else
    benchUserJob({ rows: arg('rows', 100_000), features: arg('features', 20), runs: arg('runs', 2) })
      .then((lines) => {
        const width = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
        for (const l of lines) console.log(l.map((cell, c) => cell.padEnd(width[c]!)).join('  '));
        process.exit(0);
      })
      .catch((err: unknown) => {
        console.error(err);
        process.exit(1);
      });
}
