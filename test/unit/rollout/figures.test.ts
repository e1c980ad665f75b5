import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { deploymentSpecSchema, rolloutGuardsSchema, rolloutStepsOf } from '../../../lib/contracts/rollout';
import {
  bucketQuantile,
  buildReference,
  judgeGuards,
  latencyBucket,
  psi,
  predictionPsi,
} from '../../../lib/rollout/figures';
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
