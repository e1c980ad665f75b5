/**
 * What a canary and monitoring cost predict: the scoring handler called directly (registry and Blob
 * in memory, the bench model through ONNX) serving production only, against the same handler under
 * a live canary at 25 % with sticky request keys and traffic stats recorded, and that plus
 * monitoring's sampler at 10 % (writes counted in memory: they are off the request's path by
 * design). Phases alternate to even out drift on a shared machine, and the whole comparison is
 * repeated (BENCH_ROLLOUT_REPEATS, default 5) to show its run-to-run spread. Prints requests per
 * second and the ratios; goal: at most 5 % fewer.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { createScoreHandler } from '../../functions/support/scoreHandler';
import { OnnxModels } from '../../lib/mlmodel/onnxModels';
import type { RolloutDoc } from '../../lib/rollout/records';
import { PredictionSampler } from '../../lib/monitoring/sampler';
import { TrafficRecorder } from '../../lib/rollout/traffic';
import { RolloutServing } from '../../lib/serving/rollout';
import { sampleRow } from '../../test/support/lrModel';
import { inMemoryProductionModels } from './memoryModels';

const body = JSON.stringify({ rows: [sampleRow(20, 3)] });
const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export async function benchRollout(
  n = Number(process.env.BENCH_ROLLOUT_REQUESTS ?? 20_000),
  repeats = Number(process.env.BENCH_ROLLOUT_REPEATS ?? 5),
): Promise<void> {
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
  let sampledRows = 0;
  const sampler = new PredictionSampler({
    settingsOf: async () => ({ sampleRate: 0.1, hashFeatures: [], dropFeatures: [] }),
    write: async (_model, _source, _seq, samples) => {
      sampledRows += samples.length;
    },
    flushEveryMs: 10_000,
    flushEveryRows: 5_000,
    settingsTtlMs: 30_000,
  });
  const monitored = new RolloutServing({
    models,
    readRollout: async () => doc,
    record: (s) => recorder.record(s),
    sample: (a) => sampler.sample(a),
    stateTtlMs: 2_000,
  });
  // The floor: the least any per-request bookkeeping can cost, one Map lookup and one counter per
  // request around production's own predict, measured beside the real thing so its ratio says how
  // much of the gap the machine (and the handler's extra await) leaves no matter what is recorded.
  const counters = new Map<string, { requests: number }>([['bench', { requests: 0 }]]);
  const floor = createScoreHandler(async () => ({
    predict: async (name: string, body: unknown) => {
      const result = await models.predict(name, body);
      const c = counters.get(name);
      if (c) c.requests++;
      return result;
    },
  }));
  const direct = createScoreHandler(async () => models);
  const canary = createScoreHandler(async () => serving);
  const sampling = createScoreHandler(async () => monitored);
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
  await run(floor, 2_000);
  await run(canary, 2_000);
  await run(sampling, 2_000);
  // Short phases, alternated: on a shared machine the load moves within seconds.
  const phases = Number(process.env.BENCH_ROLLOUT_PHASES ?? 20);
  const canaryRatios: number[] = [];
  const samplingRatios: number[] = [];
  const floorRatios: number[] = [];
  const rps: { direct: number[]; floor: number[]; canary: number[]; sampling: number[] } = {
    direct: [],
    floor: [],
    canary: [],
    sampling: [],
  };
  for (let r = 0; r < repeats; r++) {
    candidate = 0;
    let directS = 0;
    let floorS = 0;
    let canaryS = 0;
    let samplingS = 0;
    for (let p = 0; p < phases; p++) {
      // The order turns each phase, so no variant always runs first (or right after another's garbage).
      for (let v = 0; v < 4; v++) {
        const which = (v + p) % 4;
        if (which === 0) directS += await run(direct, n / phases);
        else if (which === 1) floorS += await run(floor, n / phases);
        else if (which === 2) canaryS += await run(canary, n / phases);
        else samplingS += await run(sampling, n / phases);
      }
    }
    rps.direct.push(n / directS);
    rps.floor.push(n / floorS);
    floorRatios.push(directS / floorS);
    rps.canary.push(n / canaryS);
    rps.sampling.push(n / samplingS);
    canaryRatios.push(directS / canaryS);
    samplingRatios.push(directS / samplingS);
  }
  await recorder.close();
  await sampler.close();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const spread = (xs: number[], digits = 0) =>
    `median ${fmt(median(xs), digits)} (min ${fmt(Math.min(...xs), digits)}, max ${fmt(Math.max(...xs), digits)})`;
  const worst = median(samplingRatios);
  console.log('');
  console.log(
    `rollout: ${fmt(n)} requests per variant per repeat, ${repeats} repeats, handler only, ONNX bench model (20 features)`,
  );
  console.log(`  direct serving:                         ${spread(rps.direct)} req/s`);
  console.log(`  floor (Map lookup + counter):           ${spread(rps.floor)} req/s`);
  console.log(`  canary 25 % + traffic stats:            ${spread(rps.canary)} req/s`);
  console.log(
    `  canary 25 % + stats + 10 % sampling:    ${spread(rps.sampling)} req/s (${fmt((candidate / n) * 50, 1)} % answered by the candidate; ${flushes} flushes, ${written} records, ${sampledRows} sampled requests)`,
  );
  console.log(`  floor / direct:                         ${spread(floorRatios, 3)}x`);
  console.log(`  canary / direct:                        ${spread(canaryRatios, 3)}x`);
  console.log(`  canary + sampling / direct:             ${spread(samplingRatios, 3)}x`);
  console.log(
    `  goal <= 5 % fewer req/s (median, canary + sampling): ${worst >= 0.95 ? 'met' : 'NOT met'} (${fmt((1 - worst) * 100, 1)} % fewer)`,
  );
}

if (require.main === module) {
  benchRollout().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
