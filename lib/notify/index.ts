import type { ContainerClient } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/core-auth';
import type { Config } from '../config';
import { AcsEmailNotifier } from './acs';
import { OutboxNotifier } from './outbox';
import type { Notifier } from './types';
import { WebhookNotifier } from './webhook';

export type { Notification, Notifier, SendResult } from './types';
export { OutboxNotifier, readOutbox, outboxBlobName } from './outbox';
export { WebhookNotifier, webhookSignature } from './webhook';
export { AcsEmailNotifier } from './acs';

/** The notifier chosen by NOTIFIER; the outbox container and credential come from the storage layer. */
export function createNotifier(
  config: Pick<
    Config,
    | 'NOTIFIER'
    | 'NOTIFY_WEBHOOK_URL'
    | 'NOTIFY_WEBHOOK_SECRET'
    | 'ACS_ENDPOINT'
    | 'ACS_SENDER'
    | 'ACS_API_VERSION'
  >,
  deps: { outbox: () => ContainerClient; credential: () => TokenCredential },
): Notifier {
  switch (config.NOTIFIER) {
    case 'webhook':
      if (!config.NOTIFY_WEBHOOK_URL) throw new Error('NOTIFY_WEBHOOK_URL is required when NOTIFIER=webhook');
      return new WebhookNotifier(config.NOTIFY_WEBHOOK_URL, config.NOTIFY_WEBHOOK_SECRET);
    case 'acs-email':
      if (!config.ACS_ENDPOINT || !config.ACS_SENDER)
        throw new Error('ACS_ENDPOINT and ACS_SENDER are required when NOTIFIER=acs-email');
      return new AcsEmailNotifier({
        endpoint: config.ACS_ENDPOINT,
        sender: config.ACS_SENDER,
        apiVersion: config.ACS_API_VERSION,
        credential: deps.credential(),
      });
    case 'outbox':
      return new OutboxNotifier(deps.outbox());
  }
}
