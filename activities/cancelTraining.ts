import type { z } from 'zod';
import { cancelTrainingActivity } from '../lib/contracts/training';
import type { TrainingDeps } from '../lib/services';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof cancelTrainingActivity.input>;

/** Stops a training job (a canceled run, or the monitor's overall timeout). Idempotent. */
export function cancelTraining(deps: Pick<TrainingDeps, 'backend'>) {
  return async (input: Input): Promise<{ jobId: string }> => {
    await deps.backend(input.backend).cancel(input.jobId);
    return { jobId: input.jobId };
  };
}

registerActivityFactory(cancelTrainingActivity, (services) => cancelTraining(services));
