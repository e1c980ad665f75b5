import { app, type InvocationContext, type Timer } from '@azure/functions';
import { withServices } from '../app/services';
import type { AuditLog } from '../lib/audit/log';

/**
 * Every 15 minutes: writes the audit head `{ seq, hash, at }` to the immutable anchors container,
 * unless that seq is anchored already (every deployment anchors too). Someone who can write to
 * Cosmos can rewrite the chain; they cannot rewrite an anchor, so verification then names where
 * the chain stopped matching.
 */
export const auditAnchor =
  (deps: { audit: Pick<AuditLog, 'anchor'> }) =>
  async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const done = await deps.audit.anchor();
    if (done?.written)
      context.log(`audit: head ${done.anchor.seq} anchored (${done.anchor.hash.slice(0, 12)}…)`);
  };

app.timer('auditAnchor', {
  schedule: '0 */15 * * * *',
  handler: withServices(auditAnchor),
});
