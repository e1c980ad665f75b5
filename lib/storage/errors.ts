import { NonRetriableError, TransientError } from '../errors';

/** Which adapter failed, for messages and codes. */
export type StorageService = 'blob' | 'table' | 'cosmos';

// Node socket errors and the SDK pipelines' own names for "could not talk to the service".
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'REQUEST_SEND_ERROR',
]);

/** HTTP status of an Azure SDK error: RestError.statusCode (Storage, Tables) or ErrorResponse.code (Cosmos). */
export function statusOf(err: unknown): number | undefined {
  const e = err as { statusCode?: unknown; code?: unknown } | null;
  if (!e || typeof e !== 'object') return undefined;
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number') return e.code;
  return undefined;
}

function networkCodeOf(err: unknown): string | undefined {
  for (
    let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 4;
    depth += 1
  ) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

const codeForStatus = (status: number): string => {
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'CONFLICT';
  if (status === 412) return 'PRECONDITION_FAILED';
  if (status === 413) return 'TOO_LARGE';
  if (status === 401 || status === 403) return 'FORBIDDEN';
  if (status === 429) return 'THROTTLED';
  if (status === 408 || status >= 500 || status === 410 || status === 449) return 'UNAVAILABLE';
  return 'REJECTED';
};

/**
 * Maps an Azure SDK failure to the error that carries its retry semantics: throttling (429), timeouts
 * (408, aborts), server errors (5xx), Cosmos "retry with" (449) and "gone" (410), and network failures
 * are TransientError; any other 4xx is NonRetriableError. Codes are `<SERVICE>_<KIND>`, e.g.
 * `COSMOS_THROTTLED`, `BLOB_NOT_FOUND`. Errors that already carry retry semantics pass through.
 */
export function mapStorageError(err: unknown, service: StorageService, operation: string): Error {
  if (err instanceof TransientError || err instanceof NonRetriableError) return err;
  const prefix = service.toUpperCase();
  const detail = err instanceof Error ? err.message : String(err);
  const status = statusOf(err);
  if (status !== undefined) {
    const kind = codeForStatus(status);
    const message = `${service} ${operation} failed with HTTP ${status}: ${firstLine(detail)}`;
    const transient = kind === 'THROTTLED' || kind === 'UNAVAILABLE';
    return transient
      ? new TransientError(`${prefix}_${kind}`, message, { cause: err })
      : new NonRetriableError(`${prefix}_${kind}`, message, { cause: err });
  }
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new TransientError(
      `${prefix}_TIMEOUT`,
      `${service} ${operation} timed out: ${firstLine(detail)}`,
      {
        cause: err,
      },
    );
  }
  const network = networkCodeOf(err);
  if (network) {
    return new TransientError(
      `${prefix}_UNAVAILABLE`,
      `${service} ${operation} could not reach the service (${network})`,
      {
        cause: err,
      },
    );
  }
  // Unknown SDK failure: retrying is bounded, and losing a run to a one-off glitch is worse.
  return new TransientError(`${prefix}_FAILED`, `${service} ${operation} failed: ${firstLine(detail)}`, {
    cause: err,
  });
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/**
 * A conditional write lost: the document or blob already exists (409) or changed since it was read
 * (412). Never retried as is: the caller re-reads and decides (first write wins, or merge and retry).
 */
export class ConflictError extends NonRetriableError {}
