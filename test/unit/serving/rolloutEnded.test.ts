import type { RolloutDoc, RolloutState } from '../../../lib/rollout/records';
import type { TrafficSample } from '../../../lib/rollout/traffic';
import type { ServedModel } from '../../../lib/serving/production';
import { RolloutServing } from '../../../lib/serving/rollout';

/**
 * Only a live rollout (active or paused) sends traffic to its candidate. A rollout that ended keeps
 * its last percent on the document; the state alone must stop the candidate, or an aborted or
 * rolled-back candidate would keep answering at full share.
 */

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

const ended = (state: RolloutState, strategy: RolloutDoc['strategy']): RolloutDoc => ({
  id: 'rollout',
  kind: 'rollout',
  modelName: 'm',
  rolloutId: 'run-1:rollout',
  runId: 'run-1',
  pipeline: 'm',
  approvalId: 'run-1:approval',
  strategy,
  state,
  step: 2,
  // The percent of the step it ended in, left as it was.
  percent: 100,
  candidate: { version: 2, digest: '2'.repeat(64) },
  productionVersion: 1,
  holdoutRows: 0,
  agreementTolerance: 0.1,
  startedAt: '2026-03-01T00:00:00.000Z',
  updatedAt: '2026-03-01T01:00:00.000Z',
});

describe('predict after a rollout ended', () => {
  const cases: [RolloutState, RolloutDoc['strategy']][] = [];
  for (const state of ['rolled_back', 'aborted'] as const)
    for (const strategy of ['canary', 'shadow'] as const) cases.push([state, strategy]);

  it.each(cases)(
    '%s %s rollout at 100 %%: production answers, the candidate is never loaded',
    async (state, strategy) => {
      const samples: TrafficSample[] = [];
      const loaded: number[] = [];
      const s = new RolloutServing({
        models: {
          get: async () => served(1, 10),
          version: async (_name, version) => {
            loaded.push(version);
            return served(2, 20);
          },
          invalidate: () => undefined,
        },
        readRollout: async () => ended(state, strategy),
        record: (sample) => samples.push(sample),
        stateTtlMs: 60_000,
      });
      for (const key of ['customer-1', 'customer-2', undefined]) {
        expect(await s.predict('m', { rows: [{ x: 1 }] }, key)).toMatchObject({
          variant: 'production',
          modelVersion: 1,
          predictions: [10],
        });
      }
      // Let a shadow scoring (if one was wrongly started) run before looking.
      await new Promise((r) => setImmediate(r));
      expect(loaded).toEqual([]);
      expect(samples).toEqual([]);
    },
  );
});
