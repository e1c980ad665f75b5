import type { z } from 'zod';
import { registerModelActivity } from '../lib/contracts/training';
import type { TrainingDeps } from '../lib/services';
import { trainingDeps } from '../lib/services';
import { loadVerifiedModel } from '../lib/training/models/artifact';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof registerModelActivity.input>;
type Output = z.input<typeof registerModelActivity.output>;

/**
 * Registers the trained model as a new version. The artifact is read back and must hash to the
 * digest the job reported and parse as a model: a swapped or corrupt artifact is refused (not
 * retried) and never registered. Registering the same digest again returns the same version.
 */
export function registerModel(deps: Pick<TrainingDeps, 'store' | 'registry'>) {
  return async (input: Input): Promise<Output> => {
    const { data } = await deps.store.getBuffer(input.model.uri, { sha256: input.model.sha256 });
    loadVerifiedModel(data, input.model.sha256);
    const { version, created } = await deps.registry.registerVersion({
      modelName: input.modelName,
      modelDigest: input.model.sha256,
      artifactUri: input.model.uri,
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
