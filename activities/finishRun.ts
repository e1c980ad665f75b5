import type { z } from 'zod';
import { finishRunActivity } from '../lib/contracts/pipeline';
import type { RunEndingDeps } from '../lib/runs/ending';
import { endRun, withdrawalMessage } from '../lib/runs/ending';
import type { RunStatus } from '../lib/contracts/runDocument';
import { applyStepUpdates } from '../lib/runs/document';
import type { RunStore } from '../lib/runs/store';
import type { CheckDeps } from '../lib/checks/service';
import type { SweepResult } from '../lib/checks/service';
import { startNudge } from '../lib/checks/nudge';
import { checkDeps, type Services } from '../lib/services';
import { registerActivityFactory } from './support/define';

/**
 * Ends the run document: the last step updates the orchestration still had pending, then final
 * status, the gate that stopped it and why, reports. Then releases the model's deployment lock if
 * the run holds it, withdraws the run's approval if it is still pending and releases the
 * pipeline's approval slot. Idempotent.
 */
export function finishRun(deps: RunEndingDeps & { runs: Pick<RunStore, 'update'> }) {
  return async (input: z.output<typeof finishRunActivity.input>): Promise<{ status: RunStatus }> => {
    // A run canceled from the API is already terminal: the orchestration's own ending must not
    // overwrite that (endRunDocument leaves a terminal run alone).
    const { run } = await endRun(
      deps,
      { id: input.runId, pipeline: input.pipeline },
      {
        status: input.status,
        ...(input.stopReason ? { stopReason: input.stopReason } : {}),
        ...(input.reason ? { reason: input.reason } : {}),
        at: input.at,
      },
      {
        before: (r) =>
          input.updates || input.metrics ? applyStepUpdates(r, input.updates ?? [], input.metrics) : r,
        extra: (r) => ({
          ...(input.approval ? { approval: input.approval } : {}),
          ...(input.deployment ? { deployment: input.deployment } : {}),
          reports: { ...r.reports, ...(input.reports ?? {}) },
        }),
        withdrawal: (ended) => ({
          reason: ended.stopReason ?? ended.status,
          message: withdrawalMessage(
            ended.status === 'canceled'
              ? 'canceled'
              : ended.stopReason === 'superseded'
                ? 'superseded'
                : 'ended',
            input.at,
            { status: ended.status, ...(ended.reason ? { reason: ended.reason } : {}) },
          ),
          at: input.at,
        }),
      },
    );
    return { status: run.status };
  };
}

/**
 * finishRun, then a nudge to the deployment checks waiting on the run (docs/delivery.md): started,
 * not awaited, so the orchestration never waits on Azure DevOps or GitHub; the timer is the backstop.
 */
export function finishRunAndNudge(
  services: Services,
  deps: CheckDeps | (() => CheckDeps) = () => checkDeps(services),
  onNudged?: (outcome: SweepResult | Error) => void,
) {
  const finish = finishRun(services);
  return async (input: z.output<typeof finishRunActivity.input>): Promise<{ status: RunStatus }> => {
    const out = await finish(input);
    startNudge(deps, { runEnded: input.runId }, onNudged);
    return out;
  };
}

registerActivityFactory(finishRunActivity, (services) => finishRunAndNudge(services));
