/**
 * Monitoring's prediction drift is noise-aware as the rollout's PSI guard is (docs/monitoring.md,
 * Prediction drift and sample size): smoothed PSI, judged only from the row minimum of
 * lib/rollout/figures.ts psiRowsNeeded. A quiet window of an unchanged model raises no drift, where
 * the floored PSI on the same rows often would have; a busy shifted window still does. And a
 * reference that could not be made is said with when it is tried again.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { computeMonitoring, type MonitoringDeps } from '../../../lib/monitoring/compute';
import type { PredictionSample } from '../../../lib/monitoring/samples';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import type { ModelVersion } from '../../../lib/registry/records';
import { binOf, buildReference, psi, psiRowsNeeded } from '../../../lib/rollout/figures';
import type { PredictionReference, RolloutDoc } from '../../../lib/rollout/records';
import { createPrng } from '../../../lib/training/prng';

const T0 = Date.parse('2026-03-02T10:00:00.000Z');
const HOUR = 3_600_000;
const wages = JSON.parse(
  readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
) as Record<string, unknown>;
const definitionWith = (policy: Record<string, unknown>) =>
  pipelineDefinitionSchema.parse({
    ...wages,
    schedule: undefined,
    monitoring: { sampleRate: 1, windowMinutes: 60, policy },
  });
const production = { modelName: 'wages', version: 4, tags: {} } as unknown as ModelVersion;

function normals(seed: number): () => number {
  const prng = createPrng(seed);
  return () => {
    const u = 1 - prng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * prng.next());
  };
}

/** A reference from `m` holdout predictions, as startRollout and versionReference build it. */
function holdout(m: number, seed = 3): PredictionReference {
  const next = normals(seed);
  return buildReference(Float64Array.from({ length: m }, next))!;
}

/** One sampled request of one row per prediction. */
function samples(predictions: number[]): PredictionSample[] {
  return predictions.map((p, i) => ({
    predictionId: `p${(T0 + i).toString(36)}-${i.toString(16).padStart(16, '0')}`,
    at: new Date(T0 + 1000 * i).toISOString(),
    modelName: 'wages',
    version: 4,
    variant: 'production',
    rows: [{ education: 12 }],
    predictions: [p],
  }));
}

function deps(
  predictions: number[],
  reference: MonitoringDeps['reference'],
  rollout?: RolloutDoc,
): MonitoringDeps {
  return {
    artifacts: {} as MonitoringDeps['artifacts'],
    cosmos: { query: async () => [] } as unknown as MonitoringDeps['cosmos'],
    samples: { read: async () => samples(predictions) },
    store: { labelsSince: async () => [] },
    production: async () => production,
    rollout: async () => rollout,
    reference,
  };
}

const window = { from: new Date(T0), to: new Date(T0 + HOUR) };
const at = new Date(T0 + HOUR + 5_000);

describe('monitoring: noise-aware prediction drift', () => {
  const ref = holdout(100);
  const policy = { minSamples: 20, featureDrift: false, maxPredictionPsi: 0.25 };
  const definition = definitionWith(policy);
  const reference: MonitoringDeps['reference'] = async () => ({ reference: ref, rows: 100 });
  // χ²(9) at 95 % over (0.25 − χ²/100): the row minimum docs/rollout.md tabulates for 0.25, m 100.
  const minRows = psiRowsNeeded(0.25, 10, 100, 20);

  it('judges PSI only from the row minimum, and says so below it', async () => {
    expect(minRows).toBe(209);
    const next = normals(11);
    const doc = await computeMonitoring(
      deps(Array.from({ length: 60 }, next), reference),
      { name: 'wages', definition },
      window,
      at,
    );
    expect(doc.samples.rows).toBe(60);
    expect(doc.predictionDrift).toMatchObject({ rows: 60, minRows: 209, judged: false });
    expect(doc.predictionDrift.psi).toEqual(expect.any(Number));
    expect(doc.predictionDrift.reason).toMatch(/^not judged: 60 of 209 predicted rows/);
    expect(doc.finding).toEqual({ drifted: false, reasons: [] });
  });

  it('quiet hours of an unchanged model raise no drift, where the floored PSI often would have', async () => {
    let findings = 0;
    let flooredOverLimit = 0;
    const next = normals(21);
    const windows = 200;
    for (let w = 0; w < windows; w++) {
      const predictions = Array.from({ length: 40 }, next);
      const doc = await computeMonitoring(
        deps(predictions, reference),
        { name: 'wages', definition },
        window,
        at,
      );
      if (doc.finding.drifted) findings++;
      // What the window said before: floored PSI of the same rows, judged from minSamples (20).
      const counts = new Array<number>(ref.expected.length).fill(0);
      const edges = (ref as Extract<PredictionReference, { kind: 'bins' }>).edges;
      for (const p of predictions) counts[binOf(edges, p)]!++;
      if (psi(ref.expected as number[], counts)! > 0.25) flooredOverLimit++;
    }
    expect(findings).toBe(0);
    // Printed for the docs' table; at least a third of quiet windows were findings before.
    expect(flooredOverLimit / windows).toBeGreaterThan(1 / 3);
  });

  it('a busy window of a shifted model is a finding; of an unchanged one, judged and stable', async () => {
    const next = normals(31);
    const shifted = await computeMonitoring(
      deps(
        Array.from({ length: 300 }, () => next() + 1),
        reference,
      ),
      { name: 'wages', definition },
      window,
      at,
    );
    expect(shifted.predictionDrift).toMatchObject({ rows: 300, minRows: 209, judged: true });
    expect(shifted.predictionDrift.psi!).toBeGreaterThan(0.25);
    expect(shifted.finding.drifted).toBe(true);
    expect(shifted.finding.reasons).toEqual([
      `prediction drift: PSI ${shifted.predictionDrift.psi!.toFixed(3)} > 0.25`,
    ]);

    const same = await computeMonitoring(
      deps(Array.from({ length: 300 }, next), reference),
      { name: 'wages', definition },
      window,
      at,
    );
    expect(same.predictionDrift).toMatchObject({ rows: 300, judged: true });
    expect(same.predictionDrift.psi!).toBeLessThan(0.25);
    expect(same.finding.drifted).toBe(false);
  });

  it('the rollout’s reference counts its own holdout size; no PSI limit means no judgment', async () => {
    const rollout = {
      candidate: { version: 4, digest: 'x' },
      reference: ref,
      holdoutRows: 300,
    } as unknown as RolloutDoc;
    let asked = 0;
    const doc = await computeMonitoring(
      deps(Array.from({ length: 60 }, normals(41)), async () => (asked++, undefined), rollout),
      { name: 'wages', definition },
      window,
      at,
    );
    expect(asked).toBe(0);
    expect(doc.predictionDrift.minRows).toBe(psiRowsNeeded(0.25, 10, 300, 20));
    expect(doc.predictionDrift.minRows).toBe(88);

    const unlimited = await computeMonitoring(
      deps(Array.from({ length: 60 }, normals(41)), reference),
      { name: 'wages', definition: definitionWith({ minSamples: 20 }) },
      window,
      at,
    );
    expect(unlimited.predictionDrift).toMatchObject({ rows: 60, minRows: null, judged: false });
    expect(unlimited.predictionDrift.reason).toBeUndefined();
    expect(unlimited.predictionDrift.psi).toEqual(expect.any(Number));
  });

  it('a reference that failed says why, how often, and when it is tried again', async () => {
    const doc = await computeMonitoring(
      deps([1, 2, 3], async () => ({
        reference: undefined,
        rows: 0,
        failure: {
          reason: 'the model cannot be loaded: bad ONNX graph',
          failures: 2,
          firstAt: '2026-03-02T08:00:00.000Z',
          lastAt: '2026-03-02T09:00:00.000Z',
          retryAfter: '2026-03-02T11:00:00.000Z',
          backedOff: true,
        },
      })),
      { name: 'wages', definition },
      window,
      at,
    );
    expect(doc.predictionDrift).toEqual({
      psi: null,
      reason:
        'the holdout prediction reference of version 4 could not be made: the model cannot be loaded: bad ONNX graph (failed 2 times in a row since 2026-03-02T08:00:00.000Z; not tried again before 2026-03-02T11:00:00.000Z)',
      retryAfter: '2026-03-02T11:00:00.000Z',
    });
  });
});
