/**
 * One monitoring window (lib/monitoring/compute.ts) when the production version's holdout prediction
 * reference cannot be made (storage or the scorer failing): the window's document still stands, its
 * prediction drift untestable with the reason, rather than the whole document being dropped.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { computeMonitoring, type MonitoringDeps } from '../../../lib/monitoring/compute';
import type { PredictionSample } from '../../../lib/monitoring/samples';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import type { ModelVersion } from '../../../lib/registry/records';

const T0 = Date.parse('2026-03-02T10:00:00.000Z');
const wages = JSON.parse(
  readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
) as Record<string, unknown>;
const definition = pipelineDefinitionSchema.parse({
  ...wages,
  schedule: undefined,
  monitoring: { sampleRate: 1, windowMinutes: 60, policy: { minSamples: 1, maxPredictionPsi: 0.2 } },
});
const production = { modelName: 'wages', version: 4, tags: {} } as unknown as ModelVersion;

function sample(i: number): PredictionSample {
  return {
    predictionId: `p${(T0 + i).toString(36)}-${'0'.repeat(15)}${i % 10}`,
    at: new Date(T0 + 1000 * i).toISOString(),
    modelName: 'wages',
    version: 4,
    variant: 'production',
    rows: [{ education: 10 + (i % 5) }],
    predictions: [15 + (i % 5)],
  };
}

function deps(reference: MonitoringDeps['reference']): MonitoringDeps {
  return {
    artifacts: {} as MonitoringDeps['artifacts'],
    cosmos: { query: async () => [] } as unknown as MonitoringDeps['cosmos'],
    samples: { read: async () => Array.from({ length: 20 }, (_, i) => sample(i)) },
    store: { labelsSince: async () => [] },
    production: async () => production,
    rollout: async () => undefined,
    reference,
  };
}

describe('computeMonitoring', () => {
  it('keeps the document when the prediction reference fails: prediction drift untestable, with the reason', async () => {
    let asked = 0;
    const doc = await computeMonitoring(
      deps(async () => {
        asked++;
        throw new Error('blob service unavailable (503)');
      }),
      { name: 'wages', definition },
      { from: new Date(T0), to: new Date(T0 + 3_600_000) },
      new Date(T0 + 3_600_000 + 5_000),
    );
    expect(asked).toBe(1);
    expect(doc.version).toBe(4);
    expect(doc.samples).toEqual({ requests: 20, rows: 20 });
    expect(doc.predictionDrift).toEqual({
      psi: null,
      reason: expect.stringContaining('blob service unavailable (503)'),
    });
    expect(doc.predictionDrift.reason).toContain('version 4');
    // No PSI, so no prediction-drift finding from it.
    expect(doc.finding.reasons.filter((r) => r.startsWith('prediction drift'))).toEqual([]);
  });

  it('a version with no reference to make still says so, as before', async () => {
    const doc = await computeMonitoring(
      deps(async () => undefined),
      { name: 'wages', definition },
      { from: new Date(T0), to: new Date(T0 + 3_600_000) },
      new Date(T0 + 3_600_000 + 5_000),
    );
    expect(doc.predictionDrift).toEqual({
      psi: null,
      reason: expect.stringContaining('no holdout predictions for the production version'),
    });
  });
});
