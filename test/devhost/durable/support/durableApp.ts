/**
 * A devhost hosting a Durable fixture app, over real HTTP. With `persistent`, devhost keeps its
 * emulator data in a temporary data folder, so a test can SIGKILL it and restart on the same folder.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDevhost, type RunningDevhost } from '../../../support/devhost';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
  /** The data folder (persistent apps only). */
  dataDir: string | undefined;
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

/** True while a process (the Azurite child of a killed devhost, still flushing) uses `dir`. */
function processUsing(dir: string): boolean {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) return true;
    } catch {
      // the process ended meanwhile
    }
  }
  return false;
}

export async function startDurableApp(
  options: { app?: string; persistent?: boolean; env?: Record<string, string>; detached?: boolean } = {},
): Promise<DurableApp> {
  const app = options.app ?? 'test/fixtures/durable-app';
  const dataDir = options.persistent ? mkdtempSync(path.join(tmpdir(), 'durable-data-')) : undefined;
  const launch = async (): Promise<RunningDevhost> => {
    // After a SIGKILL, devhost's Azurite child shuts itself down and flushes; wait for it to let go.
    for (let i = 0; dataDir && processUsing(dataDir) && i < 300; i++) await sleep(100);
    return startDevhost({
      app,
      ...(dataDir ? { dataDir } : {}),
      env: options.env ?? {},
      ...(options.detached ? { detached: true } : {}),
    });
  };
  let devhost = await launch();
  const base = (): string => devhost.url;
  const hook = '/runtime/webhooks/durabletask';

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
    dataDir,
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
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return result;
}

export const eventTypes = (s: StatusBody): string[] =>
  (s.historyEvents ?? []).map((e) => String(e.EventType));
