/**
 * Runs invocations through the library's own InvocationModel (durable-host-spec §3.A), exactly as the
 * Node worker does: build RPC input data, `getArguments()`, preInvocation hooks, `invokeFunction()`,
 * postInvocation hooks, `getResponse()`. Each function runs with the programming model of the copy of
 * `@azure/functions` that registered it, so the app's own `HttpRequest`/`HttpResponse` classes are used.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { InvocationInput, Invoker, Logger } from '../contracts';
import type {
  CoreCapture,
  CoreLogCategory,
  CoreLogLevel,
  ProgrammingModelLike,
  RpcInvocationResponse,
  RpcTypedData,
} from './coreShim';
import type { HostedFunction } from './registry';

/** An HTTP request as the host hands it to the library (`RpcHttpData`). */
export interface HttpRequestData {
  method: string;
  /** Absolute URL; the library reads the query from it. */
  url: string;
  headers: Record<string, string>;
  params: Record<string, string>;
  body?: Buffer;
  /** Streaming functions only: the request body as it arrives, piped to the library with backpressure. */
  bodyStream?: Readable;
}

/** `RpcHttpCookie` as `toRpcHttpCookie` builds it. */
export interface RpcCookie {
  name: string;
  value: string;
  domain?: { value?: string } | null;
  path?: { value?: string } | null;
  expires?: { value?: { seconds?: number } } | null;
  secure?: { value?: boolean } | null;
  httpOnly?: { value?: boolean } | null;
  sameSite?: 'none' | 'lax' | 'strict' | 'explicitNone';
  maxAge?: { value?: number } | null;
}

export interface HttpResultData {
  status: number;
  headers: Record<string, string>;
  cookies: RpcCookie[];
  body: Buffer;
  /** Streaming mode only: `Set-Cookie` values the library already serialized. */
  rawSetCookie?: string[];
  /** Streaming mode only: the body, relayed as the handler produces it (`body` is then empty). */
  stream?: IncomingMessage;
}

export interface HostInvoker {
  /** The seam the Durable engine and the timers use. */
  invoke: Invoker;
  /** Runs an HTTP-triggered function and returns the converted response (spec §3.C). */
  invokeHttp(
    fn: HostedFunction,
    request: HttpRequestData,
    options?: { invocationId?: string },
  ): Promise<HttpResultData>;
  /** Turns on the streaming protocol for functions of `model` (its capabilities reported `HttpUri`). */
  enableHttpStream(model: ProgrammingModelLike, httpUri: string): void;
  /** True when `fn` runs with the streaming protocol: its request body may be passed as `bodyStream`. */
  streams(fn: HostedFunction): boolean;
  /** Where the Durable client binding data comes from once the engine is up. */
  setClientBindingDataSource(source: () => Record<string, unknown>): void;
  runAppStartHooks(functionAppDirectory: string): Promise<void>;
  runAppTerminateHooks(functionAppDirectory: string): Promise<void>;
  inFlight(): number;
  /** Resolves true when every running invocation settled, false when `timeoutMs` passed first. */
  drain(timeoutMs: number): Promise<boolean>;
}

export interface InvokerOptions {
  capture: CoreCapture;
  log: Logger;
  /** host.json `functionTimeout` in ms; an invocation running longer fails (it cannot be cancelled). */
  functionTimeoutMs?: number;
}

/** Normalizes a thrown value to an Error, keeping a non-Error as `cause`. */
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

/** The handler's value as the host receives it (`toRpcTypedData`), decoded without re-parsing strings. */
export function decodeReturnValue(data: RpcTypedData | null | undefined): unknown {
  if (!data) return undefined;
  if (data.string !== undefined && data.string !== null) return data.string;
  if (data.json !== undefined && data.json !== null) return JSON.parse(data.json) as unknown;
  if (data.int !== undefined && data.int !== null) return data.int;
  if (data.double !== undefined && data.double !== null) return data.double;
  if (data.bytes !== undefined && data.bytes !== null) return Buffer.from(data.bytes);
  return undefined;
}

function toTypedData(value: unknown): RpcTypedData | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return { string: value };
  if (Buffer.isBuffer(value)) return { bytes: value };
  return { json: JSON.stringify(value) };
}

/** RPC trigger data for a non-HTTP invocation (spec §3.A table). */
function triggerData(input: InvocationInput): RpcTypedData | undefined {
  switch (input.kind) {
    case 'orchestration':
      return { string: JSON.stringify(input.payload) };
    case 'activity':
      return input.input === undefined ? undefined : { string: JSON.stringify(input.input) };
    case 'entity':
      return { string: JSON.stringify(input.batch) };
    case 'timer':
      return { json: JSON.stringify(input.timerInfo) };
    case 'other':
      return toTypedData(input.input);
  }
}

const userLevel: Record<CoreLogLevel, 'debug' | 'info' | 'warn' | 'error' | undefined> = {
  trace: 'debug',
  debug: 'debug',
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'error',
  none: undefined,
};

function formatDuration(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

const ignore = (): void => undefined;

/**
 * Streams a request body to the library's proxy: pipe() pauses the client's upload whenever the
 * handler has not read what was sent yet. A failure on either side destroys the other, as pipeline()
 * would; pipeline() is not used because it aborts an AbortController whenever it finishes, and the
 * DOMException that builds cost ~3 % of devhost's CPU per request (bench:scoring profile).
 */
function forwardBody(body: Readable, proxyRequest: ClientRequest): void {
  body.on('error', ignore); // reported through 'close'
  body.once('close', () => {
    if (!body.readableEnded) proxyRequest.destroy(body.errored ?? new Error('The request body ended early'));
  });
  proxyRequest.once('error', () => body.destroy());
  body.pipe(proxyRequest);
}

export function createInvoker(options: InvokerOptions): HostInvoker {
  const { capture, log } = options;
  const appHookData: Record<string, unknown> = {};
  const running = new Set<Promise<unknown>>();
  let clientBindingData: (() => Record<string, unknown>) | undefined;
  /** The library's proxy per streaming programming model, parsed once (`enableHttpStream`). */
  const httpStreamUris = new Map<ProgrammingModelLike, { hostname: string; port: string }>();

  function modelOf(fn: HostedFunction): ProgrammingModelLike {
    const model = fn.programmingModel ?? capture.programmingModel();
    if (!model) throw new Error(`No @azure/functions programming model was registered for '${fn.name}'`);
    return model;
  }

  function writeLog(
    fnName: string,
    invocationId: string,
    invocationContext: () => unknown,
    level: CoreLogLevel,
    category: CoreLogCategory,
    message: string,
  ): void {
    const hookCtx: Record<string, unknown> = {
      hookData: {},
      level,
      message,
      category,
      invocationContext: invocationContext(),
    };
    for (const hook of capture.hooks.log) {
      try {
        hook(hookCtx);
      } catch (err) {
        log.warn(`log hook threw: ${ensureError(err).message}`);
      }
    }
    const finalLevel = userLevel[hookCtx.level as CoreLogLevel] ?? undefined;
    const text = String(hookCtx.message);
    if (!finalLevel) return;
    if (category === 'user') log[finalLevel](`[${fnName}] ${text}`, { invocationId });
    else if (finalLevel === 'warn' || finalLevel === 'error')
      log[finalLevel](`[${fnName}] (${category}) ${text}`);
    else log.debug(`[${fnName}] (${category}) ${text}`);
  }

  async function runHooks(
    name: 'preInvocation' | 'postInvocation',
    context: Record<string, unknown>,
  ): Promise<void> {
    for (const hook of [...capture.hooks[name]]) await hook(context);
  }

  function withTimeout<T>(promise: Promise<T>, fn: HostedFunction, invocationId: string): Promise<T> {
    const limit = options.functionTimeoutMs;
    if (limit === undefined) return promise;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `Timeout value of ${formatDuration(limit)} was exceeded by function: Functions.${fn.name} (Id: ${invocationId})`,
            ),
          ),
        limit,
      );
      timer.unref();
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /** One invocation through the InvocationModel; resolves with the (hook-adjusted) result and RPC response. */
  async function execute(
    fn: HostedFunction,
    trigger: RpcTypedData | undefined,
    invocationId: string,
    triggerMetadata: Record<string, RpcTypedData> = {},
  ): Promise<{ result: unknown; response: RpcInvocationResponse }> {
    const inputData: { name: string; data?: RpcTypedData }[] = [
      { name: fn.triggerBindingName, data: trigger },
    ];
    if (fn.durableClientBindingName) {
      if (!clientBindingData) {
        throw new Error(`Function '${fn.name}' has a durable client input, but no Durable engine is running`);
      }
      inputData.push({
        name: fn.durableClientBindingName,
        data: { string: JSON.stringify(clientBindingData()) },
      });
    }
    const current: { context?: unknown } = {};
    const coreCtx: Record<string, unknown> = {
      invocationId,
      metadata: { name: fn.metadata.name, bindings: fn.metadata.bindings },
      request: { invocationId, functionId: fn.name, inputData, triggerMetadata },
      state: undefined,
      log: (level: CoreLogLevel, category: CoreLogCategory, message: string) =>
        writeLog(fn.name, invocationId, () => current.context, level, category, message),
    };
    const model = await modelOf(fn).getInvocationModel(coreCtx);
    const { context, inputs } = await model.getArguments();
    current.context = context;

    const hookData: Record<string, unknown> = {};
    const pre: Record<string, unknown> = {
      hookData,
      appHookData,
      invocationContext: context,
      functionCallback: fn.callback,
      inputs,
    };
    coreCtx.state = 'preInvocationHooks';
    await runHooks('preInvocation', pre);

    coreCtx.state = 'invocation';
    let result: unknown;
    let error: unknown;
    try {
      result = await withTimeout(
        model.invokeFunction(
          context,
          pre.inputs as unknown[],
          pre.functionCallback as (...args: unknown[]) => unknown,
        ),
        fn,
        invocationId,
      );
    } catch (err) {
      error = err ?? new Error('Function threw a falsy value');
    }

    const post: Record<string, unknown> = {
      hookData,
      appHookData,
      invocationContext: context,
      inputs: pre.inputs,
      result,
      error,
    };
    coreCtx.state = 'postInvocationHooks';
    await runHooks('postInvocation', post);
    if (post.error !== undefined && post.error !== null) throw ensureError(post.error);
    const response = await model.getResponse(context, post.result);
    return { result: post.result, response };
  }

  /** Wraps an invocation with the per-invocation log line and in-flight tracking. */
  function tracked<T>(fn: HostedFunction, invocationId: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const promise = (async () => {
      try {
        const value = await work();
        const duration = Math.round(performance.now() - started);
        log.info(`Executed 'Functions.${fn.name}' (Succeeded, Id=${invocationId}, Duration=${duration}ms)`);
        return value;
      } catch (err) {
        const error = ensureError(err);
        const duration = Math.round(performance.now() - started);
        log.error(
          `Executed 'Functions.${fn.name}' (Failed, Id=${invocationId}, Duration=${duration}ms)\n${error.stack ?? error.message}`,
        );
        throw error;
      }
    })();
    running.add(promise);
    void promise.then(
      () => running.delete(promise),
      () => running.delete(promise),
    );
    return promise;
  }

  const invoke: Invoker = (fn, input, invokeOptions) => {
    const invocationId = invokeOptions?.invocationId ?? randomUUID();
    const hosted = fn as HostedFunction;
    return tracked(hosted, invocationId, async () => {
      const { response } = await execute(hosted, triggerData(input), invocationId);
      for (const output of response.outputData ?? []) {
        log.debug(`[${fn.name}] output binding '${output.name ?? '?'}' is not supported by devhost; dropped`);
      }
      return decodeReturnValue(response.returnValue);
    });
  };

  async function invokeHttp(
    fn: HostedFunction,
    request: HttpRequestData,
    invokeOptions?: { invocationId?: string },
  ): Promise<HttpResultData> {
    const invocationId = invokeOptions?.invocationId ?? randomUUID();
    const proxy = fn.programmingModel ? httpStreamUris.get(fn.programmingModel) : undefined;
    if (proxy) return invokeHttpStreaming(fn, request, invocationId, proxy);
    return tracked(fn, invocationId, async () => {
      const http: Record<string, unknown> = {
        method: request.method,
        url: request.url,
        headers: request.headers,
        params: request.params,
      };
      if (request.body && request.body.length > 0) http.body = { bytes: request.body };
      const { response } = await execute(fn, { http }, invocationId);
      const rpc = response.returnValue?.http as
        | {
            statusCode?: string;
            headers?: Record<string, string>;
            cookies?: RpcCookie[];
            body?: RpcTypedData;
          }
        | undefined;
      if (!rpc) return { status: 200, headers: {}, cookies: [], body: Buffer.alloc(0) };
      const body = rpc.body?.bytes
        ? Buffer.from(rpc.body.bytes)
        : typeof rpc.body?.string === 'string'
          ? Buffer.from(rpc.body.string)
          : Buffer.alloc(0);
      return {
        status: rpc.statusCode ? Number(rpc.statusCode) : 200,
        headers: rpc.headers ?? {},
        cookies: rpc.cookies ?? [],
        body,
      };
    });
  }

  /**
   * `app.setup({ enableHttpStream: true })`: the worker protocol of spec §3.A. The library serves an HTTP
   * proxy (its capabilities' `HttpUri`); the host forwards the request there tagged with the invocation
   * id and relays the library's response as it streams, while the invocation runs through the model.
   */
  async function invokeHttpStreaming(
    fn: HostedFunction,
    request: HttpRequestData,
    invocationId: string,
    proxy: { hostname: string; port: string },
  ): Promise<HttpResultData> {
    const url = new URL(request.url);
    const triggerMetadata: Record<string, RpcTypedData> = {
      Headers: { json: JSON.stringify(request.headers) },
    };
    for (const [name, value] of Object.entries(request.params)) triggerMetadata[name] = { string: value };
    const http = {
      method: request.method,
      url: request.url,
      headers: request.headers,
      params: request.params,
    };

    let proxyRequest: ClientRequest | undefined;
    const proxied = new Promise<IncomingMessage>((resolve, reject) => {
      proxyRequest = httpRequest({
        host: proxy.hostname,
        port: proxy.port,
        path: url.pathname + url.search,
        method: request.method,
        headers: {
          ...request.headers,
          'x-ms-invocation-id': invocationId,
          'x-forwarded-host': url.host,
          'x-forwarded-proto': url.protocol.replace(/:$/, ''),
        },
      });
      proxyRequest.once('response', resolve);
      proxyRequest.once('error', reject);
      if (request.bodyStream) forwardBody(request.bodyStream, proxyRequest);
      else proxyRequest.end(request.body && request.body.length > 0 ? request.body : undefined);
    });
    const invocation = tracked(fn, invocationId, () => execute(fn, { http }, invocationId, triggerMetadata));
    // A failed invocation never answers the proxy request: drop it so the caller sees the failure.
    invocation.catch(() => proxyRequest?.destroy());
    let response: IncomingMessage;
    try {
      response = await proxied;
    } catch (err) {
      await invocation;
      throw err;
    }
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(response.headers)) {
      if (value === undefined || key === 'x-ms-invocation-id' || key === 'set-cookie') continue;
      if (key === 'transfer-encoding' || key === 'connection' || key === 'keep-alive') continue;
      headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    return {
      status: response.statusCode ?? 200,
      headers,
      cookies: [],
      rawSetCookie: response.headers['set-cookie'] ?? [],
      body: Buffer.alloc(0),
      stream: response,
    };
  }

  async function runAppHooks(name: 'appStart' | 'appTerminate', functionAppDirectory: string): Promise<void> {
    for (const hook of [...capture.hooks[name]]) {
      await hook({ hookData: appHookData, appHookData, functionAppDirectory });
    }
  }

  return {
    invoke,
    invokeHttp,
    enableHttpStream: (model, httpUri) => {
      const { hostname, port } = new URL(httpUri);
      httpStreamUris.set(model, { hostname: hostname.replace(/^\[(.*)\]$/, '$1'), port });
    },
    streams: (fn) => fn.programmingModel !== undefined && httpStreamUris.has(fn.programmingModel),
    setClientBindingDataSource: (source) => {
      clientBindingData = source;
    },
    runAppStartHooks: (dir) => runAppHooks('appStart', dir),
    runAppTerminateHooks: (dir) => runAppHooks('appTerminate', dir),
    inFlight: () => running.size,
    drain: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      const settled = (async () => {
        while (running.size > 0) await Promise.allSettled([...running]);
        return true as const;
      })();
      const done = await Promise.race([settled, timedOut]);
      clearTimeout(timer);
      return done;
    },
  };
}
