import type { z } from 'zod';
import { registerModelActivity } from '../lib/contracts/training';
import { NonRetriableError } from '../lib/errors';
import { openModelFolder } from '../lib/mlmodel/blobFolder';
import { parseMLmodel } from '../lib/mlmodel/mlmodelFile';
import type { TrainingDeps } from '../lib/services';
import { trainingDeps } from '../lib/services';
import { describeModel } from '../lib/scoring/scorer';
import { loadVerifiedModel } from '../lib/training/models/artifact';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof registerModelActivity.input>;
type Output = z.input<typeof registerModelActivity.output>;

/**
 * Checks a model folder before it is registered: the manifest hashes to the digest the job
 * reported (every file read back is checked against it), MLmodel parses and its flavor is the one
 * the artifact says, and the ONNX file it names is in the manifest. Not retried when it fails.
 */
async function verifyFolder(
  deps: Pick<TrainingDeps, 'store'>,
  input: Input,
  artifact: NonNullable<Input['artifact']>,
): Promise<void> {
  const folder = await openModelFolder(deps.store, input.model.uri, input.model.sha256);
  if (!folder.has('MLmodel')) {
    throw new NonRetriableError('mlmodel_missing', `the model folder ${input.model.uri} has no MLmodel`);
  }
  const info = parseMLmodel((await folder.read('MLmodel')).toString('utf8'));
  if (artifact.flavor === 'onnx') {
    if (info.flavor !== 'onnx' || !info.onnxPath || info.onnxPath !== artifact.onnxPath) {
      throw new NonRetriableError(
        'mlmodel_invalid',
        `the model folder's MLmodel names ${info.onnxPath ? `ONNX file ${info.onnxPath}` : 'no ONNX file'}, but the job reported ${artifact.onnxPath ?? 'none'}`,
      );
    }
    if (!folder.has(info.onnxPath)) {
      throw new NonRetriableError(
        'onnx_invalid',
        `the ONNX file ${info.onnxPath} that MLmodel names is not in the model folder`,
      );
    }
  }
}

/**
 * Registers the trained model as a new version. A legacy JSON artifact is read back and must hash
 * to the digest the job reported and parse as a model; a model folder must pass `verifyFolder`
 * and its `artifact` is stored on the version (what evaluation and predict load it by). A swapped
 * or corrupt artifact is refused (not retried) and never registered. Registering the same digest
 * again returns the same version.
 */
export function registerModel(deps: Pick<TrainingDeps, 'store' | 'registry'>) {
  return async (input: Input): Promise<Output> => {
    // A folder that came without its description (an older pipeline revision) is described from
    // the built-in model it holds.
    const artifact = await describeModel(deps.store, {
      uri: input.model.uri,
      digest: input.model.sha256,
      ...(input.artifact ? { artifact: input.artifact } : {}),
    });
    if (artifact) await verifyFolder(deps, input, artifact);
    else {
      const { data } = await deps.store.getBuffer(input.model.uri, { sha256: input.model.sha256 });
      loadVerifiedModel(data, input.model.sha256);
    }
    const { version, created } = await deps.registry.registerVersion({
      modelName: input.modelName,
      modelDigest: input.model.sha256,
      artifactUri: input.model.uri,
      ...(artifact ? { artifact } : {}),
      datasetDigest: input.datasetSha256,
      metrics: input.metrics,
      trainingSpec: input.spec as Record<string, unknown>,
      algorithm: input.algorithm,
      runId: input.runId,
      tags: input.tags ?? {},
    });
    if (input.alias) {
      await deps.registry.moveAlias({
        modelName: input.modelName,
        alias: input.alias,
        to: version.version,
        by: `run:${input.runId}`,
        reason: `registered by run ${input.runId}`,
        runId: input.runId,
      });
    }
    return {
      modelName: input.modelName,
      version: version.version,
      created,
      modelDigest: version.modelDigest,
    };
  };
}

registerActivityFactory(registerModelActivity, (services) => registerModel(trainingDeps(services)));
