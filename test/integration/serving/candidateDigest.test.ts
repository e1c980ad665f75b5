/** @jest-environment ./test/support/onnxEnvironment.js */
import resources from '../../../lib/resources.json';
import { ModelRegistry } from '../../../lib/registry/registry';
import { ArtifactStore } from '../../../lib/storage/blob';
import { serializeModel } from '../../../lib/training/models/artifact';
import { ProductionModels, scoreServed } from '../../../lib/serving/production';
import { OnnxModels } from '../../../lib/mlmodel/onnxModels';
import { useEmulators } from '../../support/emulatorSuite';
import { logisticModel, sampleRow } from '../../support/lrModel';

/**
 * A rollout candidate is loaded by version AND the digest the approval named: a registry version
 * whose record names another digest is refused, never served, whatever the rollout document says.
 * On the emulators (registry in Cosmos, the artifact in Azurite).
 */

describe('ProductionModels.version serves a candidate only under its approved digest', () => {
  const suite = useEmulators({ blob: true });
  const onnx = new OnnxModels();
  let registry: ModelRegistry;
  let models: ProductionModels;
  let digest: string;

  beforeAll(async () => {
    registry = new ModelRegistry(suite.cosmos.container('models'));
    const artifacts = ArtifactStore.fromConnectionString(suite.blob.connectionString);
    await artifacts.ensureContainers();
    const { bytes, digest: d } = serializeModel(logisticModel(20, 7));
    digest = d;
    const put = await artifacts.put(
      { container: resources.blobContainers.models, path: 'cand/v1.json' },
      bytes,
      {
        condition: 'overwrite',
      },
    );
    if (!put.ok) throw new Error('upload failed');
    await registry.registerVersion({
      modelName: 'cand',
      modelDigest: digest,
      artifactUri: put.uri,
      datasetDigest: 'd'.repeat(64),
      metrics: { roc_auc: 0.8 },
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: 'run-cand',
    });
    models = new ProductionModels({ registry, scorers: { store: artifacts, onnx }, aliasTtlMs: 0 });
  });
  afterAll(() => onnx.dispose());

  it('refuses model_digest_mismatch when the approved digest is not the registered one', async () => {
    await expect(models.version('cand', 1, 'e'.repeat(64))).rejects.toMatchObject({
      code: 'model_digest_mismatch',
      message: expect.stringContaining('e'.repeat(64)),
    });
  });

  it('serves the version under the digest the registry holds', async () => {
    const served = await models.version('cand', 1, digest);
    expect(served).toMatchObject({ modelName: 'cand', version: 1, digest });
    const p = await scoreServed(served, [sampleRow()], []);
    expect(p).toMatchObject({ version: 1, classes: ['no', 'yes'] });
  });
});
