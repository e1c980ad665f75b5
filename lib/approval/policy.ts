import type { ApprovalDecision, ApprovalRecord } from '../contracts/approvalRecord';

/**
 * The pure rule that applies a pipeline's approval policy (schema: lib/contracts/approvalPolicy.ts).
 * `decide` is used by the approvalGate orchestrator (so it must stay deterministic: no clock, no
 * I/O; time is passed in) and by the HTTP handler to tell a reviewer whether the approval is still
 * open.
 */

/** The parts of a decision the policy looks at (the gate reads them back without audit fields). */
export type DecisionFacts = Pick<
  ApprovalDecision,
  'reviewer' | 'decision' | 'comment' | 'decidedAt' | 'modelDigest' | 'datasetDigest'
> & {
  approvalId?: string;
  /** Set when the reviewer's delegate decided: the person who voted (one person counts once). */
  delegate?: string | undefined;
};

export type Outcome = 'pending' | 'approved' | 'rejected' | 'expired' | 'withdrawn' | 'escalate';

export interface Verdict {
  outcome: Outcome;
  /** Why, in sentences a reviewer or requester can read. */
  reasons: string[];
  approvedBy: string[];
  rejectedBy: string[];
  /** Decisions that exist but do not count, with why. */
  ignored: { reviewer: string; reason: string }[];
  required: number;
  /** Reviewers who may still decide and have not. */
  waitingFor: string[];
  /** Current deadline (ISO). */
  deadline: string;
  /** When to remind `waitingFor`, if a reminder is due and not yet sent (ISO). */
  remindAt?: string;
}

/** Reviewers allowed to decide at the record's current stage. */
export function eligibleReviewers(record: ApprovalRecord): string[] {
  const list = [...record.policy.reviewers];
  if (record.stage === 'escalated' && record.policy.onTimeout.action === 'escalate') {
    for (const r of record.policy.onTimeout.reviewers) if (!list.includes(r)) list.push(r);
  }
  return list;
}

export function requiredApprovals(record: ApprovalRecord): number {
  const p = record.policy;
  return record.stage === 'escalated' && p.onTimeout.action === 'escalate'
    ? (p.onTimeout.requiredApprovals ?? p.requiredApprovals)
    : p.requiredApprovals;
}

function reminderTime(record: ApprovalRecord): string | undefined {
  const fraction = record.policy.reminderAt;
  if (fraction === undefined || record.remindedStages.includes(record.stage)) return undefined;
  const start = Date.parse(record.stageStartedAt);
  const end = Date.parse(record.deadline);
  return new Date(start + Math.floor((end - start) * fraction)).toISOString();
}

/**
 * Applies the policy to the record and every decision stored for it, at `now`. Pure and total: the
 * same record and decisions always give the same verdict, whatever order events arrived in.
 */
export function decide(record: ApprovalRecord, decisions: readonly DecisionFacts[], now: Date): Verdict {
  const eligible = eligibleReviewers(record);
  const required = requiredApprovals(record);
  const requester = record.requestedBy.toLowerCase();
  const approvedBy: string[] = [];
  const rejected: { reviewer: string; comment: string }[] = [];
  const ignored: Verdict['ignored'] = [];
  const deadlineMs = Date.parse(record.deadline);

  // Deterministic order, whatever order Cosmos returned them in.
  const sorted = [...decisions].sort(
    (a, b) => a.decidedAt.localeCompare(b.decidedAt) || a.reviewer.localeCompare(b.reviewer),
  );
  const seen = new Set<string>();
  // One person, one vote: a delegate who also decided as themselves (or for two delegators) counts
  // once, whatever order two simultaneous POSTs were stored in. The earliest decision counts.
  const voted = new Set<string>();
  for (const d of sorted) {
    if ((d.approvalId !== undefined && d.approvalId !== record.id) || seen.has(d.reviewer)) continue;
    seen.add(d.reviewer);
    const person = (d.delegate ?? d.reviewer).toLowerCase();
    if (!eligible.includes(d.reviewer)) {
      ignored.push({ reviewer: d.reviewer, reason: 'not a reviewer of this approval' });
    } else if (voted.has(person)) {
      ignored.push({
        reviewer: d.reviewer,
        reason: `${person} already decided on this approval; one person counts once toward the quorum`,
      });
    } else if (
      d.modelDigest !== record.candidate.modelDigest ||
      d.datasetDigest !== record.candidate.datasetDigest
    ) {
      voted.add(person);
      ignored.push({
        reviewer: d.reviewer,
        reason: 'decided on a different candidate (model or dataset digest changed)',
      });
    } else if (Date.parse(d.decidedAt) > deadlineMs) {
      voted.add(person);
      ignored.push({ reviewer: d.reviewer, reason: 'decided after the deadline' });
    } else if (d.decision === 'approve' && (d.reviewer === requester || person === requester)) {
      voted.add(person);
      ignored.push({
        reviewer: d.reviewer,
        reason:
          person === d.reviewer
            ? 'the requester may not approve their own run'
            : `the requester (${person}) may not approve their own run, not even on behalf of ${d.reviewer}`,
      });
    } else if (d.decision === 'approve') {
      voted.add(person);
      approvedBy.push(d.reviewer);
    } else {
      voted.add(person);
      rejected.push({ reviewer: d.reviewer, comment: d.comment });
    }
  }
  const rejectedBy = rejected.map((r) => r.reviewer);
  const waitingFor = eligible.filter((r) => !seen.has(r));
  const base = { approvedBy, rejectedBy, ignored, required, waitingFor, deadline: record.deadline };

  if (record.status !== 'pending') {
    return { ...base, outcome: record.status, reasons: record.reasons ?? [], waitingFor: [] };
  }
  if (rejected.length > 0) {
    return {
      ...base,
      outcome: 'rejected',
      waitingFor: [],
      reasons: rejected.map((r) => `Rejected by ${r.reviewer}${r.comment ? `: ${r.comment}` : '.'}`),
    };
  }
  if (approvedBy.length >= required) {
    return {
      ...base,
      outcome: 'approved',
      waitingFor: [],
      reasons: [`Approved by ${approvedBy.join(', ')} (${approvedBy.length} of ${required} required).`],
    };
  }
  const canEscalate = record.stage === 'primary' && record.policy.onTimeout.action === 'escalate';
  const have = `${approvedBy.length} of ${required} required approvals`;
  if (now.getTime() >= deadlineMs) {
    return canEscalate
      ? {
          ...base,
          outcome: 'escalate',
          reasons: [`No decision by ${record.deadline} (${have}); escalating.`],
        }
      : {
          ...base,
          outcome: 'expired',
          waitingFor: [],
          reasons: [`Timed out at ${record.deadline} with ${have}.`],
        };
  }
  const couldStillApprove = waitingFor.filter((r) => r !== requester).length;
  if (approvedBy.length + couldStillApprove < required) {
    const note = eligible.includes(requester) ? ' (the requester is a reviewer but may not approve)' : '';
    const why = `Quorum cannot be reached: ${have}, and only ${couldStillApprove} other reviewer(s) can still approve${note}`;
    return canEscalate
      ? { ...base, outcome: 'escalate', reasons: [`${why}; escalating.`] }
      : { ...base, outcome: 'rejected', waitingFor: [], reasons: [`${why}.`] };
  }
  const remindAt = reminderTime(record);
  return {
    ...base,
    outcome: 'pending',
    reasons: [`Waiting for ${waitingFor.join(', ')} (${have}).`],
    ...(remindAt ? { remindAt } : {}),
  };
}
