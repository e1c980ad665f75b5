import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import type { TrainingMonitorOutput, TrainingStatus } from '../lib/contracts/training';
import {
  TRAINING_COMPLETED_EVENT,
  TRAINING_MONITOR_ORCHESTRATOR,
  cancelTrainingActivity,
  checkTrainingActivity,
  trainingMonitorInputSchema,
} from '../lib/contracts/training';
import { callActivity } from './support/call';

/**
 * Watches a training job until it ends (a sub-orchestration; instance id `<runId>:train`).
 *
 * Each turn checks the job, then sleeps on a durable timer whose interval grows from
 * `firstPollSeconds` by `backoff` up to `maxPollSeconds`, or until a `TrainingCompleted` event
 * (the push path: an Azure ML job-status event) wakes it early. The event only wakes it: the
 * outcome is always what `checkTraining` reads. After {@link POLLS_PER_GENERATION} polls it
 * continues as new, so its history stays small however long training runs. Past the deadline it
 * cancels the job and fails with `training_timeout`. A failed job returns its log tail.
 */
export const POLLS_PER_GENERATION = 25;

const terminal = (s: TrainingStatus['state']) => s === 'completed' || s === 'failed' || s === 'canceled';

export const trainingMonitor: OrchestrationHandler = function* (
  context: OrchestrationContext,
): Generator<Task, TrainingMonitorOutput | undefined, unknown> {
  const input = trainingMonitorInputSchema.parse(context.df.getInput());
  const job = { jobId: input.jobId, backend: input.backend };
  const deadline = Date.parse(input.deadline);
  const log = (message: string) => {
    if (!context.df.isReplaying) context.log(`trainingMonitor ${input.jobId}: ${message}`);
  };

  let polls = input.polls;
  for (let turn = 0; ; turn++) {
    const status = yield* callActivity(context, checkTrainingActivity, job);
    polls++;
    context.df.setCustomStatus({
      jobId: status.jobId,
      state: status.state,
      progress: status.progress,
      iteration: status.iteration,
      metrics: status.metrics,
      backendStatus: status.backendStatus,
      polls,
    });
    if (terminal(status.state)) {
      log(`${status.state} after ${polls} polls`);
      return {
        jobId: status.jobId,
        state: status.state,
        polls,
        ...(status.result ? { result: status.result } : {}),
        ...(status.error ? { error: status.error } : {}),
        logTail: status.logTail,
      };
    }

    const now = context.df.currentUtcDateTime.getTime();
    if (now >= deadline) {
      yield* callActivity(context, cancelTrainingActivity, job);
      log(`deadline ${input.deadline} passed: canceled`);
      return {
        jobId: status.jobId,
        state: 'failed',
        polls,
        error: {
          code: 'training_timeout',
          message: `training did not finish by ${input.deadline}; the job was canceled`,
        },
        logTail: status.logTail,
      };
    }

    if (turn + 1 >= POLLS_PER_GENERATION) {
      // Bound the history: start over with the poll count (and so the interval) carried along.
      context.df.continueAsNew({ ...input, polls });
      return undefined;
    }

    const intervalMs =
      Math.min(input.maxPollSeconds, input.firstPollSeconds * input.backoff ** (polls - 1)) * 1000;
    const timer = context.df.createTimer(new Date(Math.min(now + intervalMs, deadline)));
    const wake = context.df.waitForExternalEvent(TRAINING_COMPLETED_EVENT);
    const winner = yield context.df.Task.any([timer, wake]);
    if (winner === wake) timer.cancel();
  }
};

df.app.orchestration(TRAINING_MONITOR_ORCHESTRATOR, trainingMonitor);
