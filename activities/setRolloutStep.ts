import type { z } from 'zod';
import { setRolloutStepActivity } from '../lib/contracts/rollout';
import { NonRetriableError } from '../lib/errors';
import { LIVE_STATES } from '../lib/rollout/records';
import { readRunRollout, recordStep } from '../lib/rollout/runRecord';
import type { RolloutStore } from '../lib/rollout/store';
import type { RunStore } from '../lib/runs/store';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof setRolloutStepActivity.input>;

/**
 * Moves a live rollout to a step (its percent) or pauses/resumes it, then records the step on the
 * run document. Refuses a rollout that is no longer live (`rollout_ended`). Idempotent.
 */
export function setRolloutStep(deps: {
  rollouts: Pick<RolloutStore, 'update'>;
  runs: Pick<RunStore, 'update'>;
}) {
  return async (input: Input): Promise<{ updated: boolean }> => {
    let updated = false;
    await deps.rollouts.update(input.modelName, (current) => {
      if (!current || current.rolloutId !== input.rolloutId || !LIVE_STATES.has(current.state)) {
        throw new NonRetriableError(
          'rollout_ended',
          `the rollout ${input.rolloutId} of ${input.modelName} is no longer live`,
        );
      }
      if (current.step === input.step && current.percent === input.percent && current.state === input.state)
        return undefined;
      updated = true;
      return {
        ...current,
        step: input.step,
        percent: input.percent,
        state: input.state,
        updatedAt: input.at,
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
        }),
      };
    });
    return { updated };
  };
}

registerActivityFactory(setRolloutStepActivity, (services) => setRolloutStep(services));
