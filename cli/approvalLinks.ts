/**
 * The approval links of a local Sluice, for `sluice run --wait`: devhost's notifier writes each
 * message to the `outbox` blob container of its Azurite, found from the run's source URI (or the
 * `--storage` connection string). Elsewhere the links go by the configured notifier and this
 * fails with a message saying so.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { localOutbox, outboxMessages } from './reviewer';

/** An approval page link a reviewer was sent (a request, reminder or escalation). */
export interface ApprovalLink {
  to: string;
  kind: string;
  link: string;
}

/** What of a run the links are found from. */
export interface RunRef {
  id: string;
  source?: { uri: string };
}

export function outboxLinks(storage: string | undefined): (run: RunRef) => Promise<ApprovalLink[]> {
  let outbox: ContainerClient | undefined;
  return async (run) => {
    if (!run.source?.uri) return [];
    outbox ??= localOutbox(run.source.uri, storage);
    const messages = await outboxMessages(outbox, run.id);
    return messages.flatMap((m) => (m.link ? [{ to: m.to, kind: m.kind, link: m.link }] : []));
  };
}
