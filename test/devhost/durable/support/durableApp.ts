/**
 * A devhost hosting a Durable fixture app, over real HTTP, persisting to an Azurite Table service the
 * test owns (so a test can SIGKILL devhost while storage survives, as Azure Storage survives a host).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDevhost, type RunningDevhost } from '../../../helpers/devhost';
import { startAzuriteTable, type RunningAzurite } from './azurite';

export interface StatusBody {
  name: string;
  instanceId: string;
  runtimeStatus: string;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  createdTime: string;
  lastUpdatedTime: string;
  historyEvents?: Record<string, unknown>[];
}

export interface CheckStatus {
  id: string;
  statusQueryGetUri: string;
  sendEventPostUri: string;
  terminatePostUri: string;
  purgeHistoryDeleteUri: string;
  suspendPostUri: string;
  resumePostUri: string;
  [key: string]: string;
}

export interface DurableApp {
  url: string;
  devhost: RunningDevhost;
  azurite: RunningAzurite;
  /** Starts through the app's HTTP starter (`df.getClient` + `startNew` + `createCheckStatusResponse`). */
  start(name: string, input?: unknown, instanceId?: string): Promise<CheckStatus>;
  /** GET on the status URL; `query` is appended (e.g. `showHistory=true`). */
  status(id: string, query?: string): Promise<{ code: number; body: StatusBody }>;
  /** Polls the status URL until the instance is finished (HTTP 200/500) or `timeoutMs` passes. */
  waitDone(id: string, timeoutMs?: number, query?: string): Promise<StatusBody>;
  /** Polls until `predicate` holds for the status body. */
  waitUntil(id: string, predicate: (s: StatusBody) => boolean, timeoutMs?: number): Promise<StatusBody>;
  raise(id: string, event: string, data: unknown): Promise<number>;
  webhook(method: string, pathAndQuery: string, body?: string, contentType?: string): Promise<Response>;
  /** Calls the fixture's clientOps function (DurableClient methods). */
  client(op: string, id?: string, arg?: string, body?: unknown): Promise<{ code: number; body: unknown }>;
  /** Restarts devhost on the same storage (after `devhost.kill()` for a crash). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startDurableApp(
  app = 'test/fixtures/durable-app',
  env: Record<string, string> = {},
): Promise<DurableApp> {
  const location = mkdtempSync(path.join(tmpdir(), 'durable-azurite-'));
  const azurite = await startAzuriteTable(location);
  const launch = (): Promise<RunningDevhost> =>
    startDevhost({ app, env: { AzureWebJobsStorage: azurite.connectionString, ...env } });
  let devhost = await launch();
  const base = (): string => devhost.url;
  const hook = '/runtime/webhooks/durabletask';
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  const status = async (id: string, query = ''): Promise<{ code: number; body: StatusBody }> => {
    const res = await fetch(`${base()}${hook}/instances/${id}${query ? `?${query}` : ''}`);
    const text = await res.text();
    return { code: res.status, body: (text ? JSON.parse(text) : undefined) as StatusBody };
  };

  const result: DurableApp = {
    get url() {
      return base();
    },
    get devhost() {
      return devhost;
    },
    azurite,
    async start(name, input, instanceId) {
      const res = await fetch(`${base()}/api/start/${name}${instanceId ? `/${instanceId}` : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ...(input === undefined ? {} : { body: JSON.stringify(input) }),
      });
      const text = await res.text();
      if (res.status !== 202) throw new Error(`start ${name} answered ${res.status}: ${text}`);
      return JSON.parse(text) as CheckStatus;
    },
    status,
    async waitDone(id, timeoutMs = 20_000, query = '') {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await status(id, query);
        if (s.code === 200 || s.code === 500) return s.body;
        if (Date.now() > deadline) {
          throw new Error(`instance ${id} not finished after ${timeoutMs}ms: ${JSON.stringify(s.body)}`);
        }
        await sleep(50);
      }
    },
    async waitUntil(id, predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await status(id, 'showHistory=true&showHistoryOutput=true');
        if (s.body && predicate(s.body)) return s.body;
        if (Date.now() > deadline) throw new Error(`condition not met for ${id}: ${JSON.stringify(s.body)}`);
        await sleep(50);
      }
    },
    async raise(id, event, data) {
      const res = await fetch(`${base()}${hook}/instances/${id}/raiseEvent/${event}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(data),
      });
      await res.text();
      return res.status;
    },
    webhook(method, pathAndQuery, body, contentType = 'application/json') {
      return fetch(`${base()}${hook}/${pathAndQuery}`, {
        method,
        ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }),
      });
    },
    async client(op, id, arg, body) {
      const parts = [op, id, arg].filter((p) => p !== undefined).join('/');
      const res = await fetch(`${base()}/api/client/${parts}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { code: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
    },
    async restart() {
      await devhost.stop();
      devhost = await launch();
    },
    async stop() {
      await devhost.stop();
      await azurite.stop();
    },
  };
  return result;
}

export const eventTypes = (s: StatusBody): string[] =>
  (s.historyEvents ?? []).map((e) => String(e.EventType));
