import type { z } from 'zod';
import type { ApprovalDeps } from '../lib/services';
import { toSnapshot } from '../lib/approval/snapshot';
import type { ApprovalSnapshot } from '../lib/contracts/approval';
import { readApprovalActivity } from '../lib/contracts/approval';
import { NonRetriableError } from '../lib/errors';
import { registerActivityFactory } from './support/define';

/** Reads the approval's moving parts and every decision from Cosmos: the gate's source of truth. */
export function readApproval(deps: Pick<ApprovalDeps, 'store'>) {
  return async (input: z.output<typeof readApprovalActivity.input>): Promise<ApprovalSnapshot> => {
    const state = await deps.store.readState(input.runId, input.approvalId);
    if (!state)
      throw new NonRetriableError(
        'approval_not_found',
        `approval ${input.approvalId} of run ${input.runId} not found`,
      );
    return toSnapshot(state);
  };
}

registerActivityFactory(readApprovalActivity, (services) => readApproval({ store: services.approvals }));
