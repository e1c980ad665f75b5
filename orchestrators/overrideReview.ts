import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import type { ApprovalGateOutput } from '../lib/contracts/approval';
import { approvalGateOrchestration } from '../lib/contracts/orchestrations';
import {
  OVERRIDE_REVIEW_ORCHESTRATOR,
  overrideReviewInputSchema,
  recordOverrideReviewActivity,
} from '../lib/contracts/overrideReview';
import { callActivity, callSubOrchestrator } from './support/call';

/**
 * The post-hoc review of an emergency override: the ordinary approval gate (record, signed links,
 * reminder, escalation, deadline) for the overridden version, then its outcome on the version's
 * override mark. The gate's instance id is the approval id, so the approval page wakes it as usual.
 */
export const overrideReview: OrchestrationHandler = function* (
  context: OrchestrationContext,
): Generator<Task, ApprovalGateOutput, unknown> {
  const input = overrideReviewInputSchema.parse(context.df.getInput());
  const out = yield* callSubOrchestrator(
    context,
    approvalGateOrchestration,
    input.gate,
    approvalGateOrchestration.instanceId(input.gate.runId),
  );
  yield* callActivity(context, recordOverrideReviewActivity, {
    modelName: input.modelName,
    version: input.version,
    approvalId: out.approvalId,
    outcome: out.outcome,
    by: out.outcome === 'rejected' ? out.rejectedBy : out.approvedBy,
    decidedAt: out.decidedAt,
  });
  return out;
};

df.app.orchestration(OVERRIDE_REVIEW_ORCHESTRATOR, overrideReview);
