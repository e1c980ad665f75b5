/**
 * What a canary costs predict: the scoring handler called directly (registry and Blob in memory,
 * the bench model through ONNX) serving production only, against the same handler under a live
 * canary at 25 % with sticky request keys and traffic stats recorded (their writes counted in
 * memory: they are off the request's path by design). Phases alternate to even out drift on a
 * shared machine. Prints requests per second and the ratio; goal: at most 5 % fewer.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { createScoreHandler } from '../../functions/support/scoreHandler';
import { OnnxModels } from '../../lib/mlmodel/onnxModels';
import type { RolloutDoc } from '../../lib/rollout/records';
import { TrafficRecorder } from '../../lib/rollout/traffic';
import { RolloutServing } from '../../lib/serving/rollout';
import { sampleRow } from '../../test/support/lrModel';
import { inMemoryProductionModels } from './memoryModels';

const body = JSON.stringify({ rows: [sampleRow(20, 3)] });
const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export async function benchRollout(n = Number(process.env.BENCH_ROLLOUT_REQUESTS ?? 20_000)): Promise<void> {
  const models = inMemoryProductionModels('onnx', new OnnxModels());
  const production = await models.get('bench');
  const at = new Date().toISOString();
  // The candidate is the bench model itself under version 1's digest: routing and recording are
  // what is measured, not a second model's speed.
  const doc: RolloutDoc = {
    id: 'rollout',
    kind: 'rollout',
    modelName: 'bench',
    rolloutId: 'bench:rollout',
    runId: 'bench',
    pipeline: 'bench',
    approvalId: 'bench:approval',
    strategy: 'canary',
    state: 'active',
    step: 1,
    percent: 25,
    candidate: { version: 1, digest: production.digest },
    productionVersion: 1,
    reference: { kind: 'classes', expected: { '0': 0.5, '1': 0.5 } },
    holdoutRows: 100,
    agreementTolerance: 0.1,
    startedAt: at,
    updatedAt: at,
  };
  let written = 0;
  let flushes = 0;
  const recorder = new TrafficRecorder({
    write: async (records) => {
      flushes++;
      written += records.length;
    },
    flushEveryMs: 5_000,
    flushEveryRequests: 1_000,
  });
  const serving = new RolloutServing({
    models,
    readRollout: async () => doc,
    record: (s) => recorder.record(s),
    stateTtlMs: 2_000,
  });
  const direct = createScoreHandler(async () => models);
  const canary = createScoreHandler(async () => serving);
  const context = new InvocationContext({
    invocationId: 'bench',
    functionName: 'score',
    logHandler: () => undefined,
  });
  let k = 0;
  const request = () =>
    new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/models/bench/predict',
      params: { name: 'bench' },
      headers: { 'content-type': 'application/json', 'x-request-key': `customer-${k++ % 5000}` },
      body: { string: body },
    });
  let candidate = 0;
  const run = async (handler: typeof direct, count: number) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const res = await handler(request(), context);
      if ((res.jsonBody as { variant?: string }).variant === 'candidate') candidate++;
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  await run(direct, 2_000);
  await run(canary, 2_000);
  candidate = 0;
  const phases = 4;
  let directS = 0;
  let canaryS = 0;
  for (let p = 0; p < phases; p++) {
    directS += await run(direct, n / phases);
    canaryS += await run(canary, n / phases);
  }
  await recorder.close();
  const directRps = n / directS;
  const canaryRps = n / canaryS;
  const ratio = canaryRps / directRps;
  console.log('');
  console.log(`rollout: ${fmt(n)} requests each, handler only, ONNX bench model (20 features)`);
  console.log(`  direct serving:              ${fmt(directRps)} req/s`);
  console.log(
    `  canary 25 % + traffic stats: ${fmt(canaryRps)} req/s (${fmt((candidate / n) * 100, 1)} % answered by the candidate; ${flushes} flushes, ${written} records)`,
  );
  console.log(
    `  canary / direct: ${fmt(ratio, 3)}x (${fmt((1 - ratio) * 100, 1)} % fewer req/s); goal <= 5 % fewer: ${ratio >= 0.95 ? 'met' : 'NOT met'}`,
  );
}

if (require.main === module) {
  benchRollout().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
