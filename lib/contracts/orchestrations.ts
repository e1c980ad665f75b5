import type { z } from 'zod';
import { APPROVAL_GATE_ORCHESTRATOR, approvalGateInputSchema, approvalGateOutputSchema } from './approval';
import {
  TRAINING_MONITOR_ORCHESTRATOR,
  trainingMonitorInputSchema,
  trainingMonitorInstanceId,
  trainingMonitorOutputSchema,
} from './training';

/**
 * An orchestration's name, zod contracts and instance id builder, like the activity descriptors of
 * ./activity.ts. Parents call sub-orchestrations only through these (`callSubOrchestrator` in
 * orchestrators/support/call.ts), and whoever needs a child's instance id (cancel, reconcile, the
 * approval page) builds it here, so an id is spelled once. Instance ids are pure functions of the
 * run: a replayed parent finds the same child, and a retried start finds the one it started.
 */
export interface OrchestrationDef<
  I extends z.ZodType = z.ZodType,
  O extends z.ZodType = z.ZodType,
  A extends unknown[] = unknown[],
> {
  readonly name: string;
  readonly input: I;
  readonly output: O;
  readonly instanceId: (...args: A) => string;
}

export function defineOrchestration<I extends z.ZodType, O extends z.ZodType, A extends unknown[]>(
  name: string,
  input: I,
  output: O,
  instanceId: (...args: A) => string,
): OrchestrationDef<I, O, A> {
  return { name, input, output, instanceId };
}

/** Watches one training job of a run; a later attempt (its worker died) gets its own instance. */
export const trainingMonitorOrchestration = defineOrchestration(
  TRAINING_MONITOR_ORCHESTRATOR,
  trainingMonitorInputSchema,
  trainingMonitorOutputSchema,
  trainingMonitorInstanceId,
);

/**
 * The approval gate of a run. Its instance id is also the approval id (the approval record's id in
 * Cosmos and the id in signed links): `<runId>:approval`, `<runId>:approval2` for a later round.
 */
export const approvalGateOrchestration = defineOrchestration(
  APPROVAL_GATE_ORCHESTRATOR,
  approvalGateInputSchema,
  approvalGateOutputSchema,
  (runId: string, round = 1): string => (round === 1 ? `${runId}:approval` : `${runId}:approval${round}`),
);

/** The approval id (= approval gate instance id) of a run. */
export const approvalInstanceId = approvalGateOrchestration.instanceId;

/** Jobs submitted at most per run when workers die under them: one monitor instance each. */
export const MAX_TRAINING_ATTEMPTS = 2;

/** Every sub-orchestration instance a run may have started (training attempts, approval), for cancel. */
export function runChildInstanceIds(runId: string, trainingAttempts = MAX_TRAINING_ATTEMPTS): string[] {
  const ids: string[] = [];
  for (let attempt = 1; attempt <= trainingAttempts; attempt++)
    ids.push(trainingMonitorOrchestration.instanceId(runId, attempt));
  ids.push(approvalGateOrchestration.instanceId(runId));
  return ids;
}
