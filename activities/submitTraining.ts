import type { z } from 'zod';
import * as df from 'durable-functions';
import {
  TRAINING_COMPLETED_EVENT,
  submitTrainingActivity,
  trainingMonitorInstanceId,
} from '../lib/contracts/training';
import { trainingJobId } from '../lib/training/jobId';
import type { TrainingDeps } from '../lib/services';
import { trainingDeps } from '../lib/services';
import { withContractCategories } from '../lib/training/spec';
import { isCustomSpec } from '../lib/contracts/trainingSpec';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof submitTrainingActivity.input>;
type Output = z.input<typeof submitTrainingActivity.output>;

/**
 * Starts the run's training job on the backend its spec names, with the categories of categorical
 * features taken from the pipeline's dataset contract. A custom spec (the user's own code) is passed
 * on verbatim with the contract itself in the request: the job gets it as SLUICE_CONTRACT. The job id
 * is derived from the run id, so a retried or replayed submit finds the job it already started
 * (`created: false`). The local backend refuses a custom job whose code folder or program is missing
 * (`code_folder_missing`, `command_not_found`) before anything starts.
 */
/** Wakes the run's training monitor (an external event): it then polls at once instead of on its timer. */
export type WakeMonitor = (monitorInstanceId: string, jobId: string) => Promise<void>;

export function submitTraining(deps: Pick<TrainingDeps, 'backend' | 'contractOf'>, wake?: WakeMonitor) {
  return async (input: Input): Promise<Output> => {
    const backend = deps.backend(input.spec.backend);
    const contract = input.pipeline
      ? await deps.contractOf?.(input.pipeline.name, input.pipeline.version)
      : undefined;
    const custom = isCustomSpec(input.spec);
    const { jobId, created } = await backend.submit({
      jobId: trainingJobId(input.runId, input.attempt),
      runId: input.runId,
      spec: contract && !custom ? withContractCategories(input.spec, contract) : input.spec,
      dataset: input.dataset,
      ...(custom && contract ? { contract } : {}),
    });
    const ended = created && wake ? backend.whenEnded?.(jobId) : undefined;
    if (ended && wake) {
      // Not awaited: the activity returns at once. The event is only a hint (a lost one costs one
      // poll interval), so failures, such as a monitor that already finished, are ignored.
      const monitor = trainingMonitorInstanceId(input.runId, input.attempt);
      void ended.then(() => wake(monitor, jobId)).catch(() => undefined);
    }
    return { jobId, backend: backend.name, created };
  };
}

registerActivityFactory(
  submitTrainingActivity,
  (services) => (input, context) =>
    submitTraining(trainingDeps(services), (instanceId, jobId) =>
      df.getClient(context).raiseEvent(instanceId, TRAINING_COMPLETED_EVENT, { jobId }),
    )(input),
  { extraInputs: [df.input.durableClient()] },
);
