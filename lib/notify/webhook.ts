import { createHmac } from 'node:crypto';
import type { Notification, Notifier, SendResult } from './types';
import { notificationSchema } from './types';
import type { Fetch } from './http';
import { fetchOrTransient, httpError } from './http';

export const WEBHOOK_SIGNATURE_HEADER = 'x-sluice-signature';
export const WEBHOOK_TIMESTAMP_HEADER = 'x-sluice-timestamp';

/** `sha256=<hex>` over `<timestamp>.<body>`: receivers recompute it and reject old timestamps. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * A JSON POST per message. `text` makes it readable by Slack and Teams incoming webhooks; the
 * other fields let an automation act on it. Signed with HMAC-SHA256 when a secret is set.
 */
export class WebhookNotifier implements Notifier {
  readonly channel = 'webhook' as const;
  constructor(
    private readonly url: string,
    private readonly secret: string | undefined,
    private readonly f: Fetch = fetch,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async send(message: Notification): Promise<SendResult> {
    const m = notificationSchema.parse(message);
    const body = JSON.stringify({
      text: `${m.subject}${m.link ? `\n${m.link}` : ''}`,
      kind: m.kind,
      to: m.to,
      subject: m.subject,
      body: m.text,
      link: m.link ?? null,
      runId: m.runId,
      approvalId: m.approvalId,
      pipeline: m.pipeline,
    });
    const timestamp = String(Math.floor(this.clock().getTime() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'idempotency-key': m.key,
      [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
    };
    if (this.secret) headers[WEBHOOK_SIGNATURE_HEADER] = webhookSignature(this.secret, timestamp, body);
    const res = await fetchOrTransient('webhook', this.f, this.url, { method: 'POST', headers, body });
    const text = await res.text().catch(() => '');
    if (!res.ok) throw httpError('webhook', res.status, text);
    return { sent: true, ref: `webhook ${res.status}` };
  }
}
