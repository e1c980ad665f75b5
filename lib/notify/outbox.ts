import type { ContainerClient } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { TransientError } from '../errors';
import type { Notification, Notifier, SendResult } from './types';
import { notificationSchema } from './types';

/** Logs one line per message; devhost prints it, so the link is visible in the terminal. */
export type OutboxLog = (line: string, fields: Record<string, unknown>) => void;

function statusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: unknown } | null;
  return typeof e?.statusCode === 'number' ? e.statusCode : undefined;
}

/** Blob name of a message: grouped by run and approval, unique per logical message. */
export function outboxBlobName(m: Pick<Notification, 'runId' | 'approvalId' | 'key'>): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 120);
  const h = createHash('sha256').update(m.key).digest('hex').slice(0, 12);
  return `${safe(m.runId)}/${safe(m.approvalId)}/${safe(m.key)}-${h}.json`;
}

/**
 * The local notifier: each message is a JSON blob in the `outbox` container (written once with
 * If-None-Match: *) plus a log line with the link. Tests and the demo read the outbox.
 */
export class OutboxNotifier implements Notifier {
  readonly channel = 'outbox' as const;
  constructor(
    private readonly container: ContainerClient,
    private readonly log: OutboxLog = () => undefined,
  ) {}

  async send(message: Notification): Promise<SendResult> {
    const m = notificationSchema.parse(message);
    const name = outboxBlobName(m);
    const body = JSON.stringify({ ...m, storedAt: new Date().toISOString() }, null, 2);
    try {
      await this.container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body), {
        conditions: { ifNoneMatch: '*' },
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
    } catch (err) {
      const status = statusOf(err);
      if (status === 409 || status === 412) return { sent: false, ref: name };
      throw new TransientError('outbox_write_failed', `could not store notification ${name}`, { cause: err });
    }
    this.log(`[outbox] ${m.kind} for ${m.to}: ${m.subject}${m.link ? `\n         ${m.link}` : ''}`, {
      to: m.to,
      kind: m.kind,
      blob: name,
    });
    return { sent: true, ref: name };
  }
}

/** Every stored message under a prefix (a run id, or `runId/approvalId`), oldest first. */
export async function readOutbox(
  container: ContainerClient,
  prefix = '',
): Promise<(Notification & { storedAt: string; blob: string })[]> {
  const out: (Notification & { storedAt: string; blob: string })[] = [];
  for await (const item of container.listBlobsFlat({ prefix })) {
    const buf = await container.getBlobClient(item.name).downloadToBuffer();
    const parsed = JSON.parse(buf.toString('utf8')) as Notification & { storedAt: string };
    out.push({ ...parsed, blob: item.name });
  }
  return out.sort((a, b) => a.storedAt.localeCompare(b.storedAt) || a.blob.localeCompare(b.blob));
}
