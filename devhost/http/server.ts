/**
 * The HTTP front: `http://localhost:<port>/<routePrefix>/<route>` to HTTP-triggered functions
 * (durable-host-spec §3.C, §4.1), extensions (the Durable HTTP API) first, and the admin API
 * `POST /admin/functions/{name}` that runs a non-HTTP function once, as Core Tools does, and devhost's
 * own `/admin/host/clock` (clockAdmin.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { DevhostClock } from '../clock/clock';
import type { HttpExtension, Logger } from '../contracts';
import type { HostInvoker, RpcCookie } from '../app/invoker';
import type { HostedFunction, HostRegistry } from '../app/registry';
import {
  BodyBudget,
  BodyBudgetExceededError,
  BodyTooLargeError,
  budgetRetryAfterSeconds,
  defaultBufferedBodyBudgetBytes,
  readBufferedBody,
} from './bodyBudget';
import { clockAdminPath, handleClockAdmin } from './clockAdmin';
import { authorize, presentedKey, type HostKeys } from './keys';
import { sendNotReady } from './notReady';
import { compileRoute, comparePrecedence, type CompiledRoute } from './routes';

/** Azure's default request body limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT), 100 MB. */
export const defaultMaxRequestBodyBytes = 104_857_600;

export interface HttpRoute {
  fn: HostedFunction;
  route: CompiledRoute;
  /** Upper-case methods; empty means every method. */
  methods: string[];
  authLevel: string;
  /** `/prefix/template` for display. */
  displayPath: string;
}

export interface HttpFrontOptions {
  registry: HostRegistry;
  invoker: HostInvoker;
  routePrefix: string;
  keys?: HostKeys;
  maxRequestBodyBytes?: number;
  /** Total bytes of request bodies buffered at once (see bodyBudget.ts), at least the limit. Default 128 MiB. */
  bufferedBodyBudgetBytes?: number;
  /** `Host.CORS` origins from local.settings.json (`*` allowed). */
  cors?: { origins: string[]; credentials: boolean };
  /** devhost's movable clock, served at /admin/host/clock (a test facility). */
  clock?: DevhostClock;
  log: Logger;
}

export interface HttpFront {
  handle(req: IncomingMessage, res: ServerResponse): void;
  addExtension(extension: HttpExtension): void;
  /** Until ready, every request gets 503 (the server listens before the app has loaded). */
  setReady(ready: boolean): void;
  routes(): HttpRoute[];
}

/** Builds the route table from the registry, in ASP.NET precedence order. */
export function buildRoutes(registry: HostRegistry, routePrefix: string): HttpRoute[] {
  const routes = registry.byKind('http').map((fn): HttpRoute => {
    const binding = fn.triggerBinding;
    const template =
      typeof binding.route === 'string' && binding.route.trim() !== '' ? binding.route : fn.name;
    const methods = Array.isArray(binding.methods) ? binding.methods.map((m) => String(m).toUpperCase()) : [];
    const authLevel = typeof binding.authLevel === 'string' ? binding.authLevel : 'function';
    const route = compileRoute(template, routePrefix);
    const displayPath = `/${[routePrefix, route.template].filter(Boolean).join('/')}`;
    return { fn, route, methods, authLevel, displayPath };
  });
  return routes.sort((a, b) => comparePrecedence(a.route, b.route));
}

const sameSiteText: Record<string, string | undefined> = {
  lax: 'Lax',
  strict: 'Strict',
  explicitNone: 'None',
};

/** `Set-Cookie` text for a cookie of the library's RPC response (values are URI-encoded, as ASP.NET does). */
export function serializeCookie(cookie: RpcCookie): string {
  let text = `${cookie.name}=${encodeURIComponent(cookie.value ?? '')}`;
  if (cookie.domain?.value) text += `; Domain=${cookie.domain.value}`;
  if (cookie.path?.value) text += `; Path=${cookie.path.value}`;
  const seconds = cookie.expires?.value?.seconds;
  if (seconds !== undefined && seconds !== null)
    text += `; Expires=${new Date(Number(seconds) * 1000).toUTCString()}`;
  if (cookie.maxAge?.value !== undefined && cookie.maxAge.value !== null) {
    text += `; Max-Age=${Math.trunc(cookie.maxAge.value)}`;
  }
  if (cookie.secure?.value) text += '; Secure';
  if (cookie.httpOnly?.value) text += '; HttpOnly';
  const sameSite = cookie.sameSite ? sameSiteText[cookie.sameSite] : undefined;
  if (sameSite) text += `; SameSite=${sameSite}`;
  return text;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** Paths of the host's extensions (the Durable HTTP API); they get the body read in full. */
const extensionPrefix = '/runtime/webhooks/';

/** Passes a streamed body on, failing once more than `limit` bytes went through. */
function limitedBody(req: IncomingMessage, limit: number, onTooLarge: () => void): Transform {
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > limit) {
        onTooLarge();
        callback(new BodyTooLargeError(limit));
      } else callback(null, chunk);
    },
  });
  // pipe(), not pipeline(): past the limit the request must stay open so the 413 can still be sent.
  req.pipe(counter);
  req.once('error', (err) => counter.destroy(err));
  return counter;
}

export function createHttpFront(options: HttpFrontOptions): HttpFront {
  const { registry, invoker, log } = options;
  const limit = options.maxRequestBodyBytes ?? defaultMaxRequestBodyBytes;
  // Never below the per-request limit, or a body the limit allows could never be accepted.
  const budget = new BodyBudget(
    Math.max(options.bufferedBodyBudgetBytes ?? defaultBufferedBodyBudgetBytes, limit),
  );
  const extensions: HttpExtension[] = [];
  const table = buildRoutes(registry, options.routePrefix);
  let ready = false;

  function applyCors(req: IncomingMessage, res: ServerResponse): boolean {
    const cors = options.cors;
    const origin = req.headers.origin;
    if (!cors || cors.origins.length === 0 || !origin) return false;
    const allowed =
      cors.origins.includes('*') || cors.origins.some((o) => o.toLowerCase() === origin.toLowerCase());
    if (!allowed) return false;
    res.setHeader(
      'access-control-allow-origin',
      cors.origins.includes('*') && !cors.credentials ? '*' : origin,
    );
    if (cors.credentials) res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('vary', 'Origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.setHeader('access-control-allow-methods', String(req.headers['access-control-request-method']));
      const requested = req.headers['access-control-request-headers'];
      if (requested) res.setHeader('access-control-allow-headers', String(requested));
      res.writeHead(204);
      res.end();
      return true;
    }
    return false;
  }

  async function runAdmin(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<void> {
    const name = decodeURIComponent(url.pathname.slice('/admin/functions/'.length).replace(/\/+$/, ''));
    if (name === '') {
      if (req.method !== 'GET') return sendJson(res, 405, { error: 'Use GET /admin/functions' });
      // HTTP functions also show where they answer, so tools (and the keys tests) can call every route.
      const http = new Map(table.map((r) => [r.fn.name, r]));
      const list = registry.all().map((fn) => {
        const entry = http.get(fn.name);
        return {
          name: fn.name,
          trigger: fn.triggerBinding.type,
          ...(entry ? { route: entry.displayPath, methods: entry.methods, authLevel: entry.authLevel } : {}),
        };
      });
      return sendJson(res, 200, list);
    }
    const fn = registry.get(name);
    if (!fn) return sendJson(res, 404, { error: `No function named '${name}'` });
    if (req.method === 'GET') {
      return sendJson(res, 200, {
        name: fn.name,
        trigger: fn.triggerBinding.type,
        bindings: fn.metadata.bindings,
      });
    }
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'Use POST to run a function' });
    if (fn.kind === 'http') {
      return sendJson(res, 400, { error: `'${fn.name}' is HTTP-triggered: call its route instead` });
    }
    if (fn.kind === 'orchestration' || fn.kind === 'entity') {
      return sendJson(res, 400, {
        error: `'${fn.name}' is a Durable ${fn.kind}: start it with POST /runtime/webhooks/durabletask/orchestrators/{name}`,
      });
    }
    let input: unknown;
    if (body.length > 0) {
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { input?: unknown };
        input = typeof parsed === 'object' && parsed !== null ? parsed.input : undefined;
      } catch {
        return sendJson(res, 400, { error: 'The body must be JSON like {"input": "..."}' });
      }
    }
    const invocationId = randomUUID();
    if (fn.kind === 'timer') {
      // Core Tools passes a TimerInfo that is not past due; the schedule status is unknown here.
      const timerInfo = { Schedule: { AdjustForDST: true }, ScheduleStatus: null, IsPastDue: false };
      void invoker.invoke(fn, { kind: 'timer', timerInfo }, { invocationId }).catch(() => undefined);
    } else if (fn.kind === 'activity') {
      let value = input;
      if (typeof input === 'string') {
        try {
          value = JSON.parse(input) as unknown;
        } catch {
          value = input;
        }
      }
      void invoker.invoke(fn, { kind: 'activity', input: value }, { invocationId }).catch(() => undefined);
    } else {
      void invoker.invoke(fn, { kind: 'other', input }, { invocationId }).catch(() => undefined);
    }
    // The real host answers 202 at once and runs the function in the background.
    res.writeHead(202, { 'x-ms-invocation-id': invocationId });
    res.end();
  }

  /**
   * Reads the whole body within the per-request limit and the budget; answers 413 or 503 itself and
   * resolves undefined then. The body's bytes go back to the budget when the response is done.
   */
  async function bufferBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
    try {
      const { body, release } = await readBufferedBody(req, limit, budget);
      res.once('close', release);
      return body;
    } catch (err) {
      if (err instanceof BodyTooLargeError) refuseBody(req, res, 413, err.message);
      else if (err instanceof BodyBudgetExceededError) {
        log.warn(`refused a request body: ${budget.inUse()} of ${budget.totalBytes} buffered bytes in use`);
        refuseBody(req, res, 503, err.message, { 'retry-after': String(budgetRetryAfterSeconds) });
      } else if (!res.headersSent) res.destroy();
      return undefined;
    }
  }

  /**
   * Answers at once, then reads and drops the rest of the body so a client still sending gets to read
   * the answer (and its `Retry-After`) instead of a reset connection; past another `limit` bytes the
   * connection is dropped.
   */
  function refuseBody(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    error: string,
    headers: Record<string, string> = {},
  ): void {
    sendJson(res, status, { error }, headers);
    if (req.complete) return;
    let discarded = 0;
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > limit) req.destroy();
    });
    req.resume();
  }

  async function runRoute(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const method = (req.method ?? 'GET').toUpperCase();
    for (const entry of table) {
      const params = entry.route.match(url.pathname);
      if (!params) continue;
      if (entry.methods.length > 0 && !entry.methods.includes(method)) continue;
      if (!authorize(options.keys, entry.authLevel, presentedKey(req.headers, url))) {
        res.writeHead(401);
        res.end();
        return true;
      }
      const request = { method, url: url.href, headers: flatHeaders(req), params };
      let tooLarge = false;
      let input: typeof request & { body?: Buffer; bodyStream?: Transform };
      if (invoker.streams(entry.fn)) {
        // Streaming: the body flows to the handler with backpressure, never held whole.
        if (Number(req.headers['content-length']) > limit) {
          refuseBody(req, res, 413, new BodyTooLargeError(limit).message);
          return true;
        }
        input = { ...request, bodyStream: limitedBody(req, limit, () => (tooLarge = true)) };
      } else {
        const body = await bufferBody(req, res);
        if (body === undefined) return true;
        input = { ...request, body };
      }
      const invocationId = randomUUID();
      let result;
      try {
        result = await invoker.invokeHttp(entry.fn, input, { invocationId });
      } catch {
        if (tooLarge) {
          refuseBody(req, res, 413, new BodyTooLargeError(limit).message);
          return true;
        }
        // The invoker already logged the stack with this invocation id.
        sendJson(
          res,
          500,
          { error: `Function '${entry.fn.name}' failed`, invocationId },
          { 'x-ms-invocation-id': invocationId },
        );
        return true;
      }
      res.statusCode = result.status;
      for (const [key, value] of Object.entries(result.headers)) {
        try {
          res.setHeader(key, value);
        } catch (err) {
          log.warn(
            `dropped invalid response header '${key}' from ${entry.fn.name}: ${(err as Error).message}`,
          );
        }
      }
      const cookies = [...(result.rawSetCookie ?? []), ...result.cookies.map(serializeCookie)];
      if (cookies.length > 0) res.setHeader('set-cookie', cookies);
      if (result.stream) {
        const stream = result.stream;
        stream.pipe(res);
        stream.once('error', () => res.destroy());
        res.once('close', () => stream.destroy());
        return true;
      }
      const noBody =
        result.status === 204 || result.status === 304 || (result.status >= 100 && result.status < 200);
      if (noBody || method === 'HEAD') res.end();
      else res.end(result.body);
      return true;
    }
    return false;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!ready) {
      // Ready is set once, after start-up; it is cleared only when devhost stops.
      sendNotReady(res, undefined);
      return;
    }
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    if (applyCors(req, res)) return;
    const lowerPath = url.pathname.toLowerCase();
    // Keys are checked before a byte of the body is held.
    const clockPath = lowerPath.replace(/\/+$/, '') === clockAdminPath;
    if (lowerPath.startsWith('/admin/functions') || clockPath) {
      if (!authorize(options.keys, 'admin', presentedKey(req.headers, url))) {
        sendJson(res, 401, {
          error: 'The admin API needs the master key (x-functions-key header or code query)',
        });
        return;
      }
      const body = await bufferBody(req, res);
      if (body === undefined) return;
      if (clockPath) handleClockAdmin(req, res, body, options.clock);
      else await runAdmin(req, res, url, body);
      return;
    }
    if (lowerPath.startsWith(extensionPrefix)) {
      if (!extensions.every((extension) => extension.admits?.(req, url) ?? true)) {
        res.writeHead(401); // a refused key is an empty 401, as in Azure
        res.end();
        return;
      }
      const body = await bufferBody(req, res);
      if (body === undefined) return;
      for (const extension of extensions) {
        if (await extension.handle(req, res, url, body)) return;
      }
      // The host's own namespace, as in Azure: never an app route (and the body is already read).
      res.writeHead(404);
      res.end();
      return;
    }
    if (await runRoute(req, res, url)) return;
    if (url.pathname === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Your Functions app is up and running (devhost).\n');
      return;
    }
    res.writeHead(404);
    res.end();
  }

  return {
    handle(req, res) {
      route(req, res).catch((err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        log.error(`HTTP ${req.method ?? '?'} ${req.url ?? '?'} failed: ${error.stack ?? error.message}`);
        if (!res.headersSent) sendJson(res, 500, { error: 'devhost failed to handle the request' });
        else res.end();
      });
    },
    addExtension(extension) {
      extensions.push(extension);
    },
    setReady(value) {
      ready = value;
    },
    routes: () => [...table],
  };
}
