import type { TokenCredential } from '@azure/core-auth';
import { createHash } from 'node:crypto';
import { NonRetriableError, TransientError } from '../errors';
import type { Fetch } from './http';
import { fetchOrTransient, httpError } from './http';
import type { Notification, Notifier, SendResult } from './types';
import { notificationSchema } from './types';

/** Token scope of the Communication Services data plane (the double slash is what the SDKs use). */
export const ACS_SCOPE = 'https://communication.azure.com//.default';

export interface AcsEmailOptions {
  /** `https://<resource>.communication.azure.com` */
  endpoint: string;
  /** A sender address on a verified domain, e.g. `DoNotReply@<domain>`. */
  sender: string;
  apiVersion: string;
  credential: TokenCredential;
  fetch?: Fetch;
  /** Upper bound on status polls before giving up (the message stays queued at ACS). */
  maxPolls?: number;
  /** Used between polls when the service sends no Retry-After; tests pass a short one. */
  defaultPollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

interface SendStatus {
  id: string;
  status: 'NotStarted' | 'Running' | 'Succeeded' | 'Failed' | 'Canceled' | string;
  error?: { code?: string; message?: string } | null;
}

/** A UUID derived from the message key: the same message always uses the same ACS Operation-Id. */
export function operationIdFor(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Azure Communication Services Email over its REST API (`POST /emails:send`, then poll the
 * `Operation-Location` until the send succeeds or fails), authenticated with a managed-identity
 * token. Called directly rather than through @azure/communication-email so it can be tested
 * against a local HTTP fake (the SDK's bearer policy refuses plain-http endpoints).
 */
export class AcsEmailNotifier implements Notifier {
  readonly channel = 'acs-email' as const;
  private readonly f: Fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  constructor(private readonly o: AcsEmailOptions) {
    this.f = o.fetch ?? fetch;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  private async authHeaders(): Promise<Record<string, string>> {
    let token: string | undefined;
    try {
      token = (await this.o.credential.getToken(ACS_SCOPE))?.token;
    } catch (err) {
      throw new TransientError('acs_token_failed', 'could not get a token for Communication Services', {
        cause: err,
      });
    }
    if (!token) throw new TransientError('acs_token_failed', 'no token for Communication Services');
    return { authorization: `Bearer ${token}` };
  }

  async send(message: Notification): Promise<SendResult> {
    const m = notificationSchema.parse(message);
    const operationId = operationIdFor(m.key);
    const url = `${this.o.endpoint.replace(/\/+$/, '')}/emails:send?api-version=${encodeURIComponent(this.o.apiVersion)}`;
    const res = await fetchOrTransient('acs', this.f, url, {
      method: 'POST',
      headers: {
        ...(await this.authHeaders()),
        'content-type': 'application/json',
        'operation-id': operationId,
        'x-ms-client-request-id': operationId,
      },
      body: JSON.stringify({
        senderAddress: this.o.sender,
        recipients: { to: [{ address: m.to }] },
        content: { subject: m.subject, plainText: m.text, html: m.html },
        // Tracking rewrites links through a redirector: keep the approval link intact.
        userEngagementTrackingDisabled: true,
      }),
    });
    if (res.status !== 202) {
      const detail = await res.text().catch(() => '');
      throw httpError('acs', res.status, res.headers.get('x-ms-error-code') ?? detail);
    }
    const first = (await res.json().catch(() => ({}))) as Partial<SendStatus>;
    const location = res.headers.get('operation-location');
    const status = await this.poll(location, first, res.headers.get('retry-after'));
    return { sent: true, ref: status.id || operationId };
  }

  private async poll(
    location: string | null,
    first: Partial<SendStatus>,
    retryAfter: string | null,
  ): Promise<SendStatus> {
    let current: Partial<SendStatus> = first;
    let wait = retryAfter;
    const max = this.o.maxPolls ?? 30;
    for (let i = 0; ; i++) {
      if (current.status === 'Succeeded') return current as SendStatus;
      if (current.status === 'Failed' || current.status === 'Canceled') {
        throw new NonRetriableError(
          'acs_send_failed',
          `ACS could not send the e-mail: ${current.error?.code ?? current.status}${current.error?.message ? ` (${current.error.message})` : ''}`,
        );
      }
      if (!location)
        throw new TransientError(
          'acs_no_operation',
          'ACS accepted the e-mail but gave no Operation-Location',
        );
      if (i >= max)
        throw new TransientError(
          'acs_send_pending',
          `ACS send still ${current.status ?? 'unknown'} after ${max} polls`,
        );
      const seconds = Number(wait);
      await this.sleep(
        Number.isFinite(seconds) && seconds > 0
          ? Math.min(seconds, 60) * 1000
          : (this.o.defaultPollMs ?? 1000),
      );
      const res = await fetchOrTransient('acs', this.f, location, {
        method: 'GET',
        headers: await this.authHeaders(),
      });
      if (!res.ok)
        throw httpError(
          'acs',
          res.status,
          res.headers.get('x-ms-error-code') ?? (await res.text().catch(() => '')),
        );
      current = (await res.json()) as SendStatus;
      wait = res.headers.get('retry-after');
    }
  }
}
