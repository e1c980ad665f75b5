import { z } from 'zod';

/** Largest activity input or output Sluice allows: payloads are references, never data. */
export const MAX_ACTIVITY_PAYLOAD_BYTES = 16 * 1024;

/** Bounded retry policy of one activity: Durable retries only TransientErrors (see {@link activityFailureSchema}). */
export interface RetryPolicy {
  firstRetryIntervalMs: number;
  maxAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalMs?: number;
}

/**
 * An activity's name and zod contracts. Orchestrators call activities only through these
 * descriptors (`orchestrators/support/call.ts`), so a wrong name or payload is a compile error.
 */
export interface ActivityDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly input: I;
  readonly output: O;
  readonly retry: RetryPolicy;
}

export const defaultRetry: RetryPolicy = {
  firstRetryIntervalMs: 2_000,
  maxAttempts: 4,
  backoffCoefficient: 2,
  maxRetryIntervalMs: 30_000,
};

export function defineActivity<I extends z.ZodType, O extends z.ZodType>(
  name: string,
  input: I,
  output: O,
  retry: RetryPolicy = defaultRetry,
): ActivityDef<I, O> {
  return { name, input, output, retry };
}

/**
 * How an activity reports a failure that retrying cannot fix. Durable Functions 3.x retry options
 * cannot filter by error type, so a non-retriable failure is *returned* in this envelope instead of
 * thrown; the orchestrator-side caller turns it back into an error without spending retries.
 */
export const activityFailureSchema = z.object({
  sluiceFailure: z.object({
    name: z.string(),
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
  }),
});
export type ActivityFailure = z.infer<typeof activityFailureSchema>;

export function isActivityFailure(value: unknown): value is ActivityFailure {
  return activityFailureSchema.safeParse(value).success;
}

/** Byte length of a value as Durable would serialize it. */
export function payloadBytes(value: unknown): number {
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}
