import type { z } from 'zod';
import { checkTrainingActivity } from '../lib/contracts/training';
import type { TrainingDeps } from '../lib/services';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof checkTrainingActivity.input>;
type Output = z.input<typeof checkTrainingActivity.output>;

/** Reads a training job's status: state, progress, metrics so far, and the tail of its log. */
export function checkTraining(deps: Pick<TrainingDeps, 'backend'>) {
  return async (input: Input): Promise<Output> => {
    const s = await deps.backend(input.backend).status(input.jobId);
    return {
      jobId: s.jobId,
      state: s.state,
      progress: s.progress,
      iteration: s.iteration,
      metrics: s.metrics,
      logTail: s.logTail.slice(-20).map((l) => (l.length > 300 ? `${l.slice(0, 297)}...` : l)),
      ...(s.error ? { error: { code: s.error.code, message: s.error.message.slice(0, 2_000) } } : {}),
      ...(s.result ? { result: s.result } : {}),
      ...(s.backendStatus ? { backendStatus: s.backendStatus } : {}),
      ...(s.heartbeatAt ? { heartbeatAt: s.heartbeatAt } : {}),
    };
  };
}

registerActivityFactory(checkTrainingActivity, (services) => checkTraining(services));
