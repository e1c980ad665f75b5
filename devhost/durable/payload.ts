/**
 * Encoding rules for values crossing the Durable boundary (durable-host-spec §6.1–§6.3, §7.4) and the
 * payload size limit.
 */
import type { Failure, FailureDetails } from './history';

export class PayloadTooLargeError extends Error {
  constructor(
    readonly what: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(
      `${what} is ${bytes.toLocaleString('en-US')} bytes, over the devhost payload limit of ${limit.toLocaleString('en-US')} bytes ` +
        `(DEVHOST_DURABLE_MAX_PAYLOAD_BYTES). Pass a reference (e.g. a blob URI) instead of the data.`,
    );
    this.name = 'PayloadTooLargeError';
  }
}

export function checkPayload(what: string, text: string | null | undefined, limit: number): void {
  if (text === null || text === undefined) return;
  // Cheap bound first: a UTF-8 byte count is at most 3 × the UTF-16 length.
  if (text.length * 3 <= limit) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limit) throw new PayloadTooLargeError(what, bytes, limit);
}

/** JSON text of a value, or a readable error for values JSON cannot represent. */
export function toJsonText(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value === undefined ? null : value, (_k, v: unknown) => {
      if (typeof v === 'bigint') throw new TypeError('a BigInt value cannot be serialized to JSON');
      return v;
    });
  } catch (e) {
    throw new TypeError(
      `${what} cannot be serialized to JSON: ${e instanceof Error ? e.message : String(e)}`,
      {
        cause: e,
      },
    );
  }
  return text ?? 'null';
}

/** `TaskScheduled.Input`: JSON text of a one-element array holding the action's input as sent. */
export function encodeActivityInput(actionInput: unknown): string {
  return actionInput === undefined ? '[]' : toJsonText([actionInput], 'The activity input');
}

/** What the activity handler receives: string inputs were pre-stringified by the library. */
export function decodeActivityInput(scheduledInput: string | null | undefined): unknown {
  if (!scheduledInput) return undefined;
  const arr = JSON.parse(scheduledInput) as unknown[];
  if (!Array.isArray(arr) || arr.length === 0) return undefined;
  const v = arr[0];
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

/** `TaskCompleted.Result`: Buffers become base64 strings, as the production host serializes byte[]. */
export function encodeActivityResult(value: unknown): string {
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  if (value instanceof ArrayBuffer) return JSON.stringify(Buffer.from(value).toString('base64'));
  return toJsonText(value, 'The activity result');
}

/** Sub-orchestration inputs are sent raw by the library (not pre-stringified). */
export function encodeOrchestrationInput(actionInput: unknown): string | null {
  return actionInput === undefined ? null : toJsonText(actionInput, 'The sub-orchestration input');
}

/** Mirrors the Node worker's `ensureErrorType`: the message a thrown non-Error value turns into. */
function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err === undefined || err === null) return 'Unknown error';
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

/** The value the app actually threw (the invoker wraps non-Errors and keeps them as `cause`). */
function thrownValue(err: unknown): unknown {
  if (err instanceof Error && err.cause !== undefined && !(err.cause instanceof Error)) {
    const inner = err.cause;
    if (err.message === '' || err.message === errorMessage(inner) || /non-?error/i.test(err.message))
      return inner;
  }
  return err;
}

/**
 * TaskFailed fields for an activity that threw (spec §6.3): production wording in `Reason`, the stack in
 * `Details`, and `FailureDetails` when the app's ExceptionPropertiesProvider serialized the error.
 */
export function activityFailure(activityName: string, err: unknown): Failure {
  const value = thrownValue(err);
  const message = errorMessage(value);
  const stack = value instanceof Error ? (value.stack ?? message) : message;
  const failure: Failure = {
    reason: `Activity function '${activityName}' failed: ${message}`,
    details: stack,
  };
  const structured = parseProviderPayload(message);
  if (structured) {
    failure.failureDetails = structured;
    failure.reason = `Activity function '${activityName}' failed: ${structured.ErrorMessage}`;
  }
  return failure;
}

/** The JSON message `wrapActivityHandler` writes when an ExceptionPropertiesProvider returned properties. */
function parseProviderPayload(message: string): FailureDetails | undefined {
  if (!message.startsWith('{')) return undefined;
  try {
    const p = JSON.parse(message) as Record<string, unknown>;
    if (typeof p.errorType !== 'string' || typeof p.errorMessage !== 'string') return undefined;
    return {
      ErrorType: p.errorType,
      ErrorMessage: p.errorMessage,
      ...(typeof p.stackTrace === 'string' ? { StackTrace: p.stackTrace } : {}),
      IsNonRetriable: p.isNonRetriable === true,
      ...(p.properties && typeof p.properties === 'object'
        ? { Properties: p.properties as Record<string, unknown> }
        : {}),
    };
  } catch {
    return undefined;
  }
}

export const outOfProcDataLabel = '\n\n$OutOfProcData$:';

/**
 * Splits an orchestrator failure (spec §5.3): the library throws `"false\n\n$OutOfProcData$:" + state`;
 * the real message is `state.error`.
 */
export function parseOrchestratorFailure(err: unknown): { state?: Record<string, unknown>; message: string } {
  const text = err instanceof Error ? err.message : String(err);
  const at = text.indexOf(outOfProcDataLabel);
  if (at < 0) return { message: errorMessage(thrownValue(err)) };
  const rest = text.slice(at + outOfProcDataLabel.length);
  let state: Record<string, unknown> | undefined;
  try {
    state = JSON.parse(rest) as Record<string, unknown>;
  } catch {
    const end = rest.lastIndexOf('}');
    try {
      state = JSON.parse(rest.slice(0, end + 1)) as Record<string, unknown>;
    } catch {
      state = undefined;
    }
  }
  const message =
    typeof state?.error === 'string' ? state.error : 'the orchestrator threw a value that is not an Error';
  return state ? { state, message } : { message };
}
