import type { z } from 'zod';
import { setRolloutStepActivity } from '../lib/contracts/rollout';
import { NonRetriableError } from '../lib/errors';
import { LIVE_STATES } from '../lib/rollout/records';
import { readRunRollout, recordStep } from '../lib/rollout/runRecord';
import type { RolloutStore } from '../lib/rollout/store';
import type { RunDocument } from '../lib/contracts/runDocument';
import { terminalRunStatuses } from '../lib/runs/document';
import type { RunStore } from '../lib/runs/store';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof setRolloutStepActivity.input>;

/**
 * Refuses (non-retriable, `run_canceled`) to act for a run that was canceled, or asked to be, or
 * has ended: a canceled run never moves traffic or production (docs/rollout.md). No run document
 * (a deployment outside a run) is not refused.
 */
export function refuseEndedRun(run: RunDocument | undefined, what: string): void {
  if (!run) return;
  if (run.cancelRequested || terminalRunStatuses.has(run.status)) {
    throw new NonRetriableError(
      'run_canceled',
      `run ${run.id} of ${run.pipeline} is ${run.cancelRequested && !terminalRunStatuses.has(run.status) ? 'being canceled' : run.status}; ${what}`,
    );
  }
}

/**
 * Moves a live rollout to a step (its percent) or pauses/resumes it, then records the step on the
 * run document. Refuses a rollout that is no longer live (`rollout_ended`) and a run canceled or
 * ended (`run_canceled`). Idempotent.
 */
export function setRolloutStep(deps: {
  rollouts: Pick<RolloutStore, 'update'>;
  runs: Pick<RunStore, 'update' | 'get'>;
}) {
  return async (input: Input): Promise<{ updated: boolean }> => {
    refuseEndedRun(
      await deps.runs.get(input.pipeline, input.runId),
      `the rollout ${input.rolloutId} does not change traffic for it`,
    );
    let updated = false;
    await deps.rollouts.update(input.modelName, (current) => {
      if (!current || current.rolloutId !== input.rolloutId || !LIVE_STATES.has(current.state)) {
        throw new NonRetriableError(
          'rollout_ended',
          `the rollout ${input.rolloutId} of ${input.modelName} is no longer live`,
        );
      }
      // What the step waits on stays until the step changes or a newer note replaces it.
      const waiting = input.waiting ?? (current.step === input.step ? current.waiting : undefined);
      if (
        current.step === input.step &&
        current.percent === input.percent &&
        current.state === input.state &&
        current.deadline === input.deadline &&
        JSON.stringify(current.waiting) === JSON.stringify(waiting)
      )
        return undefined;
      updated = true;
      const { waiting: _was, deadline: _deadline, ...rest } = current;
      void _was;
      void _deadline;
      return {
        ...rest,
        step: input.step,
        percent: input.percent,
        state: input.state,
        updatedAt: input.at,
        ...(waiting && waiting.length > 0 ? { waiting } : {}),
        // The step's deadline as of this change: absent when it has none, or is paused.
        ...(input.deadline ? { deadline: input.deadline } : {}),
      };
    });
    await deps.runs.update(input.pipeline, input.runId, (run) => {
      const record = readRunRollout(run.rollout, {
        rolloutId: input.rolloutId,
        modelName: input.modelName,
        strategy: input.strategy,
      });
      return {
        ...run,
        rollout: recordStep(record, {
          step: input.step,
          percent: input.percent,
          state: input.state,
          at: input.at,
          ...(input.passed ? { passed: input.passed } : {}),
          ...(input.note ? { note: input.note } : {}),
          deadline: input.deadline ?? null,
        }),
      };
    });
    return { updated };
  };
}

registerActivityFactory(setRolloutStepActivity, (services) => setRolloutStep(services));
