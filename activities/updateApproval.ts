import type { z } from 'zod';
import type { ApprovalDeps } from '../lib/services';
import { closeRecord, escalateRecord, markReminded } from '../lib/approval/record';
import type { ApprovalRecord } from '../lib/contracts/approvalRecord';
import { toSnapshot } from '../lib/approval/snapshot';
import type { ApprovalSnapshot } from '../lib/contracts/approval';
import { updateApprovalActivity } from '../lib/contracts/approval';
import { NonRetriableError } from '../lib/errors';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof updateApprovalActivity.input>;

/**
 * Escalates, notes a reminder, or closes the record, under an ETag condition. Each change is a
 * no-op when already applied, so a retried activity leaves the same record.
 */
export function updateApproval(deps: Pick<ApprovalDeps, 'store'>) {
  return async (input: Input): Promise<ApprovalSnapshot> => {
    const at = new Date(input.at);
    const c = input.change;
    const change = (r: ApprovalRecord): ApprovalRecord =>
      c.action === 'escalate'
        ? escalateRecord(r, at)
        : c.action === 'reminded'
          ? markReminded(r)
          : closeRecord(r, c.status, c.reasons, at);
    await deps.store.updateRecord(input.runId, input.approvalId, change);
    const state = await deps.store.readState(input.runId, input.approvalId);
    if (!state) throw new NonRetriableError('approval_not_found', `approval ${input.approvalId} vanished`);
    return toSnapshot(state);
  };
}

registerActivityFactory(updateApprovalActivity, (services) => updateApproval({ store: services.approvals }));
