import type { ApprovalPolicy, ApprovalPolicyInput } from '../contracts/approvalPolicy';
import { approvalPolicySchema } from '../contracts/approvalPolicy';
import type { Notification } from '../notify/types';
import { markup } from './html';

/**
 * The policy of an override's post-hoc review, from the pipeline's approval policy: the same
 * reviewers, one decision settles it (someone who knows the pipeline looked at what was pushed
 * past the quorum), the pipeline's `timeout` is the time allowed, with a reminder half way, and an
 * unreviewed override is escalated: to the pipeline's escalation reviewers when it has them, else
 * to the same reviewers again (a new message and a new deadline) so it is never silently dropped.
 */
export function overrideReviewPolicy(pipelinePolicy: ApprovalPolicyInput): ApprovalPolicy {
  const p = approvalPolicySchema.parse(pipelinePolicy);
  return approvalPolicySchema.parse({
    reviewers: p.reviewers,
    requiredApprovals: 1,
    timeout: p.timeout,
    reminderAt: p.reminderAt ?? 0.5,
    onTimeout:
      p.onTimeout.action === 'escalate'
        ? {
            action: 'escalate',
            reviewers: p.onTimeout.reviewers,
            requiredApprovals: 1,
            timeout: p.onTimeout.timeout,
          }
        : { action: 'escalate', reviewers: p.reviewers, requiredApprovals: 1, timeout: p.timeout },
  });
}

/** What the review's outcome makes of the version's override mark. */
export function reviewStateOf(
  outcome: 'approved' | 'rejected' | 'expired' | 'withdrawn',
): 'required' | 'reviewed' | 'rejected' {
  return outcome === 'approved' ? 'reviewed' : outcome === 'rejected' ? 'rejected' : 'required';
}

export interface OverrideNoticeInput {
  modelName: string;
  version: number;
  from: number | null;
  by: string;
  reason: string;
  pipeline: string;
  reviewRunId: string;
  approvalId: string;
  reviewDue: string;
  to: string;
  /** The evidence pack of the version. */
  evidenceLink?: string;
}

/**
 * The message every reviewer gets at once when an override deploys a version: what went to
 * production, by whom and why, and that a review request follows (with its own personal link).
 */
export function overrideNotice(i: OverrideNoticeInput): Notification {
  const what = `${i.modelName} v${i.version}`;
  const subject = `[Sluice] OVERRIDE: ${what} deployed without approval by ${i.by}`;
  const lines = [
    `${i.by} deployed ${what} to production by emergency override, without the approval quorum${i.from === null ? '' : ` (it replaced v${i.from})`}.`,
    `Reason given: ${i.reason}`,
    `The version is marked "override, review required". A review request follows; the review must be decided by ${i.reviewDue.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')}, else it is escalated.`,
  ];
  if (i.evidenceLink) lines.push(`Evidence pack: ${i.evidenceLink}`);
  return {
    key: `${i.approvalId}:override:${i.to}`,
    kind: 'override',
    to: i.to,
    subject,
    text: lines.join('\n\n'),
    html: markup`<!doctype html><html><body style="font:15px/1.5 system-ui,Segoe UI,Helvetica,Arial,sans-serif;color:#1b1f24"><div style="max-width:560px;margin:0 auto;padding:24px 16px"><div style="color:#b3261e;font-weight:700">Sluice: emergency override</div>${lines.map((l) => markup`<p>${l}</p>`)}</div></body></html>`
      .value,
    runId: i.reviewRunId,
    approvalId: i.approvalId,
    pipeline: i.pipeline,
  };
}
