import { TransientError } from '../../../lib/errors';
import type { FolderStore } from '../../../lib/mlmodel/blobFolder';
import { OnnxModels } from '../../../lib/mlmodel/onnxModels';
import type { ModelHead, ModelVersion } from '../../../lib/registry/records';
import { ProductionModels } from '../../../lib/serving/production';
import { serializeModel } from '../../../lib/training/models/artifact';
import { logisticModel, sampleRow } from '../../support/lrModel';

const at = '2026-03-01T00:00:00.000Z';
/** Legacy JSON versions only: the ONNX session cache is never asked. */
const scorers = {
  store: {
    getBuffer: async (uri: string) => ({ data: artifacts.get(uri)!.bytes }),
  } as unknown as FolderStore,
  onnx: new OnnxModels(),
};
const artifacts = new Map([1, 2].map((v) => [`mem://${v}`, serializeModel(logisticModel(20, v))]));

function fakeRegistry() {
  const state = { production: 1 as number | undefined, headReads: 0, fail: false };
  const registry = {
    getHead: async (): Promise<ModelHead> => {
      state.headReads++;
      if (state.fail) throw new TransientError('cosmos_unavailable', 'down');
      return {
        id: 'head',
        kind: 'head',
        modelName: 'm',
        latestVersion: 2,
        aliasSeq: 1,
        aliases: state.production
          ? { production: { version: state.production, seq: 1, movedAt: at, movedBy: 't' } }
          : {},
        tags: {},
        createdAt: at,
        updatedAt: at,
      };
    },
    getVersion: async (_: string, v: number): Promise<ModelVersion> => ({
      id: `version-${v}`,
      kind: 'version',
      modelName: 'm',
      version: v,
      modelDigest: artifacts.get(`mem://${v}`)!.digest,
      artifactUri: `mem://${v}`,
      datasetDigest: '0'.repeat(64),
      metrics: {},
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: 'r',
      createdAt: at,
      tags: {},
    }),
  };
  return { state, registry };
}

describe('production model cache', () => {
  it('looks the alias up once per TTL, serves the cached model meanwhile, then the new version', async () => {
    let now = 0;
    const { state, registry } = fakeRegistry();
    const models = new ProductionModels({
      registry,
      scorers,
      aliasTtlMs: 1000,
      now: () => now,
    });
    expect((await models.predict('m', { rows: [sampleRow()] })).version).toBe(1);
    await Promise.all(Array.from({ length: 50 }, () => models.predict('m', { rows: [sampleRow()] })));
    expect(state.headReads).toBe(1);
    state.production = 2;
    now = 1500;
    // Stale: this request still gets v1 while one background lookup runs.
    expect((await models.get('m')).version).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect((await models.get('m')).version).toBe(2);
    expect(state.headReads).toBe(2);
  });

  it('keeps serving the cached version through a registry outage, and reports no production model as 404', async () => {
    let now = 0;
    const { state, registry } = fakeRegistry();
    const models = new ProductionModels({
      registry,
      scorers,
      aliasTtlMs: 10,
      now: () => now,
    });
    await models.get('m');
    state.fail = true;
    now = 100;
    await models.get('m');
    await new Promise((r) => setImmediate(r));
    expect((await models.get('m')).version).toBe(1);
    state.fail = false;
    state.production = undefined;
    models.invalidate();
    await expect(models.get('m')).rejects.toMatchObject({ code: 'no_production_model', status: 404 });
  });
});
