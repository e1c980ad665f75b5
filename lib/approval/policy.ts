import { z } from 'zod';
import type { ApprovalRecord, ApprovalDecision } from './record';

/**
 * The approval policy of a pipeline and the pure rule that applies it. `decide` is used by the
 * approvalGate orchestrator (so it must stay deterministic: no clock, no I/O; time is passed in)
 * and by the HTTP handler to tell a reviewer whether the approval is still open.
 */

const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** Longest approval wait: GitHub Environments and Azure DevOps both stop at 30 days. */
export const MAX_APPROVAL_TIMEOUT_MS = 30 * UNIT_MS.d;

/** Milliseconds of a duration such as `90s`, `15m`, `72h`, `7d`. */
export function durationMs(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

export const durationSchema = z
  .string()
  .regex(DURATION, 'a duration such as "90s", "15m", "72h" or "7d"')
  .refine((s) => {
    const ms = DURATION.test(s) ? durationMs(s) : NaN;
    return ms >= 1_000 && ms <= MAX_APPROVAL_TIMEOUT_MS;
  }, 'between 1s and 30d');

/**
 * A reviewer: an e-mail address or UPN (what Entra ID puts in the App Service principal), kept in
 * lower case. Cosmos ids cannot hold `/ \ ? #`, and decision ids contain the reviewer.
 */
export const reviewerSchema = z
  .string()
  .trim()
  .toLowerCase()
  .min(3)
  .max(200)
  .regex(/^[^\s/\\?#<>"']+@[^\s/\\?#<>"']+$/, 'an e-mail address or user principal name');

const reviewerListSchema = z
  .array(reviewerSchema)
  .min(1)
  .max(20)
  .refine((l) => new Set(l).size === l.length, 'each reviewer once');

export const escalationSchema = z.object({
  action: z.literal('escalate'),
  /** Who is asked when the first reviewers did not decide in time. */
  reviewers: reviewerListSchema,
  /** Approvals needed once escalated (counting approvals already given); default: the policy's. */
  requiredApprovals: z.int().min(1).max(20).optional(),
  /** The new deadline, counted from the escalation. */
  timeout: durationSchema,
});

export const approvalPolicySchema = z
  .object({
    reviewers: reviewerListSchema,
    /** N of M: approvals needed. Any rejection rejects. The requester's approval never counts. */
    requiredApprovals: z.int().min(1).max(20).default(1),
    timeout: durationSchema.default('72h'),
    /** Send a reminder to reviewers who have not decided at this fraction of each deadline. */
    reminderAt: z.number().gt(0).lt(1).optional(),
    onTimeout: z
      .discriminatedUnion('action', [z.object({ action: z.literal('reject') }), escalationSchema])
      .default({
        action: 'reject',
      }),
  })
  .superRefine((p, ctx) => {
    if (p.requiredApprovals > p.reviewers.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['requiredApprovals'],
        message: `needs ${p.requiredApprovals} approvals but lists only ${p.reviewers.length} reviewers`,
      });
    }
    if (p.onTimeout.action === 'escalate') {
      const all = new Set([...p.reviewers, ...p.onTimeout.reviewers]);
      const need = p.onTimeout.requiredApprovals ?? p.requiredApprovals;
      if (need > all.size) {
        ctx.addIssue({
          code: 'custom',
          path: ['onTimeout', 'requiredApprovals'],
          message: `needs ${need} approvals but only ${all.size} people can approve after escalation`,
        });
      }
    }
  });
export type ApprovalPolicy = z.infer<typeof approvalPolicySchema>;
export type ApprovalPolicyInput = z.input<typeof approvalPolicySchema>;

/** The parts of a decision the policy looks at (the gate reads them back without audit fields). */
export type DecisionFacts = Pick<
  ApprovalDecision,
  'reviewer' | 'decision' | 'comment' | 'decidedAt' | 'modelDigest' | 'datasetDigest'
> & { approvalId?: string };

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
  for (const d of sorted) {
    if ((d.approvalId !== undefined && d.approvalId !== record.id) || seen.has(d.reviewer)) continue;
    seen.add(d.reviewer);
    if (!eligible.includes(d.reviewer)) {
      ignored.push({ reviewer: d.reviewer, reason: 'not a reviewer of this approval' });
    } else if (
      d.modelDigest !== record.candidate.modelDigest ||
      d.datasetDigest !== record.candidate.datasetDigest
    ) {
      ignored.push({
        reviewer: d.reviewer,
        reason: 'decided on a different candidate (model or dataset digest changed)',
      });
    } else if (Date.parse(d.decidedAt) > deadlineMs) {
      ignored.push({ reviewer: d.reviewer, reason: 'decided after the deadline' });
    } else if (d.decision === 'approve' && d.reviewer === requester) {
      ignored.push({ reviewer: d.reviewer, reason: 'the requester may not approve their own run' });
    } else if (d.decision === 'approve') {
      approvedBy.push(d.reviewer);
    } else {
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
