import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { deploymentSpecSchema, rolloutGuardsSchema, rolloutStepsOf } from '../../../lib/contracts/rollout';
import {
  PSI_FALSE_ALARM_RATE,
  bucketQuantile,
  buildReference,
  chiSquareQuantile,
  guardEvidence,
  guardsWaiting,
  judgeGuards,
  latencyBucket,
  psi,
  predictionPsi,
  psiRowsNeeded,
} from '../../../lib/rollout/figures';
import { shareAbove, simulatePsi } from './psiNoise';
import { BUCKETS, bucketOf } from '../../../lib/rollout/routing';

const wages = () =>
  JSON.parse(
    readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
  ) as Record<string, unknown>;

describe('the deployment section', () => {
  it('is direct by default, so every existing pipeline deploys as before', () => {
    expect(pipelineDefinitionSchema.parse(wages()).deployment).toBeUndefined();
    expect(deploymentSpecSchema.parse({})).toMatchObject({ strategy: 'direct' });
  });

  it('gives canary and shadow their default steps and guards', () => {
    const canary = deploymentSpecSchema.parse({ strategy: 'canary' });
    expect(rolloutStepsOf(canary).map((s) => s.percent)).toEqual([5, 25, 50, 100]);
    expect(canary.guards).toMatchObject({ maxErrorRate: 0.02, maxPredictionPsi: 0.25 });
    expect(rolloutStepsOf(deploymentSpecSchema.parse({ strategy: 'shadow' })).map((s) => s.percent)).toEqual([
      100,
    ]);
  });

  it.each([
    [
      { strategy: 'canary', steps: [{ percent: 25 }, { percent: 25 }] },
      'deployment.steps.1.percent',
      /must increase/,
    ],
    [
      { strategy: 'canary', steps: [{ percent: 50 }, { percent: 10 }] },
      'deployment.steps.1.percent',
      /10 % follows 50 %/,
    ],
    [{ strategy: 'canary', steps: [{ percent: 0 }] }, 'deployment.steps.0.percent', /more than 0/],
    [{ strategy: 'canary', steps: [{ percent: 120 }] }, 'deployment.steps.0.percent', /at most 100/],
    [{ strategy: 'canary', steps: [] }, 'deployment.steps', /at least one step/],
    [
      { strategy: 'direct', steps: [{ percent: 10 }] },
      'deployment.steps',
      /shadow and canary strategies only/,
    ],
    [{ strategy: 'blue-green' }, 'deployment.strategy', /./],
    [{ strategy: 'canary', guards: { maxErrorRate: 2 } }, 'deployment.guards.maxErrorRate', /./],
    [{ strategy: 'canary', guards: { maxErrors: 1 } }, 'deployment.guards', /maxErrors/],
  ])('refuses %j at PUT, naming %s', (deployment, field, message) => {
    const parsed = pipelineDefinitionSchema.safeParse({ ...wages(), deployment });
    expect(parsed.success).toBe(false);
    const issue = parsed.error!.issues.find((i) => i.path.join('.').startsWith(field));
    expect(issue).toBeDefined();
    expect(issue!.message).toMatch(message);
  });
});

describe('traffic figures', () => {
  it('buckets latencies and reads p99 as the bucket edge', () => {
    expect(latencyBucket(0.2)).toBe(0);
    expect(latencyBucket(4)).toBe(3); // (3, 5]
    const counts = new Array<number>(22).fill(0);
    counts[latencyBucket(2)] = 99;
    counts[latencyBucket(400)] = 1;
    expect(bucketQuantile(counts, 0.99)).toBe(2);
    expect(bucketQuantile(counts, 1)).toBe(500);
    expect(bucketQuantile(new Array<number>(22).fill(0), 0.99)).toBeNull();
  });

  it('builds a decile reference and finds no shift in the same distribution, a large one in a shifted one', () => {
    const holdout = Array.from({ length: 1000 }, (_, i) => i / 10);
    const ref = buildReference(holdout)!;
    expect(ref.kind).toBe('bins');
    if (ref.kind !== 'bins') return;
    expect(ref.edges).toHaveLength(9);
    expect(ref.expected.every((e) => Math.abs(e - 0.1) < 0.01)).toBe(true);
    const same = new Array<number>(10).fill(50);
    expect(psi(ref.expected, same)).toBeLessThan(0.01);
    const shifted = [400, 100, 0, 0, 0, 0, 0, 0, 0, 0];
    expect(psi(ref.expected, shifted)!).toBeGreaterThan(1);
    expect(psi(ref.expected, new Array<number>(10).fill(0))).toBeNull();
  });

  it('compares predicted classes by their shares', () => {
    const ref = buildReference(['a', 'a', 'b', 'b'])!;
    expect(predictionPsi(ref, { classes: { a: 50, b: 50 } })).toBeCloseTo(0, 6);
    expect(predictionPsi(ref, { classes: { a: 95, b: 5 } })!).toBeGreaterThan(0.5);
  });

  it('judges each guard only on enough evidence, and names the figures when breached', () => {
    const guards = rolloutGuardsSchema.parse({ minSamples: 20 });
    const figures = {
      requests: 10,
      errors: 5,
      errorRate: 0.5,
      latencyP99Ms: 1000,
      predictedRows: 10,
      psi: 3,
      compared: 0,
      agreement: null,
      productionRequests: 100,
    };
    expect(judgeGuards('canary', guards, figures, 10)).toEqual([]);
    const breaches = judgeGuards(
      'canary',
      guards,
      { ...figures, requests: 40, errors: 20, predictedRows: 200 },
      10,
    );
    // 20 successful requests are too few for a p99 (it would be their maximum).
    expect(breaches.map((b) => b.guard)).toEqual(['maxErrorRate', 'maxPredictionPsi']);
    expect(breaches[0]!.message).toMatch(/20 of 40/);
    const slow = judgeGuards(
      'canary',
      guards,
      { ...figures, requests: 140, errors: 20, predictedRows: 200 },
      10,
    );
    expect(slow.map((b) => b.guard)).toEqual(['maxErrorRate', 'maxLatencyP99Ms', 'maxPredictionPsi']);
    const shadow = judgeGuards(
      'shadow',
      guards,
      {
        ...figures,
        psi: null,
        latencyP99Ms: 1,
        errors: 0,
        errorRate: 0,
        requests: 40,
        compared: 40,
        agreement: 0.5,
      },
      10,
    );
    expect(shadow.map((b) => [b.guard, b.value, b.limit])).toEqual([['minShadowAgreement', 0.5, 0.8]]);
  });
});

describe('sticky assignment', () => {
  it('puts a key in the same bucket every time, and spreads keys evenly', () => {
    expect(bucketOf('customer-42', 'r1')).toBe(bucketOf('customer-42', 'r1'));
    const below = Array.from({ length: 10_000 }, (_, i) => bucketOf(`k${i}`, 'r1')).filter(
      (b) => b < BUCKETS * 0.25,
    );
    expect(below.length).toBeGreaterThan(2300);
    expect(below.length).toBeLessThan(2700);
  });
});

describe('PSI and sample size (docs/rollout.md)', () => {
  it('the χ² quantile is close to the tabulated one', () => {
    // χ²(9): 16.92 at 0.95, 21.67 at 0.99; χ²(1) at 0.95: 3.84 (Wilson–Hilferty is loosest there).
    expect(chiSquareQuantile(0.95, 9)).toBeCloseTo(16.92, 1);
    expect(chiSquareQuantile(0.99, 9)).toBeCloseTo(21.67, 0);
    expect(Math.abs(chiSquareQuantile(0.95, 1) - 3.84)).toBeLessThan(0.15);
  });

  it('the PSI row minimum grows with the bins and the holdout noise, and falls with the limit', () => {
    expect(psiRowsNeeded(0.4, 10, 100, 20)).toBe(74);
    expect(psiRowsNeeded(0.25, 10, 100, 20)).toBe(209);
    expect(psiRowsNeeded(0.25, 10, 300, 20)).toBe(88);
    expect(psiRowsNeeded(0.25, 10, 0, 20)).toBe(68);
    // A holdout too small for the limit: more live rows cannot help; 4c / limit.
    expect(psiRowsNeeded(0.1, 10, 100, 20)).toBe(677);
    // Never fewer than minSamples.
    expect(psiRowsNeeded(2, 10, 1000, 20)).toBe(20);
  });

  it.each([
    { limit: 0.4, holdoutRows: 100, seed: 11 },
    { limit: 0.25, holdoutRows: 100, seed: 12 },
    { limit: 0.25, holdoutRows: 300, seed: 13 },
  ])(
    'a good candidate at the row minimum breaches $limit by noise at about the documented rate ($holdoutRows holdout rows)',
    ({ limit, holdoutRows, seed }) => {
      const liveRows = psiRowsNeeded(limit, 10, holdoutRows, 20);
      const same = simulatePsi({ seed, trials: 800, holdoutRows, liveRows });
      // PSI_FALSE_ALARM_RATE (5 %) per judgment at the minimum (seeded; 800 trials: ± 0.8 %, 1 sd).
      expect(shareAbove(same, limit)).toBeLessThanOrEqual(PSI_FALSE_ALARM_RATE + 0.02);
      // Twice the rows: fewer still.
      const more = simulatePsi({ seed, trials: 800, holdoutRows, liveRows: 2 * liveRows });
      expect(shareAbove(more, limit)).toBeLessThan(shareAbove(same, limit));
    },
  );

  it('a shifted candidate at the row minimum fires', () => {
    const liveRows = psiRowsNeeded(0.4, 10, 100, 20);
    const shifted = simulatePsi({ seed: 21, trials: 200, holdoutRows: 100, liveRows, shift: 1 });
    expect(shareAbove(shifted, 0.4)).toBeGreaterThan(0.99);
  });

  it('the old minimum (5 rows per bin) false-fires far more often, most of it from empty bins', () => {
    const floored = simulatePsi({ seed: 31, trials: 600, holdoutRows: 100, liveRows: 50, smoothed: false });
    const smoothed = simulatePsi({ seed: 31, trials: 600, holdoutRows: 100, liveRows: 50 });
    expect(shareAbove(floored, 0.4)).toBeGreaterThan(0.2);
    expect(shareAbove(smoothed, 0.4)).toBeLessThan(shareAbove(floored, 0.4) / 1.5);
  });

  it('an empty observed bin does not dominate the smoothed PSI', () => {
    const expected = new Array<number>(10).fill(0.1);
    const oneEmpty = [0, 9, 9, 9, 8, 8, 8, 8, 7, 8]; // 74 rows, bin 0 empty by chance
    expect(psi(expected, oneEmpty)!).toBeGreaterThan(0.6); // floored: the empty bin alone ≈ 0.69
    expect(psi(expected, oneEmpty, { smoothed: true })!).toBeLessThan(0.4); // the limit 74 rows are the minimum for
    // A real shift still shows: everything in two bins.
    const shifted = [0, 0, 0, 0, 0, 0, 0, 0, 37, 37];
    expect(psi(expected, shifted, { smoothed: true })!).toBeGreaterThan(1.5);
  });

  it('names the guards still short of evidence, and how much they have and need', () => {
    const guards = rolloutGuardsSchema.parse({ minSamples: 20, maxPredictionPsi: 0.4 });
    const figures = {
      requests: 60,
      errors: 0,
      errorRate: 0,
      latencyP99Ms: 5,
      predictedRows: 60,
      psi: 3,
      compared: 10,
      agreement: 1,
      productionRequests: 100,
    };
    const reference = { bins: 10, holdoutRows: 100 };
    expect(guardsWaiting(guardEvidence('canary', guards, figures, reference))).toEqual([
      { guard: 'maxLatencyP99Ms', have: 60, need: 100, of: 'successful candidate requests' },
      { guard: 'maxPredictionPsi', have: 60, need: 74, of: 'predicted rows' },
    ]);
    // PSI 3 on 60 rows is not judged: no breach yet.
    expect(judgeGuards('canary', guards, figures, reference)).toEqual([]);
    expect(
      guardsWaiting(
        guardEvidence('shadow', guards, { ...figures, requests: 100, predictedRows: 100 }, reference),
      ),
    ).toEqual([{ guard: 'minShadowAgreement', have: 10, need: 20, of: 'compared rows' }]);
    // Judged at 74 rows: it fires.
    expect(
      judgeGuards('canary', guards, { ...figures, requests: 100, predictedRows: 74 }, reference).map(
        (b) => b.guard,
      ),
    ).toEqual(['maxPredictionPsi']);
    // No reference: no PSI guard to wait for.
    expect(
      guardsWaiting(guardEvidence('canary', guards, { ...figures, requests: 100 }, { bins: 0 })),
    ).toEqual([]);
  });
});
