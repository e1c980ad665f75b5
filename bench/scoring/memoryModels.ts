/**
 * The bench model (20 features, logistic regression) behind a `ProductionModels` whose registry and
 * Blob answer from memory: for the measurements that leave storage out (the handler alone, the
 * library floor). devhost's own run reads it from its Cosmos emulator and Azurite instead.
 */
import type * as Functions from '@azure/functions';
import { createScoreHandler } from '../../functions/support/scoreHandler';
import type { ModelArtifact } from '../../lib/contracts/modelArtifact';
import { storeModelFiles } from '../../lib/mlmodel/blobFolder';
import { OnnxModels } from '../../lib/mlmodel/onnxModels';
import { ProductionModels } from '../../lib/serving/production';
import { serializeModel } from '../../lib/training/models/artifact';
import { builtInModelFolder } from '../../lib/training/models/mlflowFolder';
import { logisticModel } from '../../test/support/lrModel';
import { MemoryFolderStore } from '../../test/support/memoryFolderStore';

/** How the production version is stored: a legacy JSON (TS predict) or the MLflow folder (ONNX). */
export type BenchModelKind = 'json' | 'onnx';

/** The bench model in a memory store, as a legacy JSON and as the worker's MLflow folder. */
async function storedBenchModel(kind: BenchModelKind, store: MemoryFolderStore) {
  const { bytes, digest } = serializeModel(logisticModel(20, 7));
  if (kind === 'json') {
    const uri = store.uri({ container: 'models', path: `sha256/${digest}` });
    await store.put(uri, bytes);
    return { uri, digest, artifact: undefined as ModelArtifact | undefined };
  }
  const { files, artifact } = builtInModelFolder(bytes);
  const folder = await storeModelFiles(store.folderStore, files);
  return { uri: folder.uri, digest: folder.digest, artifact };
}

export function inMemoryProductionModels(
  kind: BenchModelKind = 'json',
  onnx = new OnnxModels(),
): ProductionModels {
  const store = new MemoryFolderStore();
  const stored = storedBenchModel(kind, store);
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
      getVersion: async () => {
        const { uri, digest, artifact } = await stored;
        return {
          id: 'version-000001',
          kind: 'version',
          modelName: 'bench',
          version: 1,
          modelDigest: digest,
          artifactUri: uri,
          ...(artifact ? { artifact } : {}),
          datasetDigest: '0'.repeat(64),
          metrics: {},
          trainingSpec: {},
          algorithm: 'logistic_regression',
          runId: 'bench',
          createdAt: at,
          tags: {},
        };
      },
    },
    scorers: { store: store.folderStore, onnx },
    aliasTtlMs: 5_000,
  });
}

/** Registers the scoring function on `app`, as functions/score.ts does, with the model from memory. */
export function registerMemoryScoring(app: typeof Functions.app, kind: BenchModelKind = 'json'): void {
  const models = inMemoryProductionModels(kind);
  app.http('score', {
    route: 'models/{name}/predict',
    methods: ['POST'],
    authLevel: 'anonymous',
    handler: createScoreHandler(async () => models),
  });
}
