import type { InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { APPROVAL_DECISION_EVENT } from '../../lib/contracts/approval';
import type { Services } from '../../lib/services';
import type { ReadOrchestration, ReconcileDeps } from '../../lib/runs/reconcile';

/** The Durable client's view of an instance: undefined when the extension answers 404 (no such instance). */
export function durableOrchestrations(context: InvocationContext): ReadOrchestration {
  const client = df.getClient(context);
  return async (instanceId) => {
    try {
      const s = await client.getStatus(instanceId, { showHistory: false, showInput: false });
      return { runtimeStatus: String(s.runtimeStatus), output: s.output };
    } catch (err) {
      if (/HTTP 404/.test((err as Error).message)) return undefined;
      throw err;
    }
  };
}

export function reconcileDeps(
  deps: Pick<Services, 'runs' | 'approvals' | 'slots' | 'deployLocks'> & Partial<Pick<Services, 'rollouts'>>,
  context: InvocationContext,
): ReconcileDeps {
  return {
    ...(deps.rollouts ? { rollouts: deps.rollouts } : {}),
    runs: deps.runs,
    approvals: deps.approvals,
    slots: deps.slots,
    deployLocks: deps.deployLocks,
    orchestration: durableOrchestrations(context),
    now: () => new Date(),
    wakeApproval: async (approvalId) => {
      // The event is only a wake-up: the gate re-reads the (withdrawn) record from Cosmos.
      await df.getClient(context).raiseEvent(approvalId, APPROVAL_DECISION_EVENT, { withdrawn: true });
    },
  };
}
