import * as df from 'durable-functions';
import type { OrchestrationContext, Task } from 'durable-functions';
import type { z } from 'zod';
import type { ActivityDef } from '../../lib/contracts/activity';
import { isActivityFailure } from '../../lib/contracts/activity';
import type { OrchestrationDef } from '../../lib/contracts/orchestrations';

/** Thrown inside an orchestrator when an activity reported a non-retriable failure. */
export class ActivityFailedError extends Error {
  readonly code: string;
  readonly activity: string;
  readonly field: string | undefined;
  constructor(activity: string, code: string, message: string, field?: string) {
    super(message);
    this.name = 'ActivityFailedError';
    this.activity = activity;
    this.code = code;
    this.field = field;
  }
}

/**
 * Calls an activity through its descriptor with its bounded retry policy; use with `yield*`:
 * `const out = yield* callActivity(context, ingestDataset, input)`. The result is parsed with the
 * activity's output schema (pure, so replay-safe).
 */
export function* callActivity<I extends z.ZodType, O extends z.ZodType>(
  context: OrchestrationContext,
  def: ActivityDef<I, O>,
  input: z.input<I>,
): Generator<Task, z.output<O>, unknown> {
  const retry = new df.RetryOptions(def.retry.firstRetryIntervalMs, def.retry.maxAttempts);
  if (def.retry.backoffCoefficient) retry.backoffCoefficient = def.retry.backoffCoefficient;
  if (def.retry.maxRetryIntervalMs) retry.maxRetryIntervalInMilliseconds = def.retry.maxRetryIntervalMs;
  const raw = yield context.df.callActivityWithRetry(def.name, retry, input);
  if (isActivityFailure(raw)) {
    const f = raw.sluiceFailure;
    throw new ActivityFailedError(def.name, f.code, f.message, f.field);
  }
  return def.output.parse(raw);
}

/**
 * Calls a sub-orchestration through its descriptor and parses its output; use with `yield*`:
 * `const gate = yield* callSubOrchestrator(context, approvalGateOrchestration, input, id)`. The
 * instance id comes from the descriptor's builder (`def.instanceId(runId, …)`), derived from the
 * run so a replayed parent finds the same child. The input is typed, not parsed: the child parses
 * it, and what is sent stays exactly what the caller built.
 */
export function* callSubOrchestrator<I extends z.ZodType, O extends z.ZodType>(
  context: OrchestrationContext,
  def: OrchestrationDef<I, O, never[]>,
  input: z.input<I>,
  instanceId: string,
): Generator<Task, z.output<O>, unknown> {
  const raw = yield context.df.callSubOrchestrator(def.name, input, instanceId);
  return def.output.parse(raw);
}
