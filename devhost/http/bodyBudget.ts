/**
 * Request bodies devhost holds in memory. A function that does not stream gets its request body as one
 * buffer (as the Functions host hands it to the worker), so concurrent large bodies add up: the budget
 * bounds the bytes of all bodies being read or handled at once. A body that does not fit is refused with
 * 503 + `Retry-After` (the client retries when others are done); one over the per-request limit gets 413.
 * Streaming functions (`enableHttpStream`) bypass the buffer and are not counted.
 */
import type { IncomingMessage } from 'node:http';

/**
 * Default total of buffered request bytes in flight (`DEVHOST_BUFFERED_BODY_BUDGET`), 128 MiB: one body
 * at Azure's 100 MB limit and some small ones. The library and the handler copy a body again (about four
 * copies for a handler that reads `arrayBuffer()`), so devhost's peak memory is a few times the budget.
 */
export const defaultBufferedBodyBudgetBytes = 134_217_728;

/** Seconds a client refused for lack of budget is told to wait. */
export const budgetRetryAfterSeconds = 2;

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Request body is larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

export class BodyBudgetExceededError extends Error {
  constructor(readonly budget: number) {
    super(
      `devhost is already holding its budget of ${budget} bytes of request bodies; retry later (DEVHOST_BUFFERED_BODY_BUDGET)`,
    );
    this.name = 'BodyBudgetExceededError';
  }
}

export class BodyBudget {
  private used = 0;

  constructor(readonly totalBytes: number) {}

  /** Bytes reserved by bodies now being read or handled. */
  inUse(): number {
    return this.used;
  }

  tryReserve(bytes: number): boolean {
    if (this.used + bytes > this.totalBytes) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export interface BufferedBody {
  body: Buffer;
  /** Gives the body's bytes back to the budget; call once the response is done. Idempotent. */
  release(): void;
}

/**
 * Reads a request body within `limit` (per request) and `budget` (all requests). A declared
 * `Content-Length` is checked and reserved before a byte is read, straight into one buffer of that
 * size; a chunked body reserves as its chunks arrive. Rejects with `BodyTooLargeError` or
 * `BodyBudgetExceededError` (its reservation already given back).
 */
export function readBufferedBody(
  req: IncomingMessage,
  limit: number,
  budget: BodyBudget,
): Promise<BufferedBody> {
  let reserved = 0;
  const release = (): void => {
    budget.release(reserved);
    reserved = 0;
  };
  const reserve = (bytes: number): boolean => {
    if (!budget.tryReserve(bytes)) return false;
    reserved += bytes;
    return true;
  };
  const declaredHeader = req.headers['content-length'];
  const declared = declaredHeader === undefined ? NaN : Number(declaredHeader);
  if (Number.isFinite(declared)) {
    if (declared > limit) return Promise.reject(new BodyTooLargeError(limit));
    if (declared === 0) return Promise.resolve({ body: Buffer.alloc(0), release });
    if (!reserve(declared)) return Promise.reject(new BodyBudgetExceededError(budget.totalBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const whole = Number.isFinite(declared) ? Buffer.allocUnsafe(declared) : undefined;
    let size = 0;
    let failed = false;
    let ended = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      chunks.length = 0;
      release();
      reject(err);
    };
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) return fail(new BodyTooLargeError(limit));
      if (whole) {
        chunk.copy(whole, size - chunk.length);
        return;
      }
      if (!reserve(chunk.length)) return fail(new BodyBudgetExceededError(budget.totalBytes));
      chunks.push(chunk);
    });
    req.on('end', () => {
      ended = true;
      if (failed) return;
      // Buffer.concat copies: for a moment a chunked body is held twice, within one request's limit.
      const body = whole ? whole.subarray(0, size) : Buffer.concat(chunks, size);
      chunks.length = 0;
      resolve({ body, release });
    });
    req.on('error', (err) => fail(err));
    req.on('close', () => {
      if (!ended) fail(new Error('The client closed the connection before sending the whole body'));
    });
  });
}
