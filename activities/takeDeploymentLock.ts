import type { z } from 'zod';
import { takeDeploymentLockActivity } from '../lib/contracts/deploy';
import type { DeploymentLocks, LockHolder } from '../lib/registry/deployLock';
import { lockWaitReason } from '../lib/registry/deployLock';
import { lockWaitSubject } from '../lib/registry/lockWaits';
import { terminalRunStatuses } from '../lib/runs/document';
import type { RunStore } from '../lib/runs/store';
import { refuseEndedRun } from './setRolloutStep';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof takeDeploymentLockActivity.input>;
type Output = z.input<typeof takeDeploymentLockActivity.output>;

export interface TakeDeploymentLockDeps {
  deployLocks: Pick<DeploymentLocks, 'take' | 'release'>;
  runs: Pick<RunStore, 'get' | 'update'>;
}

/**
 * Takes the model's deployment lock for an approved run about to deploy. The run document names
 * the model first (`deploymentLock`), so every ending of the run (lib/runs/ending.ts) releases it,
 * even one that comes between the two writes; a run canceled or ended is refused (`run_canceled`)
 * and takes nothing. The holder is judged alive by its run document: a holder whose run is
 * terminal (or gone) is taken over. Waiters are served in arrival order (a ticket each, kept in
 * the lock's partition), and each wait is audited under the candidate's subject
 * (`model/<name>/<version>`, so the version's evidence pack lists it). Idempotent: a retry finds
 * the lock already its own.
 */
export function takeDeploymentLock(deps: TakeDeploymentLockDeps) {
  return async (input: Input): Promise<Output> => {
    const marked = await deps.runs.update(input.pipeline, input.runId, (r) =>
      r.cancelRequested ||
      terminalRunStatuses.has(r.status) ||
      r.deploymentLock?.modelName === input.modelName
        ? r
        : { ...r, deploymentLock: { modelName: input.modelName, at: input.at } },
    );
    refuseEndedRun(marked, 'the deployment lock was not taken');

    const isActive = async (holder: LockHolder): Promise<boolean> => {
      const run = await deps.runs.get(holder.pipeline, holder.runId);
      return run !== undefined && !terminalRunStatuses.has(run.status);
    };
    const taken = await deps.deployLocks.take(
      input.modelName,
      { runId: input.runId, pipeline: input.pipeline },
      input.at,
      isActive,
      { subject: lockWaitSubject(marked ?? { id: input.runId, steps: [] }, input.modelName) },
    );
    if (taken.granted) {
      // Ended while the lock was being taken (a cancel between the two writes released nothing):
      // give it back at once, so the next run does not wait for a takeover.
      const now = await deps.runs.get(input.pipeline, input.runId);
      if (!now || now.cancelRequested || terminalRunStatuses.has(now.status)) {
        await deps.deployLocks.release(input.modelName, input.runId);
        refuseEndedRun(now, 'the deployment lock was given back');
      }
      return {
        granted: true,
        ...(taken.tookOverFrom
          ? {
              tookOverFrom: taken.tookOverFrom,
              reason: `took over the deployment lock of ${input.modelName} from run ${taken.tookOverFrom.runId} of ${taken.tookOverFrom.pipeline}, which ended without releasing it`,
            }
          : {}),
      };
    }
    return { granted: false, holder: taken.holder, reason: lockWaitReason(input.modelName, taken) };
  };
}

registerActivityFactory(takeDeploymentLockActivity, (services) => takeDeploymentLock(services));
