import { NonRetriableError, TransientError } from '../errors';

/** The fetch used by HTTP notifiers (injectable for tests against local fakes). */
export type Fetch = typeof fetch;

/** Maps an HTTP failure to Sluice's retry semantics: 408/429/5xx retry, other 4xx do not. */
export function httpError(service: string, status: number, detail: string): Error {
  const message = `${service} answered ${status}${detail ? `: ${detail.slice(0, 300)}` : ''}`;
  return status === 408 || status === 429 || status >= 500
    ? new TransientError(`${service}_unavailable`, message)
    : new NonRetriableError(`${service}_rejected`, message);
}

export async function fetchOrTransient(
  service: string,
  f: Fetch,
  url: string,
  init: RequestInit,
): Promise<Response> {
  try {
    return await f(url, { ...init, signal: init.signal ?? AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new TransientError(
      `${service}_unreachable`,
      `${service} could not be reached: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
