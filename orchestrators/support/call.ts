import * as df from 'durable-functions';
import type { OrchestrationContext, Task } from 'durable-functions';
import type { z } from 'zod';
import type { ActivityDef } from '../../lib/contracts/activity';
import { isActivityFailure } from '../../lib/contracts/activity';

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
 * Calls a sub-orchestration with an explicit instance id and parses its output; use with `yield*`.
 * The id is derived from the parent's so a replayed parent finds the same child.
 */
export function* callSubOrchestrator<O extends z.ZodType>(
  context: OrchestrationContext,
  name: string,
  output: O,
  input: unknown,
  instanceId: string,
): Generator<Task, z.output<O>, unknown> {
  const raw = yield context.df.callSubOrchestrator(name, input, instanceId);
  return output.parse(raw);
}
