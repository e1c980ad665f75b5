/**
 * The set-up the MLflow promotion integration tests share (test/integration/mlflow/promote,
 * ucPromote, databricksArtifacts): the pipeline's spec and dataset contract, an ONNX model folder as
 * another team's training logs it, Azurite and the fake MLflow server started with the run's
 * dataset stored, what the models container holds, and a refusal caught for its assertions.
 */
import type { DatasetContract } from '../../lib/contracts/datasetContract';
import type { ValidationError } from '../../lib/errors';
import resources from '../../lib/resources.json';
import { ArtifactStore } from '../../lib/storage/blob';
import { builtInModelFolder } from '../../lib/training/models/mlflowFolder';
import { trainModel } from '../../lib/training/models/train';
import { parseTrainingSpec } from '../../lib/training/spec';
import { syntheticClassification } from '../../lib/training/synthetic';
import { columnarBytes, syntheticClassificationContract } from './datasets';
import type { BlobEmulator } from './emulators';
import { startAzuriteBlob } from './emulators';
import { FakeMlflow } from './fakes/mlflow';

export const features = ['x0', 'x1', 'x2', 'x3', 'segment'];
export const spec = { algorithm: 'logistic_regression', target: 'label', features } as const;
/** The pipeline's dataset contract (the synthetic classification data's). */
export const contract: DatasetContract = syntheticClassificationContract;

/**
 * An ONNX model folder as another team's training would log it (a built-in model's MLflow folder,
 * trained on `featureNames`): relative path → bytes.
 */
export function loggedModelFolder(featureNames: string[] = features): Record<string, Buffer> {
  const data = syntheticClassification({ rows: 2_000, features: 4, seed: 11, withSegment: true });
  const model = trainModel(data, parseTrainingSpec({ ...spec, features: featureNames })).model;
  const folder = builtInModelFolder(Buffer.from(JSON.stringify(model), 'utf8'));
  return Object.fromEntries(folder.files.map((f) => [f.path, Buffer.from(f.bytes)]));
}

/** The error `p` rejects with (a test fails if it resolves). */
export async function refusal(p: Promise<unknown>): Promise<ValidationError> {
  try {
    await p;
  } catch (err) {
    return err as ValidationError;
  }
  throw new Error('expected a refusal');
}

export interface PromoteStores {
  azurite: BlobEmulator;
  fake: FakeMlflow;
  store: ArtifactStore;
  /** The run's validated dataset, stored content-addressed as the ingest step leaves it. */
  dataset: { uri: string; sha256: string };
}

/** Azurite and the fake MLflow server started, the containers made and the run's dataset stored. */
export async function startPromoteStores(): Promise<PromoteStores> {
  const [azurite, fake] = await Promise.all([startAzuriteBlob(), new FakeMlflow().start()]);
  const store = ArtifactStore.fromConnectionString(azurite.connectionString);
  await store.ensureContainers();
  const data = syntheticClassification({ rows: 3_000, features: 4, seed: 5, withSegment: true });
  const put = await store.putContentAddressed(resources.blobContainers.datasets, columnarBytes(data));
  return { azurite, fake, store, dataset: { uri: put.uri, sha256: put.sha256 } };
}

/** Every blob path in the models container, sorted: to assert a failed import stored nothing. */
export async function storedModelPaths(store: ArtifactStore): Promise<string[]> {
  const paths: string[] = [];
  for await (const b of store.list(resources.blobContainers.models, '')) paths.push(b.path);
  return paths.sort();
}
