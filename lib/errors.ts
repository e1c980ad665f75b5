/**
 * Errors carry their retry semantics. Across the Durable boundary errors are serialized, so
 * callers match on `name` and `code`, never on `instanceof`.
 */
export class SluiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A failure that may succeed if tried again (network, throttling, 5xx). Retried with bounded backoff. */
export class TransientError extends SluiceError {}

/** A failure that will fail again (bad data, 4xx, policy). Never retried. */
export class NonRetriableError extends SluiceError {}

/** Bad input from a caller: becomes a 4xx problem response naming the field. */
export class ValidationError extends NonRetriableError {
  readonly status: number;
  readonly field: string | undefined;
  constructor(code: string, message: string, options?: { field?: string; status?: number; cause?: unknown }) {
    super(code, message, options);
    this.field = options?.field;
    this.status = options?.status ?? 400;
  }
}

/** Normalizes any thrown value into an Error, keeping the original as `cause`. */
export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return new Error(`Non-Error thrown: ${text}`, { cause: value });
}

/** True when the (possibly deserialized) error says retrying cannot help. */
export function isNonRetriable(err: unknown): boolean {
  if (err instanceof NonRetriableError) return true;
  const e = err as { name?: string; code?: string; message?: string } | null;
  if (!e) return false;
  if (e.name === 'NonRetriableError' || e.name === 'ValidationError') return true;
  return typeof e.message === 'string' && e.message.includes('[non-retriable]');
}
