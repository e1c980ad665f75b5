import type { InvocationContext } from '@azure/functions';
import type { z } from 'zod';
import { approvalLink } from '../lib/approval/page';
import { signApprovalToken } from '../lib/approval/token';
import { notifyReviewersActivity } from '../lib/contracts/approval';
import { NonRetriableError } from '../lib/errors';
import { approvalMessage } from '../lib/approval/messages';
import type { ApprovalDeps } from '../lib/services';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof notifyReviewersActivity.input>;

/**
 * Sends one kind of approval message to each recipient. Requests, reminders and escalations carry
 * a personal signed link to the approval page valid until the current deadline; outcomes carry
 * none. Messages have stable keys, so a retry does not send twice where the channel can tell.
 */
export function notifyReviewers(
  deps: Pick<ApprovalDeps, 'store' | 'keyring' | 'notifier' | 'publicBaseUrl'> & {
    /** Reviewer delegations: a reviewer's messages also go to the delegate in force (with their own link). */
    delegations?: Pick<NonNullable<ApprovalDeps['delegations']>, 'active'>;
    now?: () => Date;
  },
) {
  return async (
    input: Input,
    log: (line: string) => void = () => undefined,
  ): Promise<z.input<typeof notifyReviewersActivity.output>> => {
    const state = await deps.store.readState(input.runId, input.approvalId);
    if (!state)
      throw new NonRetriableError(
        'approval_not_found',
        `approval ${input.approvalId} of run ${input.runId} not found`,
      );
    const record = state.record;
    let sent = 0;
    let skipped = 0;
    const now = (deps.now ?? (() => new Date()))();
    const sends: { to: string; reviewer: string; delegate?: string }[] = [];
    for (const reviewer of [...new Set(input.recipients.map((r) => r.trim().toLowerCase()))]) {
      sends.push({ to: reviewer, reviewer });
      const delegation = await deps.delegations?.active(reviewer, now);
      if (delegation) sends.push({ to: delegation.to, reviewer, delegate: delegation.to });
    }
    for (const { to, reviewer, delegate } of sends) {
      const link =
        input.kind === 'outcome'
          ? undefined
          : approvalLink(
              deps.publicBaseUrl,
              signApprovalToken(deps.keyring, {
                runId: record.runId,
                approvalId: record.id,
                reviewer,
                expiresAt: new Date(record.deadline),
                ...(delegate ? { delegate } : {}),
              }),
            );
      const message = approvalMessage({
        record,
        kind: input.kind,
        to,
        ...(delegate ? { onBehalfOf: reviewer } : {}),
        ...(link ? { link } : {}),
      });
      const result = await deps.notifier.send(message);
      if (result.sent) sent++;
      else skipped++;
      if (result.sent && deps.notifier.channel === 'outbox') {
        log(
          `approval ${input.kind} for ${to}${delegate ? ` on behalf of ${reviewer}` : ''} (${record.pipeline}, run ${record.runId})${link ? `: ${link}` : ''}`,
        );
      }
    }
    return { sent, skipped, channel: deps.notifier.channel };
  };
}

registerActivityFactory(
  notifyReviewersActivity,
  (services) => async (input, context: InvocationContext) =>
    notifyReviewers({ ...(await services.approval()), now: services.now })(input, (line) =>
      context.log(line),
    ),
);
