import { z } from 'zod';

/**
 * One message to one person. Notifiers deliver it; they never build links or read approvals.
 * `key` is stable for the same logical message (approval, kind, stage, recipient), so a retried
 * activity sends it at most once where the channel allows (outbox blob, ACS Operation-Id,
 * webhook Idempotency-Key).
 */
export const notificationSchema = z.object({
  key: z.string().min(1).max(400),
  /** `override`: a version was deployed by emergency override, without the quorum (docs/governance.md). */
  kind: z.enum(['request', 'reminder', 'escalation', 'outcome', 'override']),
  to: z.string().min(3).max(320),
  subject: z.string().max(300),
  text: z.string().max(20_000),
  html: z.string().max(100_000),
  /** The approval page link, when the message asks for a decision. */
  link: z.url().optional(),
  runId: z.string(),
  approvalId: z.string(),
  pipeline: z.string(),
});
export type Notification = z.infer<typeof notificationSchema>;

export interface SendResult {
  /** False when the same message had already been sent (a retry). */
  sent: boolean;
  /** Where it went: a blob name, an ACS operation id, a webhook status. */
  ref: string;
}

export interface Notifier {
  readonly channel: 'outbox' | 'webhook' | 'acs-email';
  send(message: Notification): Promise<SendResult>;
}
