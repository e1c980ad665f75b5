import * as df from 'durable-functions';
import type { FunctionInput, InvocationContext } from '@azure/functions';
import type { z } from 'zod';
import type { ActivityDef, ActivityFailure } from '../../lib/contracts/activity';
import { MAX_ACTIVITY_PAYLOAD_BYTES, payloadBytes } from '../../lib/contracts/activity';
import { NonRetriableError, ensureError, isNonRetriable } from '../../lib/errors';
import type { Services } from '../../lib/services';
import { getServices } from '../../app/services';

/** An activity's work: its parsed input in, its output (checked against the contract) out. */
export type ActivityHandler<I extends z.ZodType, O extends z.ZodType> = (
  input: z.output<I>,
  context: InvocationContext,
) => Promise<z.input<O>>;

/**
 * Registers an activity made from the app's services: `factory(services)` gives the handler. The
 * services are the process's one set (app/services.ts), resolved on the first invocation, not at
 * load time, so loading the app never touches storage. Tests call the factory with their own.
 */
export function registerActivityFactory<I extends z.ZodType, O extends z.ZodType>(
  def: ActivityDef<I, O>,
  factory: (services: Services) => ActivityHandler<I, O>,
  options: { extraInputs?: FunctionInput[] } = {},
): void {
  registerActivity(def, async (input, context) => factory(await getServices())(input, context), options);
}

/**
 * Registers an activity with its zod contract. Input is parsed before the handler runs; output is
 * parsed and size-checked after. A NonRetriableError (bad data, policy, 4xx) is returned as an
 * {@link ActivityFailure} envelope so Durable does not spend retries on it; anything else is thrown
 * and retried by the orchestrator's bounded retry policy.
 */
export function registerActivity<I extends z.ZodType, O extends z.ZodType>(
  def: ActivityDef<I, O>,
  handler: ActivityHandler<I, O>,
  options: { extraInputs?: FunctionInput[] } = {},
): void {
  df.app.activity(def.name, {
    ...options,
    handler: async (raw: unknown, context: InvocationContext): Promise<z.output<O> | ActivityFailure> => {
      try {
        const parsed = def.input.safeParse(raw);
        if (!parsed.success) {
          throw new NonRetriableError(
            'invalid_activity_input',
            `${def.name}: invalid input: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
          );
        }
        const result = def.output.parse(await handler(parsed.data, context));
        const bytes = payloadBytes(result);
        if (bytes > MAX_ACTIVITY_PAYLOAD_BYTES) {
          throw new NonRetriableError(
            'activity_output_too_large',
            `${def.name}: output is ${bytes} bytes, over the ${MAX_ACTIVITY_PAYLOAD_BYTES}-byte limit; store data in Blob and return a reference`,
          );
        }
        return result;
      } catch (thrown) {
        const err = ensureError(thrown);
        if (!isNonRetriable(err)) throw err;
        const e = err as Error & { code?: string; field?: string };
        context.warn(`${def.name} failed (not retried): ${e.message}`);
        return {
          sluiceFailure: {
            name: e.name,
            code: e.code ?? 'non_retriable',
            message: e.message,
            ...(e.field ? { field: e.field } : {}),
          },
        };
      }
    },
  });
}
