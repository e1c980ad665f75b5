/**
 * Durable HTTP (`context.df.callHttp`, durable-host-spec §5.4 action type 8): the host makes the request
 * (the built-in activity `BuiltIn::HttpActivity`) and answers with a `DurableHttpResponse`
 * (`{statusCode, headers, content}`). With `asynchronousPatternEnabled` (the library's default) a 202
 * with a `Location` header is followed as the extension does: a durable timer of `Retry-After` seconds
 * (or `defaultHttpAsyncRequestSleepTimeMillseconds`), then a GET of the Location with the same headers
 * and token source, repeated until something other than 202 comes back. The library (replay schema V3)
 * allocates the same timer and call ids (`CallHttpWithPollingTask`); `pollAfter` decides it identically.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TokenCredential } from '@azure/identity';

/** The library's `DurableHttpRequest` as it arrives in the action. */
export interface DurableHttpRequestWire {
  method: string;
  uri: string;
  content?: string;
  headers?: Record<string, string>;
  tokenSource?: { kind?: string; resource?: string };
  asynchronousPatternEnabled?: boolean;
}

/** The `DurableHttpResponse` the library builds its result from. */
export interface DurableHttpResponseWire {
  statusCode: number;
  headers: Record<string, string>;
  content: string;
}

/** The built-in activity name a durable HTTP call is recorded under (TaskScheduled `Name`). */
export const httpActivityName = 'BuiltIn::HttpActivity';

/** TaskScheduled tag holding when a 202 poll may be sent (its timer's time), so a restart keeps it. */
export const pollTag = 'devhost.pollNotBefore';

function header(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

/**
 * What the library does with a completed call (`CallHttpWithPollingTask.trySetValue`): `undefined` when
 * the response is final, else the next poll (GET of the Location, after `delayMs`). Pure: the shadow
 * replay calls it on recorded results.
 */
export function pollAfter(
  request: DurableHttpRequestWire,
  resultJson: string | null | undefined,
  defaultSleepMs: number,
): { request: DurableHttpRequestWire; delayMs: number } | undefined {
  if (request.asynchronousPatternEnabled === false || !resultJson) return undefined;
  let result: Partial<DurableHttpResponseWire>;
  try {
    result = JSON.parse(resultJson) as Partial<DurableHttpResponseWire>;
  } catch {
    return undefined;
  }
  if (result.statusCode !== 202) return undefined;
  const location = header(result.headers, 'Location');
  if (!location) return undefined;
  const retryAfter = header(result.headers, 'Retry-After');
  // moment.duration(value, 's') as the library uses it: numeric seconds, anything else is 0.
  const seconds = retryAfter ? Number(retryAfter) : NaN;
  const delayMs = retryAfter ? (Number.isFinite(seconds) ? seconds * 1000 : 0) : defaultSleepMs;
  let uri = location;
  try {
    uri = new URL(location, request.uri).toString();
  } catch {
    // left as it is: the GET then fails with a message naming it
  }
  const next: DurableHttpRequestWire = { method: 'GET', uri, asynchronousPatternEnabled: true };
  if (request.headers) next.headers = request.headers;
  if (request.tokenSource) next.tokenSource = request.tokenSource;
  return { request: next, delayMs };
}

/** Checks a request before it is recorded; the message names what is wrong. */
export function validateHttpRequest(value: unknown): DurableHttpRequestWire {
  const r = value as Partial<DurableHttpRequestWire> | undefined;
  if (!r || typeof r !== 'object') throw new Error('context.df.callHttp was called without a request.');
  if (typeof r.method !== 'string' || !/^[A-Za-z]+$/.test(r.method)) {
    throw new Error(`context.df.callHttp: '${String(r.method)}' is not an HTTP method.`);
  }
  let url: URL;
  try {
    url = new URL(String(r.uri));
  } catch {
    throw new Error(`context.df.callHttp: the url '${String(r.uri)}' is not an absolute URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`context.df.callHttp: the url '${String(r.uri)}' is not http or https.`);
  }
  const ts = r.tokenSource;
  if (ts !== undefined && ts !== null && ts.kind !== 'AzureManagedIdentity') {
    throw new Error(
      `context.df.callHttp: token source kind '${String(ts.kind)}' is not supported by devhost ` +
        '(only ManagedIdentityTokenSource).',
    );
  }
  return r as DurableHttpRequestWire;
}

/** Thrown when the call cannot be made or answered; the orchestration receives it as a failed task. */
export class DurableHttpError extends Error {}

/** The scope asked of the credential for a ManagedIdentityTokenSource resource. */
export function scopeOf(resource: string): string {
  return resource.endsWith('/.default') ? resource : `${resource.replace(/\/+$/, '')}/.default`;
}

/**
 * Makes one request as the extension's HTTP activity does. A managed-identity token source gets its
 * token from `credential` (DefaultAzureCredential: environment, workload identity, managed identity,
 * Azure CLI, ...); when none can be had the call fails naming the resource.
 */
export async function sendDurableHttp(
  request: DurableHttpRequestWire,
  credential: () => TokenCredential,
  timeoutMs: number,
): Promise<DurableHttpResponseWire> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers ?? {})) headers[k] = String(v);
  const resource = request.tokenSource?.resource;
  if (request.tokenSource) {
    if (!resource) throw new DurableHttpError('callHttp: the ManagedIdentityTokenSource has no resource.');
    let token: string | undefined;
    let why = 'no credential returned a token';
    try {
      token = (await credential().getToken(scopeOf(resource)))?.token;
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    if (!token) {
      throw new DurableHttpError(
        `callHttp ${request.method} ${request.uri}: could not get a token for resource '${resource}' from the ` +
          `Azure credential chain (DefaultAzureCredential). Sign in locally (az login, or the AZURE_* ` +
          `environment variables of a service principal). ${why}`,
      );
    }
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
    headers.Authorization = `Bearer ${token}`;
  }
  let method = request.method.toUpperCase();
  let body =
    request.content !== undefined && request.content !== null && method !== 'GET' && method !== 'HEAD'
      ? Buffer.from(request.content, 'utf8')
      : undefined;
  let url = new URL(request.uri);
  // Redirects are followed as .NET's HttpClient does (at most 50; 301/302/303 turn a POST into a GET;
  // no https → http; Authorization dropped), so the orchestration sees what it would on Azure.
  for (let hop = 0; ; hop++) {
    const res = await sendOnce(url, method, headers, body, timeoutMs, request.uri);
    const location = res.headers.location;
    if (![301, 302, 303, 307, 308].includes(res.statusCode) || !location || hop >= 50) return res;
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      return res;
    }
    if (url.protocol === 'https:' && next.protocol !== 'https:') return res;
    if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
      method = method === 'HEAD' ? 'HEAD' : 'GET';
      body = undefined;
    }
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
    url = next;
  }
}

/** One request with node:http(s) (fetch would refuse the WHATWG "bad ports", e.g. 6000, which .NET does not). */
function sendOnce(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  timeoutMs: number,
  asked: string,
): Promise<DurableHttpResponseWire> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<DurableHttpResponseWire>((resolve, reject) => {
    const fail = (err: unknown): void =>
      reject(
        new DurableHttpError(
          `callHttp ${method} ${asked} failed: ${err instanceof Error ? err.message : String(err)}`,
        ),
      );
    const req = send(
      url,
      {
        method,
        headers: body ? { 'content-length': String(body.length), ...headers } : headers,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
          }
          resolve({
            statusCode: res.statusCode ?? 0,
            headers: out,
            content: Buffer.concat(chunks).toString('utf8'),
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', fail);
    req.end(body);
  });
}
