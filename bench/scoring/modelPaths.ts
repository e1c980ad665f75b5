/**
 * The two scoring paths side by side, in process: a legacy Sluice JSON model (the TS predict) and the
 * same model as the worker's MLflow folder (ONNX through onnxruntime-node, sessions cached by
 * digest), behind the same `ProductionModels` and score handler; then the evaluation of two models
 * on 100,000 holdout rows (evaluation.ts: phases, the whole against the goal, the floor). Prints
 * figures; asserts nothing.
 *
 *   node dist/bench/scoring/modelPaths.js      (also run at the end of `npm run bench:scoring`)
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { createScoreHandler } from '../../functions/support/scoreHandler';
import { OnnxModels } from '../../lib/mlmodel/onnxModels';
import { benchEvaluation } from './evaluation';
import { sampleRow } from '../../test/support/lrModel';
import type { BenchModelKind } from './memoryModels';
import { inMemoryProductionModels } from './memoryModels';

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

interface PathFigures {
  kind: BenchModelKind;
  batch: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  rowsPerSecond: number;
}

/** Sequential predict requests of `batch` rows through the score handler (registry and Blob in memory). */
async function predictPath(kind: BenchModelKind, batch: number, onnx: OnnxModels): Promise<PathFigures> {
  const models = inMemoryProductionModels(kind, onnx);
  const handler = createScoreHandler(async () => models);
  const context = new InvocationContext({
    invocationId: 'bench',
    functionName: 'score',
    logHandler: () => undefined,
  });
  const body = JSON.stringify({ rows: Array.from({ length: batch }, (_, i) => sampleRow(20, i)) });
  const request = () =>
    new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/models/bench/predict',
      params: { name: 'bench' },
      headers: { 'content-type': 'application/json' },
      body: { string: body },
    });
  const first = await handler(request(), context);
  if (first.status !== 200)
    throw new Error(`${kind} answered ${first.status}: ${JSON.stringify(first.jsonBody)}`);
  const requests = Math.max(200, Math.round(20_000 / batch));
  for (let i = 0; i < requests / 10; i++) await handler(request(), context);
  const times: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < requests; i++) {
    const s = process.hrtime.bigint();
    await handler(request(), context);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const totalS = Number(process.hrtime.bigint() - t0) / 1e9;
  times.sort((a, b) => a - b);
  return {
    kind,
    batch,
    requests,
    p50Ms: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    rowsPerSecond: (requests * batch) / totalS,
  };
}

/** Prints the predict paths (JSON vs ONNX, batches 1 / 10 / 100 rows) and the 100k evaluation (evaluation.ts). */
export async function benchModelPaths(): Promise<void> {
  // As the app runs it (lib/services.ts): one intra-op thread without spinning. BENCH_ORT_THREADS=0
  // gives onnxruntime's defaults (a thread per core, spinning), N that many threads.
  const threads = Number(process.env.BENCH_ORT_THREADS ?? 1);
  const onnx = new OnnxModels(
    threads > 0
      ? {
          sessionOptions: {
            intraOpNumThreads: threads,
            interOpNumThreads: 1,
            extra: { session: { intra_op: { allow_spinning: '0' } } },
          },
        }
      : {},
  );
  console.log(
    threads > 0
      ? `onnxruntime: ${threads} intra-op thread(s), no spinning`
      : 'onnxruntime: default threads (one per core, spinning)',
  );
  try {
    console.log(
      'predict in process (score handler, registry and Blob in memory), 20-feature logistic regression:',
    );
    console.log(
      `${'path'.padEnd(8)}${'rows/req'.padStart(9)}${'requests'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'rows/s'.padStart(12)}`,
    );
    for (const batch of [1, 10, 100]) {
      for (const kind of ['json', 'onnx'] as const) {
        const r = await predictPath(kind, batch, onnx);
        console.log(
          `${r.kind.padEnd(8)}${String(r.batch).padStart(9)}${fmt(r.requests).padStart(10)}${fmt(r.p50Ms, 3).padStart(9)}${fmt(r.p99Ms, 3).padStart(9)}${fmt(r.rowsPerSecond).padStart(12)}`,
        );
      }
    }
    for (const line of await benchEvaluation(onnx, threads > 0 ? threads : 0)) console.log(line);
  } finally {
    await onnx.dispose();
  }
}

if (require.main === module) {
  benchModelPaths().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
