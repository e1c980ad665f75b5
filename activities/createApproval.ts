import type { z } from 'zod';
import type { ApprovalDeps } from '../lib/services';
import { newApprovalRecord } from '../lib/approval/record';
import { createApprovalActivity } from '../lib/contracts/approval';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof createApprovalActivity.input>;

/** Creates the approval record once (deterministic id); a retry returns the stored record's deadline. */
export function createApproval(deps: Pick<ApprovalDeps, 'store'>) {
  return async (input: Input): Promise<z.input<typeof createApprovalActivity.output>> => {
    const { approvalId, createdAt, ...rest } = input;
    const record = newApprovalRecord(approvalId, rest, new Date(createdAt));
    const { created, record: stored } = await deps.store.createRecord(record);
    return { runId: stored.runId, approvalId: stored.id, created, deadline: stored.deadline };
  };
}

registerActivityFactory(createApprovalActivity, (services) => createApproval({ store: services.approvals }));
