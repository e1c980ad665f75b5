import type { z } from 'zod';
import { finishRunActivity } from '../lib/contracts/pipeline';
import { getRunDeps } from '../lib/runs/deps';
import type { RunEndingDeps } from '../lib/runs/ending';
import { endRunApproval, endRunDocument, withdrawalMessage } from '../lib/runs/ending';
import type { RunStatus } from '../lib/contracts/runDocument';
import type { RunStore } from '../lib/runs/store';
import { registerActivity } from './support/define';

/**
 * Ends the run document: final status, the gate that stopped it and why, reports. Then withdraws
 * the run's approval if it is still pending and releases the pipeline's approval slot. Idempotent.
 */
export function finishRun(deps: RunEndingDeps & { runs: Pick<RunStore, 'update'> }) {
  return async (input: z.output<typeof finishRunActivity.input>): Promise<{ status: RunStatus }> => {
    // A run canceled from the API is already terminal: the orchestration's own ending must not
    // overwrite that.
    const run = await deps.runs.update(input.pipeline, input.runId, (r) =>
      endRunDocument(
        r,
        {
          status: input.status,
          ...(input.stopReason ? { stopReason: input.stopReason } : {}),
          ...(input.reason ? { reason: input.reason } : {}),
          at: input.at,
        },
        {
          ...(input.approval ? { approval: input.approval } : {}),
          ...(input.deployment ? { deployment: input.deployment } : {}),
          reports: { ...r.reports, ...(input.reports ?? {}) },
        },
      ),
    );
    const kind =
      run.status === 'canceled' ? 'canceled' : run.stopReason === 'superseded' ? 'superseded' : 'ended';
    await endRunApproval(deps, run, {
      reason: run.stopReason ?? run.status,
      message: withdrawalMessage(kind, input.at, {
        status: run.status,
        ...(run.reason ? { reason: run.reason } : {}),
      }),
      at: input.at,
    });
    return { status: run.status };
  };
}

registerActivity(finishRunActivity, async (input) => finishRun(await getRunDeps())(input));
