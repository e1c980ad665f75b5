import { NonRetriableError, TransientError } from '../errors';

export type Fetch = typeof fetch;

export interface CallOptions {
  fetch?: Fetch;
  /** Attempts in all (default 3): only transient failures (network, 408, 429, 5xx) are tried again. */
  attempts?: number;
  /** Per-attempt time limit (default 10 s). */
  timeoutMs?: number;
  /** Waits between attempts; tests pass a no-op. */
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The longest wait between attempts, whatever a Retry-After asks for. */
const MAX_BACKOFF_MS = 5_000;

/**
 * One call to a caller's API (Azure DevOps, GitHub) with a bounded number of attempts. Returns the
 * response of a 2xx; a 4xx other than 408/429 is a NonRetriableError whose code names the service
 * and status (`<service>_401`), so callers can tell a dead token from a gone check.
 */
export async function callWithRetry(
  service: string,
  url: string,
  init: RequestInit,
  options: CallOptions = {},
): Promise<Response> {
  const f = options.fetch ?? fetch;
  const attempts = Math.max(1, options.attempts ?? 3);
  const sleep = options.sleep ?? defaultSleep;
  let last: Error = new TransientError(`${service}_unreachable`, `${service} was not called`);
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let res: Response;
    try {
      res = await f(url, { ...init, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
    } catch (err) {
      last = new TransientError(
        `${service}_unreachable`,
        `${service} could not be reached: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
      if (attempt < attempts) await sleep(Math.min(MAX_BACKOFF_MS, 250 * 2 ** (attempt - 1)));
      continue;
    }
    if (res.ok) return res;
    const detail = (await res.text().catch(() => '')).slice(0, 300);
    const message = `${service} answered ${res.status}${detail ? `: ${detail}` : ''}`;
    if (res.status !== 408 && res.status !== 429 && res.status < 500) {
      throw new NonRetriableError(`${service}_${res.status}`, message);
    }
    last = new TransientError(`${service}_unavailable`, message);
    if (attempt < attempts) {
      const retryAfter = Number(res.headers.get('retry-after'));
      const wait =
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 250 * 2 ** (attempt - 1);
      await sleep(Math.min(MAX_BACKOFF_MS, wait));
    }
  }
  throw last;
}
