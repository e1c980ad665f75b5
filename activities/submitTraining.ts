import type { z } from 'zod';
import { submitTrainingActivity, trainingJobId } from '../lib/contracts/training';
import type { TrainingDeps } from '../lib/training/deps';
import { getTrainingDeps } from '../lib/training/deps';
import { withContractCategories } from '../lib/training/spec';
import { registerActivity } from './support/define';

type Input = z.output<typeof submitTrainingActivity.input>;
type Output = z.input<typeof submitTrainingActivity.output>;

/**
 * Starts the run's training job on the backend its spec names, with the categories of categorical
 * features taken from the pipeline's dataset contract. The job id is derived from the run id, so a
 * retried or replayed submit finds the job it already started (`created: false`).
 */
export function submitTraining(deps: Pick<TrainingDeps, 'backend' | 'contractOf'>) {
  return async (input: Input): Promise<Output> => {
    const backend = deps.backend(input.spec.backend);
    const contract = input.pipeline
      ? await deps.contractOf?.(input.pipeline.name, input.pipeline.version)
      : undefined;
    const { jobId, created } = await backend.submit({
      jobId: trainingJobId(input.runId, input.attempt),
      runId: input.runId,
      spec: contract ? withContractCategories(input.spec, contract) : input.spec,
      dataset: input.dataset,
    });
    return { jobId, backend: backend.name, created };
  };
}

registerActivity(submitTrainingActivity, async (input) => submitTraining(await getTrainingDeps())(input));
