import { WITHDRAWAL_TAIL, withdrawRecord } from '../approval/record';
import type { Withdrawal } from '../contracts/approvalRecord';
import { approvalInstanceId } from '../contracts/orchestrations';
import type { ApprovalSlots } from '../approval/slot';
import type { ApprovalStore } from '../approval/store';
import type { DeploymentLocks } from '../registry/deployLock';
import type { RunDocument, RunStatus, StopReason } from '../contracts/runDocument';
import { terminalRunStatuses } from './document';
import type { RunStore } from './store';

/**
 * What ending a run does besides its own document, whoever ends it (the orchestration's finishRun,
 * a cancel, reconciliation): a still-pending approval is withdrawn with the reason, so its link no
 * longer takes decisions and the page says why, the pipeline's approval slot is released, and so
 * is the model's deployment lock when the run asked for one. Idempotent: withdrawing a closed approval and releasing a slot someone else holds change nothing.
 */
export interface RunEndingDeps {
  approvals: Pick<ApprovalStore, 'updateRecord'>;
  slots: Pick<ApprovalSlots, 'release'>;
  /**
   * The model deployment locks: a run that asked for one (its `deploymentLock`) releases it when it
   * ends. Every app path passes it (the services); absent only in tests of runs that never deploy.
   */
  deployLocks?: Pick<DeploymentLocks, 'release'>;
}

export interface RunDocumentEnding {
  status: RunStatus;
  stopReason?: StopReason;
  reason?: string;
  at: string;
}

/**
 * The run document as it ends, whoever ends it: status, stop reason and why, and every step still
 * open closed: a running one was interrupted (canceled); a pending one did not happen (skipped, or
 * canceled when the whole run was canceled).
 * A run that is already terminal is returned unchanged, so a cancel is never overwritten by the
 * orchestration's own ending, nor an ending by reconciliation. `extra` adds fields of the ending
 * (approval, deployment, reports).
 */
export function endRunDocument(
  r: RunDocument,
  ending: RunDocumentEnding,
  extra: Partial<RunDocument> = {},
): RunDocument {
  if (terminalRunStatuses.has(r.status)) return r;
  const { status, stopReason, reason, at } = ending;
  return {
    ...r,
    ...extra,
    status,
    ...(stopReason ? { stopReason } : {}),
    ...(reason ? { reason } : {}),
    steps: r.steps.map((s) =>
      s.status === 'pending' || s.status === 'running'
        ? {
            ...s,
            status: s.status === 'running' || status === 'canceled' ? 'canceled' : 'skipped',
            ...(s.startedAt ? { endedAt: at } : {}),
          }
        : s,
    ),
    endedAt: r.endedAt ?? at,
    updatedAt: at,
  };
}

export async function endRunApproval(
  deps: RunEndingDeps,
  run: Pick<RunDocument, 'id' | 'pipeline'>,
  withdrawal: Withdrawal,
): Promise<{ approvalStatus: string | undefined }> {
  let approvalStatus: string | undefined;
  try {
    const record = await deps.approvals.updateRecord(run.id, approvalInstanceId(run.id), (r) =>
      withdrawRecord(r, withdrawal),
    );
    approvalStatus = record.status;
  } catch (err) {
    // A run that ended before its approval step has no approval to withdraw.
    if ((err as { code?: string }).code !== 'approval_not_found') throw err;
  }
  await deps.slots.release(run.pipeline, run.id);
  return { approvalStatus };
}

/**
 * Ends a run, whoever ends it (the orchestration's finishRun, a cancel): the document first, with
 * {@link endRunDocument} closing every unfinished step, then the model's deployment lock released
 * when the run holds it ({@link releaseDeploymentLock}, on every ending) and its approval withdrawn
 * with the pipeline's approval slot released ({@link endRunApproval}); both are attempted even if
 * the other fails, and the first failure is thrown. `before` changes the document first (the
 * orchestration's last step updates), `extra` adds fields of the ending, `withdrawal` says why the
 * approval closes given the ended document, or undefined to leave the approval and the slot alone
 * (somebody else's ending got there first). Idempotent.
 */
export async function endRun(
  deps: RunEndingDeps & { runs: Pick<RunStore, 'update'> },
  run: Pick<RunDocument, 'id' | 'pipeline'>,
  ending: RunDocumentEnding,
  options: {
    before?: (r: RunDocument) => RunDocument;
    extra?: (r: RunDocument) => Partial<RunDocument>;
    withdrawal: (ended: RunDocument) => Withdrawal | undefined;
  },
): Promise<{ run: RunDocument; approvalStatus: string | undefined }> {
  const ended = await deps.runs.update(run.pipeline, run.id, (current) => {
    const r = options.before ? options.before(current) : current;
    return endRunDocument(r, ending, options.extra ? options.extra(r) : {});
  });
  // Both are attempted whatever the other does, then the first failure is thrown (the caller
  // retries; both are idempotent): a failed lock release must not leave the approval pending for
  // good, nor a failed withdrawal keep the lock. The lock is released on every ending, whoever's
  // ending got there first: a lock held by a terminal run only waits for a takeover otherwise.
  // Releasing a lock this run does not hold changes nothing.
  const withdrawal = options.withdrawal(ended);
  const [lock, approval] = await Promise.allSettled([
    releaseDeploymentLock(deps, ended),
    withdrawal ? endRunApproval(deps, ended, withdrawal) : Promise.resolve({ approvalStatus: undefined }),
  ]);
  if (lock.status === 'rejected') throw lock.reason;
  if (approval.status === 'rejected') throw approval.reason;
  return { run: ended, approvalStatus: approval.value.approvalStatus };
}

/** Frees the model deployment lock the run asked for, if it holds it. Idempotent. */
export async function releaseDeploymentLock(
  deps: Pick<RunEndingDeps, 'deployLocks'>,
  run: Pick<RunDocument, 'id' | 'deploymentLock'>,
): Promise<boolean> {
  if (!deps.deployLocks || !run.deploymentLock) return false;
  return deps.deployLocks.release(run.deploymentLock.modelName, run.id);
}

const DAY = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');

/** The sentence the approval page shows for a withdrawn approval. */
export function withdrawalMessage(
  kind: 'canceled' | 'ended' | 'superseded' | 'terminated',
  at: string,
  detail: { by?: string; status?: string; reason?: string } = {},
): string {
  const why = detail.reason && detail.reason.length > 300 ? `${detail.reason.slice(0, 299)}…` : detail.reason;
  switch (kind) {
    case 'canceled':
      return `This run was canceled on ${DAY(at)}${detail.by ? ` by ${detail.by}` : ''}; ${WITHDRAWAL_TAIL}`;
    case 'terminated':
      return `This run's orchestration was ended from outside on ${DAY(at)}${why ? ` (${why})` : ''}; ${WITHDRAWAL_TAIL}`;
    case 'superseded':
      return `This run was superseded on ${DAY(at)}${why ? `: ${why}` : ''}; ${WITHDRAWAL_TAIL}`;
    default:
      return `This run ended (${detail.status ?? 'stopped'}) on ${DAY(at)}${why ? `: ${why}` : ''}; ${WITHDRAWAL_TAIL}`;
  }
}
