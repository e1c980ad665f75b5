/**
 * The bench model (20 features, logistic regression) behind a `ProductionModels` whose registry and
 * Blob answer from memory: for the measurements that leave storage out (the handler alone, the
 * library floor). devhost's own run reads it from its Cosmos emulator and Azurite instead.
 */
import type * as Functions from '@azure/functions';
import { createScoreHandler } from '../../functions/support/scoreHandler';
import { ProductionModels } from '../../lib/serving/production';
import { serializeModel } from '../../lib/training/models/artifact';
import { logisticModel } from '../../test/support/lrModel';

export function inMemoryProductionModels(): ProductionModels {
  const { bytes, digest } = serializeModel(logisticModel(20, 7));
  const at = new Date().toISOString();
  return new ProductionModels({
    registry: {
      getHead: async () => ({
        id: 'head',
        kind: 'head',
        modelName: 'bench',
        latestVersion: 1,
        aliasSeq: 1,
        aliases: { production: { version: 1, seq: 1, movedAt: at, movedBy: 'bench' } },
        tags: {},
        createdAt: at,
        updatedAt: at,
      }),
      getVersion: async () => ({
        id: 'version-000001',
        kind: 'version',
        modelName: 'bench',
        version: 1,
        modelDigest: digest,
        artifactUri: 'memory',
        datasetDigest: '0'.repeat(64),
        metrics: {},
        trainingSpec: {},
        algorithm: 'logistic_regression',
        runId: 'bench',
        createdAt: at,
        tags: {},
      }),
    },
    readArtifact: async () => bytes,
    aliasTtlMs: 5_000,
  });
}

/** Registers the scoring function on `app`, as functions/score.ts does, with the model from memory. */
export function registerMemoryScoring(app: typeof Functions.app): void {
  const models = inMemoryProductionModels();
  app.http('score', {
    route: 'models/{name}/predict',
    methods: ['POST'],
    authLevel: 'anonymous',
    handler: createScoreHandler(async () => models),
  });
}
