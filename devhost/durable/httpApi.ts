/**
 * The Durable HTTP API (durable-host-spec §9): the RPC surface `DurableClient` calls (`rpcBaseUrl`) and
 * the public webhook URLs `createCheckStatusResponse` hands out. Both are served under
 * `/runtime/webhooks/durabletask/` on the devhost port, by the same handler.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authorize, presentedKey, type HostKeys } from '../http/keys';
import { checkStatusPayload, type ClientUrls, webhookPath } from './clientData';
import { ApiError } from './apiError';
import type { DurableEngineCore } from './engine';
import { isTerminal, parseJsonText, type RuntimeStatus, toStatusHistory } from './history';
import type { Instance } from './instance';
import { checkPayload } from './payload';

interface Reply {
  status: number;
  body?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  body,
  headers,
});

/** ASP.NET `HttpError` shape the extension answers errors with. */
const errorReply = (status: number, summary: string, detail: string): Reply =>
  json(status, { Message: summary, ExceptionMessage: detail });

/** `ToString("s") + "Z"`: second precision, as the extension formats status times. */
const statusTime = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;

const flag = (url: URL, name: string, fallback: boolean): boolean => {
  const v = url.searchParams.get(name);
  return v === null || v === '' ? fallback : v.toLowerCase() === 'true';
};

export interface StatusOptions {
  showInput?: boolean;
  showHistory?: boolean;
  showHistoryOutput?: boolean;
}

export function statusObject(inst: Instance, o: StatusOptions = {}): Record<string, unknown> {
  const status: Record<string, unknown> = {
    name: inst.name,
    instanceId: inst.id,
    runtimeStatus: inst.status,
    input: o.showInput === false ? null : parseJsonText(inst.input),
    customStatus: parseJsonText(inst.customStatus),
    output: parseJsonText(inst.output),
    createdTime: statusTime(inst.createdTime),
    lastUpdatedTime: statusTime(inst.lastUpdatedTime),
  };
  if (o.showHistory && inst.history.length > 0) {
    status.historyEvents = toStatusHistory(inst.history, {
      showHistoryOutput: o.showHistoryOutput === true,
      showInput: o.showInput !== false,
    });
  }
  return status;
}

export class DurableHttpApi {
  /**
   * With keys on, the app's own `DurableClient` reaches the API under `<webhookPath>/_rpc/<token>/` (its
   * `rpcBaseUrl`): the client drops a base URL's query, so a `code=` cannot ride along, and the token is
   * known only to this process and the app it hosts, as the extension's loopback listener is in Azure.
   */
  private readonly rpcToken = randomBytes(24).toString('base64url');

  constructor(
    private readonly core: DurableEngineCore,
    private readonly urls: ClientUrls,
    private readonly keys?: HostKeys,
  ) {}

  /** The path (relative to `webhookPath/`, ending in `/`) the client binding's `rpcBaseUrl` points at. */
  rpcPath(): string {
    return this.keys ? `_rpc/${this.rpcToken}/` : '';
  }

  /** The API path a request to the app's secret `_rpc/<token>/` path stands for; undefined otherwise. */
  private rpcInner(url: URL): URL | undefined {
    const rpcPrefix = `${webhookPath}/${this.rpcPath()}`;
    if (!this.keys || !url.pathname.startsWith(rpcPrefix)) return undefined;
    const inner = new URL(url.href);
    inner.pathname = `${webhookPath}/${url.pathname.slice(rpcPrefix.length)}`;
    return inner;
  }

  /**
   * Asked by the HTTP front before the body is read: false for a Durable API request that neither comes
   * through the app's secret path nor carries the system or master key (Azure's
   * `AuthorizationLevel.System`; a function key is not enough to manage instances).
   */
  admits(req: IncomingMessage, url: URL): boolean {
    const path = url.pathname;
    if (path !== webhookPath && !path.startsWith(`${webhookPath}/`)) return true;
    return this.rpcInner(url) !== undefined || authorize(this.keys, 'system', presentedKey(req.headers, url));
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<boolean> {
    const path = url.pathname;
    if (path !== webhookPath && !path.startsWith(`${webhookPath}/`)) return false;
    let reply: Reply;
    try {
      // Refused keys were answered before the body was read (`admits`).
      reply = await this.route(req, this.rpcInner(url) ?? url, body);
    } catch (err) {
      if (err instanceof ApiError) reply = errorReply(err.status, err.summary, err.message);
      else reply = errorReply(500, 'Something went wrong while processing your request', String(err));
    }
    const headers: Record<string, string> = { ...(reply.headers ?? {}) };
    let payload: string | undefined;
    if (reply.text !== undefined) {
      payload = reply.text;
      headers['content-type'] ??= 'text/plain; charset=utf-8';
    } else if (reply.body !== undefined) {
      payload = JSON.stringify(reply.body);
      headers['content-type'] = 'application/json; charset=utf-8';
    }
    res.writeHead(reply.status, headers);
    res.end(payload);
    return true;
  }

  private async route(req: IncomingMessage, url: URL, body: Buffer): Promise<Reply> {
    const method = (req.method ?? 'GET').toUpperCase();
    const rest = url.pathname.slice(webhookPath.length + 1);
    const parts = rest.split('/').map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
    const [head, a, b, c] = parts;
    if (head === 'orchestrators' && a && method === 'POST' && parts.length <= 3) {
      return this.start(a, b && b.length > 0 ? b : undefined, url, body);
    }
    if (head === 'instances') {
      if (!a) {
        if (method === 'GET') return this.list(url, req);
        if (method === 'DELETE') return this.purgeBy(url);
        return errorReply(405, 'Method not allowed', `${method} is not supported on instances/`);
      }
      if (parts.length === 2) {
        if (method === 'GET') return this.status(a, url);
        if (method === 'DELETE') return this.purge(a);
      }
      if (method === 'POST' && b === 'raiseEvent' && c) return this.raiseEvent(a, c, req, body);
      if (method === 'POST' && parts.length === 3 && b) {
        switch (b) {
          case 'terminate':
          case 'suspend':
          case 'resume':
            await this.core.control(a, b, url.searchParams.get('reason') ?? '');
            return { status: 202 };
          case 'rewind':
            return this.rewind(a);
          case 'restart':
            return this.restart(a, url);
        }
      }
    }
    if (head === 'entities' && a && b !== undefined && parts.length === 3) {
      if (method === 'GET') return this.readEntity(a, b);
      if (method === 'POST') return this.signalEntity(a, b, url, body);
      return errorReply(405, 'Method not allowed', `${method} is not supported on entities/{name}/{key}`);
    }
    if (head === 'entities' && parts.length <= 2) {
      if (method === 'GET') return this.listEntities(a || undefined, url, req);
      return errorReply(405, 'Method not allowed', `${method} is not supported on entities/{name}`);
    }
    return errorReply(404, 'No such API', `devhost has no Durable API at ${method} ${url.pathname}`);
  }

  private readJson(body: Buffer, what: string): string | null {
    const text = body.toString('utf8');
    if (text.trim() === '') return null;
    try {
      JSON.parse(text);
    } catch (e) {
      throw new ApiError(400, `${what} is not valid JSON: ${(e as Error).message}`, 'Invalid JSON content');
    }
    return text;
  }

  private async start(name: string, instanceId: string | undefined, url: URL, body: Buffer): Promise<Reply> {
    const input = this.readJson(body, 'The orchestration input');
    const version = url.searchParams.get('version');
    const inst = await this.core.startNew({
      name,
      ...(instanceId ? { instanceId } : {}),
      input,
      ...(version ? { version } : {}),
    });
    const timeout = Number(url.searchParams.get('timeout') ?? '');
    if (Number.isFinite(timeout) && timeout > 0) {
      const interval = Math.max(Number(url.searchParams.get('pollingInterval') ?? '1') || 1, 0.05);
      return this.waitFor(inst.id, timeout * 1000, interval * 1000, url);
    }
    return this.checkStatus(inst.id);
  }

  private checkStatus(id: string): Reply {
    const payload = checkStatusPayload(this.urls, id);
    return json(202, payload, { Location: payload.statusQueryGetUri!, 'Retry-After': '10' });
  }

  private async waitFor(id: string, timeoutMs: number, intervalMs: number, url: URL): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const inst = this.core.get(id);
      if (inst && isTerminal(inst.status)) {
        if (inst.status === 'Completed') return json(200, parseJsonText(inst.output));
        const fail = inst.status === 'Failed' && flag(url, 'returnInternalServerErrorOnFailure', false);
        return json(fail ? 500 : 200, statusObject(inst));
      }
      if (Date.now() >= deadline) return this.checkStatus(id);
      await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(deadline - Date.now(), 1))));
    }
  }

  private status(id: string, url: URL): Reply {
    const inst = this.core.get(id);
    if (!inst) return { status: 404 };
    const body = statusObject(inst, {
      showInput: flag(url, 'showInput', true),
      showHistory: flag(url, 'showHistory', false),
      showHistoryOutput: flag(url, 'showHistoryOutput', false),
    });
    if (!isTerminal(inst.status)) return json(202, body, { Location: url.href, 'Retry-After': '5' });
    if (inst.status === 'Failed' && flag(url, 'returnInternalServerErrorOnFailure', false))
      return json(500, body);
    return json(200, body);
  }

  private filtered(url: URL): Instance[] {
    const from = url.searchParams.get('createdTimeFrom');
    const to = url.searchParams.get('createdTimeTo');
    const statuses = (url.searchParams.get('runtimeStatus') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => s.toLowerCase());
    const prefix = url.searchParams.get('instanceIdPrefix') ?? '';
    const fromMs = from ? Date.parse(from) : -Infinity;
    const toMs = to ? Date.parse(to) : Infinity;
    if (Number.isNaN(fromMs) || Number.isNaN(toMs)) {
      throw new ApiError(400, 'createdTimeFrom / createdTimeTo must be ISO 8601 times.', 'Invalid query');
    }
    return [...this.core.instances.values()]
      .filter(
        (i) =>
          !i.purged &&
          i.createdTime >= fromMs &&
          i.createdTime <= toMs &&
          (statuses.length === 0 || statuses.includes(i.status.toLowerCase() as Lowercase<RuntimeStatus>)) &&
          i.id.startsWith(prefix),
      )
      .sort((x, y) => x.createdTime - y.createdTime || (x.id < y.id ? -1 : 1));
  }

  private list(url: URL, req: IncomingMessage): Reply {
    const all = this.filtered(url);
    const top = Number(url.searchParams.get('top') ?? '') || 100;
    const token = req.headers['x-ms-continuation-token'];
    const offset =
      typeof token === 'string' && token ? Number(Buffer.from(token, 'base64').toString()) || 0 : 0;
    const page = all.slice(offset, offset + top);
    const showInput = flag(url, 'showInput', true);
    const headers: Record<string, string> = {};
    if (offset + top < all.length)
      headers['x-ms-continuation-token'] = Buffer.from(String(offset + top)).toString('base64');
    return json(
      200,
      page.map((i) => statusObject(i, { showInput })),
      headers,
    );
  }

  private async purge(id: string): Promise<Reply> {
    const deleted = await this.core.purge(id);
    return deleted ? json(200, { instancesDeleted: 1 }) : { status: 404 };
  }

  private async purgeBy(url: URL): Promise<Reply> {
    if (!url.searchParams.get('createdTimeFrom')) {
      return errorReply(
        400,
        'One or more of the arguments submitted is incorrect',
        'createdTimeFrom is required.',
      );
    }
    const targets = this.filtered(url);
    let n = 0;
    for (const i of targets) if (await this.core.purge(i.id)) n++;
    return n === 0 ? { status: 404 } : json(200, { instancesDeleted: n });
  }

  private async raiseEvent(id: string, name: string, req: IncomingMessage, body: Buffer): Promise<Reply> {
    const inst = this.core.get(id);
    if (!inst) return errorReply(404, 'Not found', `No instance with ID '${id}' found.`);
    if (isTerminal(inst.status)) return { status: 410 };
    const type = String(req.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim()
      .toLowerCase();
    if (type !== 'application/json') {
      return errorReply(
        400,
        'Only application/json request content is supported',
        `content-type was '${type}'`,
      );
    }
    const data = this.readJson(body, `The data of event '${name}'`);
    await this.core.raiseEvent(id, name, data);
    return { status: 202 };
  }

  /** The extension's key `$` stands for the empty key. */
  private entityKey(key: string): string {
    return key === '$' ? '' : key;
  }

  private entities() {
    const e = this.core.entities;
    if (!e) throw new ApiError(501, "Durable entities need devhost's SQLite task hub.");
    return e;
  }

  /**
   * GET entities[/{name}]?fetchState=&lastOperationTimeFrom=&lastOperationTimeTo=&top=: the entities that
   * exist, `[{entityId: {name, key}, lastOperationTime, state?}]`, paged with `x-ms-continuation-token`
   * as the instance list is.
   */
  private listEntities(name: string | undefined, url: URL, req: IncomingMessage): Reply {
    const from = url.searchParams.get('lastOperationTimeFrom');
    const to = url.searchParams.get('lastOperationTimeTo');
    const fromMs = from ? Date.parse(from) : -Infinity;
    const toMs = to ? Date.parse(to) : Infinity;
    if (Number.isNaN(fromMs) || Number.isNaN(toMs)) {
      throw new ApiError(
        400,
        'lastOperationTimeFrom / lastOperationTimeTo must be ISO 8601 times.',
        'Invalid query',
      );
    }
    const topText = url.searchParams.get('top');
    const top = topText === null || topText === '' ? 100 : Number(topText);
    if (!Number.isInteger(top) || top <= 0) {
      throw new ApiError(400, `top must be a positive integer, got '${topText}'.`, 'Invalid query');
    }
    const all = this.entities().list({ ...(name === undefined ? {} : { name }), fromMs, toMs });
    const token = req.headers['x-ms-continuation-token'];
    const offset =
      typeof token === 'string' && token ? Number(Buffer.from(token, 'base64').toString()) || 0 : 0;
    const fetchState = flag(url, 'fetchState', false);
    const headers: Record<string, string> = {};
    if (offset + top < all.length)
      headers['x-ms-continuation-token'] = Buffer.from(String(offset + top)).toString('base64');
    return json(
      200,
      all.slice(offset, offset + top).map((e) => ({
        entityId: { name: e.name, key: e.key },
        lastOperationTime: new Date(e.lastModified).toISOString(),
        ...(fetchState ? { state: e.state === undefined ? null : (JSON.parse(e.state) as unknown) } : {}),
      })),
      headers,
    );
  }

  /** GET entities/{name}/{key}: 200 with the state (JSON), 404 when the entity does not exist. */
  private readEntity(name: string, key: string): Reply {
    const read = this.entities().read(name, this.entityKey(key));
    if (!read.exists)
      return errorReply(404, 'Not found', `No entity '@${name.toLowerCase()}@${key}' exists.`);
    return read.state === undefined
      ? { status: 200, text: 'null', headers: { 'content-type': 'application/json; charset=utf-8' } }
      : { status: 200, text: read.state, headers: { 'content-type': 'application/json; charset=utf-8' } };
  }

  /** POST entities/{name}/{key}?op=<operation>, body = JSON input: 202 once the signal is persisted. */
  private async signalEntity(name: string, key: string, url: URL, body: Buffer): Promise<Reply> {
    const entities = this.entities();
    const op = url.searchParams.get('op') ?? '';
    if (op === '') {
      return errorReply(
        400,
        'One or more of the arguments submitted is incorrect',
        "The 'op' query parameter (the operation name) is required.",
      );
    }
    const input = this.readJson(body, `The input of entity operation '${op}'`);
    try {
      checkPayload(`The input of entity operation '${op}'`, input, this.core.config.maxPayloadBytes);
    } catch (e) {
      throw new ApiError(400, (e as Error).message, 'Invalid operation input');
    }
    await entities.signal(name, this.entityKey(key), op, input ?? undefined);
    return { status: 202 };
  }

  private rewind(id: string): Reply {
    const inst = this.core.get(id);
    if (!inst) return { status: 404, text: `No instance with ID '${id}' found.` };
    return {
      status: 501,
      text: 'The rewind operation is not supported by devhost (it is a deprecated preview feature of the Azure Storage provider).',
    };
  }

  private async restart(id: string, url: URL): Promise<Reply> {
    const inst = this.core.get(id);
    if (!inst)
      return errorReply(
        400,
        'One or more of the arguments submitted is incorrect',
        `No instance with ID '${id}' found.`,
      );
    const newId = flag(url, 'restartWithNewInstanceId', true);
    const started = await this.core.startNew({
      name: inst.name,
      input: inst.input,
      ...(newId ? {} : { instanceId: id }),
    });
    return this.checkStatus(started.id);
  }
}
