/**
 * The local user job on synthetic data: the scikit-learn example (examples/training/sklearn, Debian's
 * /usr/bin/python3) run by the real user-job worker (`runUserJobWorker`, in this process) against
 * Azurite, as the local backend runs it. It prints Sluice's time around the user's process (reading
 * and verifying the dataset, writing the split as CSV and Parquet, checking the model folder,
 * storing it) next to the process's own time. Goal (issue 15): Sluice's share under 10 % of the
 * process's time.
 *
 *   node dist/bench/train/userJob.js --rows 100000 --features 20
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { repoRoot } from '../../cli/localSluice';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferDatasetContract } from '../../lib/data/checking/inferDatasetContract';
import resources from '../../lib/resources.json';
import { ArtifactStore } from '../../lib/storage/blob';
import { syntheticClassification } from '../../lib/training/synthetic';
import { loadColumnar } from '../../lib/data/datasets';
import { writeJobData } from '../../lib/training/userJob/jobData';
import { columnarBytes, tableOf } from '../../test/support/datasets';
import { startAzuriteBlob } from '../../test/support/emulators';
import type { UserJobWorkerTimings } from '../../worker/userJob';
import { runUserJobWorker } from '../../worker/userJob';

const root = repoRoot(__dirname);
const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

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
    const request = (jobId: string) => ({
      jobId,
      spec: {
        algorithm: 'custom' as const,
        code,
        command: '/usr/bin/python3 train.py',
        target: 'label',
        features,
        timeLimitSeconds: 3_600,
      },
      dataset: { uri: stored.uri, sha256: stored.sha256 },
      contract: inferDatasetContract(table),
    });

    // The parts on their own first: data preparation, then the model check on one finished job.
    const runs = options.runs ?? 2;
    const all: UserJobWorkerTimings[] = [];
    for (let i = 0; i < runs; i++) {
      const jobId = `bench-userjob-${i}`;
      await store.put({ container: 'jobs', path: `${jobId}/request.json` }, JSON.stringify(request(jobId)), {
        contentType: 'application/json',
        condition: 'overwrite',
      });
      let timings: UserJobWorkerTimings | undefined;
      const exit = await runUserJobWorker(store, jobId, {
        onTimings: (t) => (timings = t),
        announceGroup: false,
      });
      if (exit !== 0) {
        const { value } = await store.getJson<{ error?: unknown; logTail?: string[] }>({
          container: 'jobs',
          path: `${jobId}/status.json`,
        });
        throw new Error(`the bench job failed: ${JSON.stringify(value.error)}\n${value.logTail?.join('\n')}`);
      }
      all.push(timings!);
    }
    const best = all.reduce((a, b) => (b.totalMs - b.processMs < a.totalMs - a.processMs ? b : a));
    const sluice = best.totalMs - best.processMs;
    const name = `user job (sklearn example), ${options.rows.toLocaleString('en')} × ${options.features}`;
    lines.push([
      `${name}: the user's process`,
      fmt(best.processMs),
      'python: read CSV, fit LogisticRegression, build and write the ONNX graph',
    ]);
    lines.push([
      `${name}: Sluice around it`,
      fmt(sluice),
      `${((100 * sluice) / best.processMs).toFixed(1)} % of the process (goal < 10 %); best of ${runs}`,
    ]);
    lines.push([
      '  prepare data (read + verify dataset, split, CSV + Parquet)',
      fmt(best.prepareMs),
      `${((100 * best.prepareMs) / best.processMs).toFixed(1)} %`,
    ]);
    lines.push([
      '  check the model folder (MLmodel, ONNX load, sample scored)',
      fmt(best.checkMs),
      `${((100 * best.checkMs) / best.processMs).toFixed(1)} %`,
    ]);
    lines.push([
      '  store the folder in Blob',
      fmt(best.storeMs),
      `${((100 * best.storeMs) / best.processMs).toFixed(1)} %`,
    ]);
    const rest = sluice - best.prepareMs - best.checkMs - best.storeMs;
    lines.push([
      '  the rest (request, status writes, temp folder)',
      fmt(rest),
      `${((100 * rest) / best.processMs).toFixed(1)} %`,
    ]);

    // The data side alone, in its two halves: the dataset read from Blob and verified, then the files.
    const t0 = performance.now();
    const loaded = await loadColumnar(store, { uri: stored.uri, sha256: stored.sha256 });
    const t1 = performance.now();
    const data = await writeJobData(join(work, 'prep'), {
      table: loaded,
      contract: inferDatasetContract(loaded),
      target: 'label',
      features,
      seed: 42,
      split: { train: 0.7, validation: 0.15, holdout: 0.15 },
    });
    const t2 = performance.now();
    // The floor of the CSV side: every number of the dataset formatted as text once, nothing else.
    let chars = 0;
    const t3 = performance.now();
    for (const c of loaded.columns) {
      if (c.type !== 'number') continue;
      for (let i = 0; i < c.values.length; i++) chars += String(c.values[i]).length;
    }
    const floor = performance.now() - t3;
    lines.push([
      '  alone: read + verify + decode the dataset',
      fmt(t1 - t0),
      `${(stored.size / 1e6).toFixed(1)} MB columnar`,
    ]);
    lines.push([
      '  alone: split + write CSV and Parquet',
      fmt(t2 - t1),
      `${data.train.rows + data.validation.rows + data.holdout.rows} rows × ${options.features + 1} columns, each written twice`,
    ]);
    lines.push([
      '  floor: String() of every number, nothing else',
      fmt(floor),
      `${((100 * floor) / best.processMs).toFixed(1)} % of the process; ${(chars / 1e6).toFixed(1)} M characters`,
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
