import { z } from 'zod';

/**
 * The approval policy of a pipeline (reviewers, N of M, timeout, escalation). It travels in the
 * approval gate's input and the approval record, so it lives here with no I/O; the rule that
 * applies it is lib/approval/policy.ts.
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
