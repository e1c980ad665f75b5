/**
 * Params write-once in the mirror (lib/mlflow/mirror.ts): a batch refused for a param the run
 * already has is sent again without it, the clash recorded; a batch refused for anything else (the
 * run's params do not explain it) stays refused and the run shows `failed` with MLflow's reason.
 */
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { MlflowRejected } from '../../../lib/mlflow/client';
import type { LogBatch } from '../../../lib/mlflow/limits';
import type { MirrorDeps } from '../../../lib/mlflow/mirror';
import { mirrorRun } from '../../../lib/mlflow/mirror';
import { newRunDocument } from '../../../lib/runs/document';

const at = '2026-03-01T12:00:00.000Z';

function setup(existing: Record<string, string>, refuseAlways = false) {
  let doc: RunDocument = {
    ...newRunDocument({
      id: 'r1',
      pipeline: 'wages',
      pipelineVersion: 2,
      instanceId: 'r1',
      trigger: { kind: 'cli', by: 'ana@contoso.com' },
      source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/d.csv' },
      at,
    }),
    mlflow: {
      status: 'pending',
      experimentId: '1',
      runId: 'm1',
      done: [],
      attempts: 0,
      linkedJob: 'r1-train-1',
    },
  };
  const sent: LogBatch[] = [];
  const logged = new Map(Object.entries(existing));
  const client = {
    ensureExperiment: jest.fn(),
    findRunsByTag: jest.fn(),
    createRun: jest.fn(),
    logInputs: jest.fn(),
    updateRun: jest.fn(),
    getRunParams: jest.fn(async () => [...logged].map(([key, value]) => ({ key, value }))),
    logBatch: jest.fn(async (_run: string, batch: LogBatch) => {
      sent.push(batch);
      const clash = batch.params.find((p) => logged.has(p.key) && logged.get(p.key) !== p.value);
      if (clash || refuseAlways)
        throw new MlflowRejected(400, 'INVALID_PARAMETER_VALUE', `refused ${clash?.key ?? 'a tag'}`);
      for (const p of batch.params) logged.set(p.key, p.value);
    }),
  };
  const deps = {
    client,
    registry: {} as MirrorDeps['registry'],
    alias: 'production',
    productionVersionOf: async () => undefined,
    runs: {
      update: async (_p: string, _id: string, change: (r: RunDocument) => RunDocument) => (doc = change(doc)),
      listUnmirrored: async () => [],
    },
    trainingOf: async () => undefined,
    experimentPrefix: '',
    publicBaseUrl: 'https://sluice.example.com',
    now: () => new Date(at),
  } as unknown as MirrorDeps;
  return { deps, sent, logged, doc: () => doc, run: () => doc };
}

describe('params write-once in the mirror', () => {
  it('sends the batch again without the params the run has, recording a clash', async () => {
    const t = setup({ pipeline: 'wages', pipeline_version: '7' });
    const out = await mirrorRun(t.deps, t.run());
    expect(out).toMatchObject({ status: 'pending', logged: ['params'] });
    expect(t.sent).toHaveLength(2);
    expect(t.sent[1]!.params).toEqual([]);
    expect(t.sent[1]!.tags).toContainEqual({ key: 'sluice.param_conflicts', value: 'pipeline_version' });
    expect(t.logged.get('pipeline_version')).toBe('7');
    expect(t.doc().mlflow?.paramConflicts).toEqual([{ key: 'pipeline_version', sluice: '2', mlflow: '7' }]);
    expect(t.doc().mlflow?.done).toEqual(['params']);
  });

  it('leaves a refusal the params do not explain as it is: the run is failed with the reason', async () => {
    const t = setup({}, true);
    const out = await mirrorRun(t.deps, t.run());
    expect(out).toMatchObject({ status: 'failed', error: { code: 'mlflow_invalid_parameter_value' } });
    expect(t.sent).toHaveLength(2);
    expect(t.doc().mlflow).toMatchObject({ status: 'failed', done: [] });
    expect(t.doc().mlflow?.paramConflicts).toBeUndefined();
  });
});
