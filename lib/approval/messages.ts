import type { ApprovalRecord } from '../contracts/approvalRecord';
import { markup } from './html';
import type { Notification } from '../notify/types';

/**
 * The words of every approval message. Pure: the notify activity passes the record, the recipient
 * and (for requests) the signed link; lib/notify only delivers (so it sits below the approval domain).
 */

/** The approval gate's messages (an override notice is lib/approval/overrideReview.ts). */
export type MessageKind = Exclude<Notification['kind'], 'override'>;

function when(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
}

function shell(title: string, paragraphs: ReturnType<typeof markup>[], link?: string): string {
  return markup`<!doctype html><html><body style="margin:0;background:#f5f6f8;font:15px/1.5 system-ui,Segoe UI,Helvetica,Arial,sans-serif;color:#1b1f24">
<div style="max-width:560px;margin:0 auto;padding:24px 16px"><div style="background:#fff;border:1px solid #dde1e6;border-radius:10px;padding:20px">
<div style="color:#2352c7;font-weight:700">Sluice</div><h1 style="font-size:19px;margin:6px 0 12px">${title}</h1>
${paragraphs.map((p) => markup`<p style="margin:0 0 12px">${p}</p>`)}
${link ? markup`<p style="margin:18px 0"><a href="${link}" style="display:inline-block;background:#2352c7;color:#fff;text-decoration:none;font-weight:650;padding:11px 20px;border-radius:8px">Review the evidence</a></p><p style="color:#5b6573;font-size:13px;margin:0">Opening the link changes nothing; you decide on the page. The link is personal: do not forward it.</p>` : ''}
</div></div></body></html>`.value;
}

export interface MessageInput {
  record: ApprovalRecord;
  kind: MessageKind;
  to: string;
  link?: string;
  /** Set when `to` receives the message as the delegate of this reviewer. */
  onBehalfOf?: string;
  /** For outcome messages. */
  outcome?: { status: string; reasons: string[] };
}

export function approvalMessage(i: MessageInput): Notification {
  const r = i.record;
  const c = r.candidate;
  const what = `${c.modelName} v${c.modelVersion}`;
  const base = {
    key: `${r.id}:${i.kind}:${r.stage}:${i.to}${i.onBehalfOf ? `:for:${i.onBehalfOf}` : ''}`,
    kind: i.kind,
    to: i.to,
    runId: r.runId,
    approvalId: r.id,
    pipeline: r.pipeline,
    ...(i.link ? { link: i.link } : {}),
  };
  const primary =
    r.evidence.metrics.find((m) => m.name === r.evidence.primaryMetric) ?? r.evidence.metrics[0];
  const metricLine = primary
    ? `${primary.name}: ${primary.candidate}${primary.production !== null ? ` (production ${primary.production})` : ' (first model)'}`
    : 'no metrics reported';
  const deadline = when(r.deadline);

  switch (i.kind) {
    case 'request':
    case 'reminder':
    case 'escalation': {
      const subject =
        i.kind === 'request'
          ? `Approval needed: deploy ${what} (${r.pipeline})`
          : i.kind === 'reminder'
            ? `Reminder: approval for ${what} (${r.pipeline}) is due ${deadline}`
            : `Escalated to you: approval for ${what} (${r.pipeline})`;
      const lead =
        (i.onBehalfOf
          ? `You receive this on behalf of ${i.onBehalfOf}, who delegated their approvals to you. `
          : '') +
        (i.kind === 'escalation'
          ? `The first reviewers did not reach a decision in time, so this approval was escalated to you.`
          : `Run ${r.runId} of pipeline ${r.pipeline}, requested by ${r.requestedBy || 'unknown'}, produced a candidate model.`);
      const text = [
        lead,
        `Candidate: ${what}, ${metricLine}.`,
        `Please decide by ${deadline}.`,
        '',
        i.link ? `Review the evidence and decide: ${i.link}` : '',
        'Opening the link changes nothing; you decide on the page. The link is personal: do not forward it.',
      ].join('\n');
      const htmlBody = shell(
        subject,
        [
          markup`${lead}`,
          markup`Candidate: <strong>${what}</strong>, ${metricLine}.`,
          markup`Please decide by <strong>${deadline}</strong>.`,
        ],
        i.link,
      );
      return { ...base, subject, text, html: htmlBody };
    }
    case 'outcome': {
      const status = i.outcome?.status ?? r.status;
      const reasons = i.outcome?.reasons ?? r.reasons ?? [];
      const subject = `Approval ${status}: ${what} (${r.pipeline})`;
      const text = [`The approval of ${what} for run ${r.runId} is ${status}.`, ...reasons].join('\n');
      return {
        ...base,
        subject,
        text,
        html: shell(subject, [
          markup`The approval of <strong>${what}</strong> for run ${r.runId} is <strong>${status}</strong>.`,
          ...reasons.map((x) => markup`${x}`),
        ]),
      };
    }
  }
}

/**
 * What the page tells a reviewer right after their decision was recorded: who is still awaited, or
 * what the outcome does to the run, in plain words (never "the run continues accordingly").
 */
export function decisionNoticeText(verdict: { outcome: string; waitingFor: readonly string[] }): string {
  switch (verdict.outcome) {
    case 'pending':
      return `Still waiting for ${verdict.waitingFor.join(', ')}.`;
    case 'approved':
      return 'The candidate is approved: the run now deploys it to production.';
    case 'rejected':
      return 'The candidate is rejected: the run stops here and production keeps its current model.';
    case 'escalate':
      return 'The approval is escalated: the run keeps waiting for a decision.';
    default:
      return `The approval is ${verdict.outcome}: the run stops and production keeps its current model.`;
  }
}
