import type { RolloutDoc } from '../../../lib/rollout/records';
import type { TrafficSample } from '../../../lib/rollout/traffic';
import type { ServedModel } from '../../../lib/serving/production';
import { RolloutServing } from '../../../lib/serving/rollout';

/** A served model that predicts `value` for every row (only what scoreServed reads). */
function served(version: number, value: number): ServedModel {
  return {
    modelName: 'm',
    version,
    digest: String(version).repeat(64),
    validate: (body) => (body as { rows: Record<string, unknown>[] }).rows,
    scorer: {
      scoreRows: async (rows: unknown[]) => ({ values: Float64Array.from(rows, () => value) }),
    } as unknown as ServedModel['scorer'],
  };
}

const doc = (over: Partial<RolloutDoc> = {}): RolloutDoc => ({
  id: 'rollout',
  kind: 'rollout',
  modelName: 'm',
  rolloutId: 'run-1:rollout',
  runId: 'run-1',
  pipeline: 'm',
  approvalId: 'run-1:approval',
  strategy: 'canary',
  state: 'active',
  step: 0,
  percent: 100,
  candidate: { version: 2, digest: '2'.repeat(64) },
  productionVersion: 1,
  holdoutRows: 0,
  agreementTolerance: 0.1,
  startedAt: '2026-03-01T00:00:00.000Z',
  updatedAt: '2026-03-01T00:00:00.000Z',
  ...over,
});

function serving(rollout: RolloutDoc | undefined, candidate: () => Promise<ServedModel>) {
  const samples: TrafficSample[] = [];
  const versions: [number, string][] = [];
  const s = new RolloutServing({
    models: {
      get: async () => served(1, 10),
      version: async (_name, version, digest) => {
        versions.push([version, digest]);
        return candidate();
      },
      invalidate: () => undefined,
    },
    readRollout: async () => rollout,
    record: (sample) => samples.push(sample),
    stateTtlMs: 60_000,
  });
  return { s, samples, versions };
}

const body = { rows: [{ x: 1 }, { x: 2 }] };

describe('predict under a rollout', () => {
  it('answers from production without a live rollout, and records nothing', async () => {
    for (const rollout of [undefined, doc({ state: 'rolled_back', percent: 0 }), doc({ percent: 0 })]) {
      const { s, samples } = serving(rollout, async () => served(2, 20));
      expect(await s.predict('m', body)).toMatchObject({
        variant: 'production',
        modelVersion: 1,
        predictions: [10, 10],
      });
      expect(samples).toEqual([]);
    }
  });

  it('serves only the approved candidate the rollout names, by its approved digest', async () => {
    const { s, samples, versions } = serving(doc(), async () => served(2, 20));
    expect(await s.predict('m', body, 'customer-1')).toMatchObject({
      variant: 'candidate',
      modelVersion: 2,
      predictions: [20, 20],
    });
    expect(versions).toEqual([[2, '2'.repeat(64)]]);
    expect(samples).toEqual([
      expect.objectContaining({ variant: 'candidate', version: 2, step: 0, rows: 2 }),
    ]);
  });

  it('falls back to production when the candidate fails, and counts it as a candidate error', async () => {
    const { s, samples } = serving(doc(), async () => Promise.reject(new Error('onnx session failed')));
    expect(await s.predict('m', body, 'customer-1')).toMatchObject({
      variant: 'production',
      modelVersion: 1,
    });
    expect(samples).toEqual([
      expect.objectContaining({ variant: 'candidate', version: 2, error: true }),
      expect.objectContaining({ variant: 'production', version: 1 }),
    ]);
  });

  it('keeps a request key on the same side at a step', async () => {
    const { s } = serving(doc({ percent: 50 }), async () => served(2, 20));
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const first = (await s.predict('m', body, key)).variant;
      for (let i = 0; i < 3; i++) expect((await s.predict('m', body, key)).variant).toBe(first);
    }
  });

  it('shadow: production answers, the candidate is scored after and compared', async () => {
    const { s, samples } = serving(doc({ strategy: 'shadow' }), async () => served(2, 10.5));
    expect(await s.predict('m', body)).toMatchObject({ variant: 'production', modelVersion: 1 });
    await new Promise((r) => setTimeout(r, 20));
    expect(samples).toEqual([
      expect.objectContaining({ variant: 'production', version: 1 }),
      expect.objectContaining({ variant: 'shadow', version: 2, compared: 2, agreed: 2 }),
    ]);
  });
});
