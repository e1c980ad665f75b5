import type { TokenCredential } from '@azure/identity';
import { NonRetriableError, TransientError } from '../../errors';

/**
 * The Azure Machine Learning workspace over the ARM REST API, as the azureml backend uses it: a
 * Microsoft Entra token per call (the Function App's managed identity in Azure), and the service's
 * answers sorted into what a retry can fix and what it cannot.
 *
 * - A token that cannot be had is a NonRetriableError `azureml_credential_unavailable` naming the
 *   credential's own message (an identity that is not assigned, a wrong AZURE_CLIENT_ID): waiting does
 *   not fix it.
 * - 429 and 5xx (and a connection that fails) are retried here, a bounded number of times, waiting
 *   what `Retry-After` asks (capped) or a doubling backoff; still failing, they become a
 *   TransientError for the caller's own retry policy.
 * - Any other 4xx is a NonRetriableError with Azure's error code and message.
 */
export interface AzureMlClientOptions {
  /** ARM endpoint; the tests point it at a local fake. */
  endpoint?: string;
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
  apiVersion?: string;
  credential: TokenCredential;
  fetch?: typeof fetch;
  /** Attempts per call for 429/5xx/network failures (default 4). */
  maxAttempts?: number;
  /** Longest single wait between attempts, whatever Retry-After says (default 30 s). */
  maxRetryDelayMs?: number;
  /** First backoff when the answer has no Retry-After (default 1 s, doubling). */
  baseRetryDelayMs?: number;
  /** Waits between attempts (tests record the delays instead of waiting). */
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_AZUREML_API_VERSION = '2024-04-01';
export const ARM_SCOPE = 'https://management.azure.com/.default';
export const STORAGE_SCOPE = 'https://storage.azure.com/.default';

export interface ArmResponse {
  status: number;
  json: unknown;
  headers: Headers;
  /** The body as text (a log file is not JSON). */
  text: string;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Seconds or an HTTP date, as RFC 9110 allows; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

const retriable = (status: number) => status === 408 || status === 429 || status >= 500;

/** Azure's `{error: {code, message}}`, or the `x-ms-error-code` header. */
export function armError(json: unknown, headers?: Headers): { code?: string; message?: string } {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    ...(typeof e?.code === 'string'
      ? { code: e.code }
      : headers?.get('x-ms-error-code')
        ? { code: headers.get('x-ms-error-code')! }
        : {}),
    ...(typeof e?.message === 'string' ? { message: e.message } : {}),
  };
}

export class AzureMlClient {
  readonly endpoint: string;
  readonly apiVersion: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(readonly options: AzureMlClientOptions) {
    this.endpoint = (options.endpoint ?? 'https://management.azure.com').replace(/\/$/, '');
    this.apiVersion = options.apiVersion ?? DEFAULT_AZUREML_API_VERSION;
    this.fetchImpl = options.fetch ?? fetch;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** The workspace's ARM id, e.g. `/subscriptions/…/workspaces/mlw-x`. */
  get workspaceId(): string {
    const o = this.options;
    return (
      `/subscriptions/${encodeURIComponent(o.subscriptionId)}/resourceGroups/${encodeURIComponent(o.resourceGroup)}` +
      `/providers/Microsoft.MachineLearningServices/workspaces/${encodeURIComponent(o.workspace)}`
    );
  }

  /** The ARM id of something in the workspace: `armId('jobs', id)` → `…/workspaces/ws/jobs/id`. */
  armId(...segments: string[]): string {
    return `${this.workspaceId}/${segments.map(encodeURIComponent).join('/')}`;
  }

  /** The URL of an ARM id (or of a path under the workspace when it does not start with `/`). */
  url(pathOrId: string, suffix = ''): string {
    const path = pathOrId.startsWith('/') ? pathOrId : `${this.workspaceId}/${pathOrId}`;
    return `${this.endpoint}${path}${suffix}?api-version=${encodeURIComponent(this.apiVersion)}`;
  }

  /** A bearer token for `scope`; a credential that cannot give one is not retried. */
  async token(scope: string = ARM_SCOPE): Promise<string> {
    let token: { token: string } | null;
    try {
      token = await this.options.credential.getToken(scope);
    } catch (err) {
      throw new NonRetriableError(
        'azureml_credential_unavailable',
        `no Microsoft Entra token for ${scope}: ${(err as Error).message} ` +
          '(in Azure: the Function App\'s user-assigned identity and AZURE_CLIENT_ID; locally: "az login")',
        { cause: err },
      );
    }
    if (!token?.token)
      throw new NonRetriableError(
        'azureml_credential_unavailable',
        `the credential returned no token for ${scope} (in Azure: check the Function App's identity and AZURE_CLIENT_ID)`,
      );
    return token.token;
  }

  /**
   * One HTTP call, retried on 429/5xx/network failures; returns every other answer (the caller
   * decides what a 404 means) or throws a TransientError when the retries ran out.
   */
  async send(
    method: string,
    url: string,
    options: { body?: unknown; raw?: Uint8Array; headers?: Record<string, string>; scope?: string } = {},
  ): Promise<ArmResponse> {
    const attempts = this.options.maxAttempts ?? 4;
    const maxDelay = this.options.maxRetryDelayMs ?? 30_000;
    let backoff = this.options.baseRetryDelayMs ?? 1_000;
    let last = '';
    for (let attempt = 1; ; attempt++) {
      const token = await this.token(options.scope);
      let res: Response | undefined;
      try {
        res = await this.fetchImpl(url, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...options.headers,
          },
          ...(options.body !== undefined
            ? { body: JSON.stringify(options.body) }
            : options.raw
              ? { body: options.raw }
              : {}),
          signal: AbortSignal.timeout(60_000),
        });
      } catch (err) {
        last = `${method} ${new URL(url).pathname} failed: ${(err as Error).message}`;
      }
      let wait: number | undefined;
      if (res) {
        const text = await res.text();
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = { raw: text.slice(0, 500) };
        }
        if (!retriable(res.status)) return { status: res.status, json, headers: res.headers, text };
        const e = armError(json, res.headers);
        last = `HTTP ${res.status}${e.code ? ` ${e.code}` : ''}${e.message ? `: ${e.message}` : ''}`;
        wait = retryAfterMs(res.headers.get('retry-after'), Date.now());
      }
      if (attempt >= attempts) {
        throw new TransientError(
          'azureml_unavailable',
          `Azure ML ${method} ${new URL(url).pathname}: ${last} (after ${attempts} attempts)`,
        );
      }
      await this.sleep(Math.min(maxDelay, wait ?? backoff));
      backoff *= 2;
    }
  }

  /** An ARM call under the workspace; 2xx answers only, anything else a NonRetriableError. */
  async arm(
    method: string,
    pathOrId: string,
    what: string,
    body?: unknown,
    suffix = '',
  ): Promise<ArmResponse> {
    const res = await this.send(method, this.url(pathOrId, suffix), body === undefined ? {} : { body });
    if (res.status < 200 || res.status >= 300) throw this.fail(what, res);
    return res;
  }

  /** A GET that answers undefined for 404. */
  async tryGet(pathOrId: string, what: string): Promise<unknown> {
    const res = await this.send('GET', this.url(pathOrId));
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.fail(what, res);
    return res.json;
  }

  /** The error for an answer that is not what was asked for (4xx here: 429/5xx were retried). */
  fail(
    what: string,
    res: Pick<ArmResponse, 'status' | 'json' | 'headers'>,
    options: { notFoundCode?: string; forbiddenHint?: string } = {},
  ): Error {
    const e = armError(res.json, res.headers);
    const detail = `${what}: HTTP ${res.status}${e.code ? ` ${e.code}` : ''}${e.message ? `: ${e.message}` : ''}`;
    if (retriable(res.status)) return new TransientError('azureml_unavailable', detail);
    if (res.status === 401 || res.status === 403)
      return new NonRetriableError(
        'azureml_forbidden',
        `${detail} (${options.forbiddenHint ?? "the app's identity needs the AzureML Data Scientist role on the workspace"})`,
      );
    return new NonRetriableError(
      res.status === 404 ? (options.notFoundCode ?? 'azureml_not_found') : 'azureml_rejected',
      detail,
    );
  }
}
