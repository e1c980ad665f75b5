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
  deps: Pick<ApprovalDeps, 'store' | 'keyring' | 'notifier' | 'publicBaseUrl'>,
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
    for (const to of [...new Set(input.recipients.map((r) => r.trim().toLowerCase()))]) {
      const link =
        input.kind === 'outcome'
          ? undefined
          : approvalLink(
              deps.publicBaseUrl,
              signApprovalToken(deps.keyring, {
                runId: record.runId,
                approvalId: record.id,
                reviewer: to,
                expiresAt: new Date(record.deadline),
              }),
            );
      const message = approvalMessage({ record, kind: input.kind, to, ...(link ? { link } : {}) });
      const result = await deps.notifier.send(message);
      if (result.sent) sent++;
      else skipped++;
      if (result.sent && deps.notifier.channel === 'outbox') {
        log(
          `approval ${input.kind} for ${to} (${record.pipeline}, run ${record.runId})${link ? `: ${link}` : ''}`,
        );
      }
    }
    return { sent, skipped, channel: deps.notifier.channel };
  };
}

registerActivityFactory(
  notifyReviewersActivity,
  (services) => async (input, context: InvocationContext) =>
    notifyReviewers(await services.approval())(input, (line) => context.log(line)),
);
