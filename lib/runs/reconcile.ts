import { approvalInstanceId } from '../contracts/orchestrations';
import type { RunEndingDeps } from './ending';
import { endRun, withdrawalMessage } from './ending';
import type { RunDocument, RunStatus, StopReason } from '../contracts/runDocument';
import { terminalRunStatuses } from './document';
import type { RunStore } from './store';
import type { RolloutStore } from '../rollout/store';
import { reconcileRollouts } from '../rollout/store';

/**
 * Reconciles a run document with its orchestration's real state. The run document is what people
 * read; when its orchestration was terminated from outside (the Durable API, the portal), failed
 * without recording an ending, or no longer exists, nothing else would ever end the document. Done
 * on read (GET /api/runs/{id}) and by the periodic sweep (functions/reconcileRuns).
 * The write is ETag-conditioned and leaves a document that became terminal meanwhile alone.
 */

/** What the Durable client reports; undefined when the instance does not exist. */
export interface OrchestrationState {
  runtimeStatus: string;
  output?: unknown;
}
export type ReadOrchestration = (instanceId: string) => Promise<OrchestrationState | undefined>;

export interface ReconcileDeps extends RunEndingDeps {
  runs: Pick<RunStore, 'update'>;
  orchestration: ReadOrchestration;
  now: () => Date;
  /**
   * Wakes the run's approval gate (if it still runs on its own: terminating a parent does not stop
   * its sub-orchestrations) so it sees the withdrawal now rather than at its next re-check.
   * Best effort: the gate re-reads Cosmos on its own schedule anyway.
   */
  wakeApproval?: (approvalId: string) => Promise<void>;
  /** Live rollouts, reconciled by the sweep with their orchestrations (docs/rollout.md). */
  rollouts?: Pick<RolloutStore, 'listLive' | 'update'>;
}

/**
 * A run document younger than this may not have its orchestration yet (the document is written
 * first, then the orchestration started), and a cancel in progress terminates before it ends the
 * document: neither is judged before this much time has passed.
 */
export const RECONCILE_GRACE_MS = 2 * 60_000;

interface Ending {
  status: RunStatus;
  stopReason: StopReason;
  reason: string;
}

function describeOutput(output: unknown): string | undefined {
  if (output === undefined || output === null || output === '') return undefined;
  if (typeof output === 'string') return output.slice(0, 500);
  const o = output as { reason?: unknown; message?: unknown };
  if (typeof o.reason === 'string') return o.reason.slice(0, 500);
  if (typeof o.message === 'string') return o.message.slice(0, 500);
  return JSON.stringify(output).slice(0, 500);
}

/** How a non-terminal run should end given its orchestration's state; undefined: leave it. */
export function judgeRun(
  run: RunDocument,
  state: OrchestrationState | undefined,
  now: Date,
): Ending | undefined {
  if (terminalRunStatuses.has(run.status)) return undefined;
  const age = now.getTime() - Date.parse(run.createdAt);
  if (!state) {
    if (age < RECONCILE_GRACE_MS) return undefined;
    return {
      status: 'failed',
      stopReason: 'orchestration_missing',
      reason: `the orchestration ${run.instanceId} of this run does not exist (never started, or purged); the run cannot continue`,
    };
  }
  const detail = describeOutput(state.output);
  switch (state.runtimeStatus) {
    case 'Terminated':
      return {
        status: 'canceled',
        stopReason: 'orchestration_terminated',
        reason: `the orchestration was terminated from outside${detail ? `: ${detail}` : ''}`,
      };
    case 'Failed':
      return {
        status: 'failed',
        stopReason: 'orchestration_failed',
        reason: `the orchestration failed without recording how the run ended${detail ? `: ${detail}` : ''}`,
      };
    case 'Completed':
      return {
        status: 'failed',
        stopReason: 'orchestration_ended',
        reason: `the orchestration completed without recording how the run ended${detail ? `: ${detail}` : ''}`,
      };
    default:
      return undefined; // Running, Pending, Suspended, ContinuedAsNew: it is still going
  }
}

/** Reconciles one run; returns the document as stored afterwards (unchanged when nothing to do). */
export async function reconcileRun(deps: ReconcileDeps, run: RunDocument): Promise<RunDocument> {
  if (terminalRunStatuses.has(run.status)) return run;
  const now = deps.now();
  if (run.cancelRequested && now.getTime() - Date.parse(run.updatedAt) < RECONCILE_GRACE_MS) return run;
  const ending = judgeRun(run, await deps.orchestration(run.instanceId), now);
  if (!ending) return run;
  const at = now.toISOString();
  const { run: ended, approvalStatus } = await endRun(
    deps,
    run,
    { ...ending, at },
    {
      // Only this ending withdraws the approval; one that got there first already did.
      withdrawal: (r) =>
        r.stopReason === ending.stopReason
          ? {
              reason: ending.stopReason,
              message: withdrawalMessage(
                ending.stopReason === 'orchestration_terminated' ? 'terminated' : 'ended',
                at,
                { status: ending.status, reason: ending.reason },
              ),
              at,
            }
          : undefined,
    },
  );
  if (approvalStatus === 'withdrawn' && deps.wakeApproval) {
    await deps.wakeApproval(approvalInstanceId(run.id)).catch(() => undefined);
  }
  return ended;
}

/** The sweep: reconciles every active run it is given, one failure not stopping the others. */
export async function reconcileRuns(
  deps: ReconcileDeps,
  runs: RunDocument[],
): Promise<{ checked: number; ended: { id: string; stopReason: string | undefined }[]; errors: string[] }> {
  const ended: { id: string; stopReason: string | undefined }[] = [];
  const errors: string[] = [];
  for (const run of runs) {
    try {
      const after = await reconcileRun(deps, run);
      if (after.status !== run.status) ended.push({ id: run.id, stopReason: after.stopReason });
    } catch (err) {
      errors.push(`${run.id}: ${(err as Error).message}`);
    }
  }
  // A rollout whose orchestration failed or vanished would keep its candidate serving: ended here.
  if (deps.rollouts) {
    try {
      const r = await reconcileRollouts({
        rollouts: deps.rollouts,
        orchestration: deps.orchestration,
        now: deps.now,
      });
      for (const id of r.ended) ended.push({ id, stopReason: 'rollout_orchestration_gone' });
      errors.push(...r.errors);
    } catch (err) {
      errors.push(`rollouts: ${(err as Error).message}`);
    }
  }
  return { checked: runs.length, ended, errors };
}
