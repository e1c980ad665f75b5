import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '../contracts';
import { PortInUseError, type ServiceName } from './ports';
import { AZURITE_ACCOUNT, LOOPBACK, azuriteConnectionString, type StorageEndpoints } from './wellKnown';

export interface AzuriteOptions {
  /** Folder for Azurite's data; `null` runs it with `--inMemoryPersistence`. */
  location: string | null;
  ports?: { blob?: number; queue?: number; table?: number };
  log: Logger;
  /** How long to wait for all three services to answer. */
  startTimeoutMs?: number;
}

export interface AzuriteHandle {
  ports: { blob: number; queue: number; table: number };
  /** Service endpoints with the account in the path, as clients expect for Azurite. */
  endpoints: StorageEndpoints;
  connectionString: string;
  pid: number;
  /** Graceful stop (Azurite flushes its database on SIGTERM); SIGKILL after a bound. */
  stop(): Promise<void>;
}

type StorageService = Exclude<ServiceName, 'cosmos'>;
const serviceByLabel: Record<string, StorageService> = { Blob: 'blob', Queue: 'queue', Table: 'table' };

/**
 * Preloaded into the Azurite child: when devhost dies without stopping it (SIGKILL, crash), the IPC
 * channel closes and Azurite shuts itself down instead of lingering with the ports. On a normal
 * SIGTERM the channel is released so the child exits once Azurite has closed its servers. Once
 * devhost is dead its stdout/stderr pipes are broken: Azurite's "closing..." log line would raise
 * EPIPE and kill it before it saves its database, losing the last writes (the Durable task hub).
 */
const PARENT_GUARD =
  'data:text/javascript,' +
  'process.once("disconnect",()=>process.kill(process.pid,"SIGTERM"));' +
  'process.once("SIGTERM",()=>process.channel&&process.channel.unref());' +
  'process.stdout.on("error",()=>{});process.stderr.on("error",()=>{})';

/**
 * Preloaded into an Azurite child that keeps its data on disk. Azurite holds its metadata (which
 * blobs, containers, blocks, table entities and queue messages exist) in LokiJS databases that it
 * writes to disk every 5 s, so a kill of the whole process group within 5 s of an acknowledged write
 * used to lose it. This hook saves every LokiJS database with unsaved changes before the first byte of
 * the answer to a successful write (any method but GET/HEAD/OPTIONS, status 2xx) is sent: once a
 * client has its 2xx, the write is in the metadata file. LokiJS's own throttling coalesces concurrent
 * saves (a save asked for during a save runs once more after it), and its file adapter writes a
 * temporary file and renames it, so a kill during a save leaves the previous file whole. A save that
 * fails destroys the connection instead of answering 2xx.
 */
const SAVE_BEFORE_ANSWER = `
import { createRequire } from 'node:module';
import { ServerResponse } from 'node:http';
const Loki = createRequire(process.argv[1])('lokijs');
const databases = new Set();
const configure = Loki.prototype.configureOptions;
Loki.prototype.configureOptions = function (...args) {
  const result = configure.apply(this, args);
  if (this.persistenceMethod === 'fs') databases.add(this);
  return result;
};
const save = (db) => new Promise((resolve, reject) => db.saveDatabase((err) => (err ? reject(err) : resolve())));
const saveUnsaved = () =>
  Promise.all([...databases].filter((db) => db.throttledSavePending || db.autosaveDirty()).map(save));
const gated = Symbol('devhost.savedBeforeAnswer');
const { write, end } = ServerResponse.prototype;
function after(res, send) {
  if (res[gated] === undefined) {
    const method = res.req && res.req.method;
    const isWrite = method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
    res[gated] = isWrite && res.statusCode >= 200 && res.statusCode < 300
      ? saveUnsaved().catch((err) => {
          process.stderr.write('devhost: Azurite could not save its metadata: ' + String(err) + '\\n');
          res.destroy(err);
          throw err;
        })
      : null;
  }
  if (res[gated] === null) return false;
  res[gated] = res[gated].then(send);
  res[gated].catch(() => undefined);
  return true;
}
ServerResponse.prototype.write = function (...args) {
  return after(this, () => write.apply(this, args)) || write.apply(this, args);
};
ServerResponse.prototype.end = function (...args) {
  return after(this, () => end.apply(this, args)) ? this : end.apply(this, args);
};
`;

async function azuriteBin(): Promise<string> {
  const pkgPath = require.resolve('azurite/package.json');
  const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as { bin: Record<string, string> };
  const bin = pkg.bin.azurite;
  if (!bin) throw new Error(`azurite package at ${dirname(pkgPath)} has no "azurite" bin`);
  return join(dirname(pkgPath), bin);
}

/** Azurite's own arguments; the order of the service ports matches its startup order. */
function azuriteArgs(location: string | null, ports: Record<StorageService, number>): string[] {
  const args = [
    '--blobHost', LOOPBACK, '--blobPort', String(ports.blob),
    '--queueHost', LOOPBACK, '--queuePort', String(ports.queue),
    '--tableHost', LOOPBACK, '--tablePort', String(ports.table),
    '--disableTelemetry', '--skipApiVersionCheck', '--loose', '--silent',
  ]; // prettier-ignore
  if (location === null) args.push('--inMemoryPersistence');
  else args.push('--location', location);
  return args;
}

/** True once any HTTP answer arrives (Azurite answers an unauthenticated GET with 4xx: that is fine). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: LOOPBACK, port, path: `/${AZURITE_ACCOUNT}?comp=list`, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts Azurite (Blob, Queue, Table) as a child process and resolves when every service answers. */
export async function startAzurite(opts: AzuriteOptions): Promise<AzuriteHandle> {
  const requested: Record<StorageService, number> = {
    blob: opts.ports?.blob ?? 0,
    queue: opts.ports?.queue ?? 0,
    table: opts.ports?.table ?? 0,
  };
  if (opts.location !== null) await mkdir(opts.location, { recursive: true });
  const bin = await azuriteBin();
  // In memory, Azurite still resolves a workspace folder (cwd by default): keep it out of the project.
  const cwd = opts.location ?? tmpdir();
  const child = spawn(
    process.execPath,
    [
      '--import',
      PARENT_GUARD,
      ...(opts.location === null
        ? []
        : ['--import', `data:text/javascript,${encodeURIComponent(SAVE_BEFORE_ANSWER)}`]),
      bin,
      ...azuriteArgs(opts.location, requested),
    ],
    {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn Azurite (${process.execPath} ${bin})`);

  const bound: Partial<Record<StorageService, number>> = {};
  const recent: string[] = [];
  let starting: StorageService | undefined;
  let failure: Error | undefined;
  const onLine = (line: string, stream: 'stdout' | 'stderr') => {
    if (!line.trim()) return;
    recent.push(line);
    if (recent.length > 20) recent.shift();
    opts.log.debug(`azurite: ${line}`, { stream });
    const startingMatch = /Azurite (Blob|Queue|Table) service is starting/.exec(line);
    if (startingMatch?.[1]) starting = serviceByLabel[startingMatch[1]];
    const listening = /Azurite (Blob|Queue|Table) service is successfully listening at \S+:(\d+)/.exec(line);
    if (listening?.[1] && listening[2]) {
      const service = serviceByLabel[listening[1]];
      if (service) bound[service] = Number(listening[2]);
    }
    const inUse = /EADDRINUSE.*?:(\d+)\s*$/.exec(line);
    if (inUse?.[1]) {
      const port = Number(inUse[1]);
      const service =
        (Object.keys(requested) as StorageService[]).find((s) => requested[s] === port) ?? starting ?? 'blob';
      failure = new PortInUseError(service, port);
    }
  };
  lines(child, 'stdout', onLine);
  lines(child, 'stderr', onLine);

  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      if (!failure && code !== 0) {
        failure = new Error(
          `Azurite exited during start (code ${code ?? 'none'}, signal ${signal ?? 'none'}):\n${recent.join('\n')}`,
        );
      }
      resolve();
    });
  });
  child.once('error', (err) => {
    failure ??= err;
  });

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([
      exitPromise.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 15_000))),
    ]);
    clearTimeout(timer);
    if (!graceful) {
      opts.log.warn('Azurite did not stop within 15 s; killing it', { pid });
      child.kill('SIGKILL');
      await exitPromise;
    }
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  try {
    for (;;) {
      if (failure) throw failure;
      if (exited) throw new Error(`Azurite exited during start:\n${recent.join('\n')}`);
      if (Date.now() > deadline) {
        throw new Error(
          `Azurite did not answer within ${opts.startTimeoutMs ?? 60_000} ms:\n${recent.join('\n')}`,
        );
      }
      const { blob, queue, table } = bound;
      if (blob && queue && table) {
        const ok = await Promise.all([answers(blob), answers(queue), answers(table)]);
        if (ok.every(Boolean)) {
          const ports = { blob, queue, table };
          const endpoints: StorageEndpoints = {
            blob: `http://${LOOPBACK}:${blob}/${AZURITE_ACCOUNT}`,
            queue: `http://${LOOPBACK}:${queue}/${AZURITE_ACCOUNT}`,
            table: `http://${LOOPBACK}:${table}/${AZURITE_ACCOUNT}`,
          };
          opts.log.info('Azurite is ready', { ...ports, pid, location: opts.location ?? 'in memory' });
          return { ports, endpoints, connectionString: azuriteConnectionString(endpoints), pid, stop };
        }
      }
      await Promise.race([delay(50), exitPromise]);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

function lines(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  onLine: (line: string, s: typeof stream) => void,
) {
  let buffered = '';
  child[stream]?.setEncoding('utf8');
  child[stream]?.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, nl), stream);
      buffered = buffered.slice(nl + 1);
    }
  });
  child[stream]?.on('end', () => {
    if (buffered) onLine(buffered, stream);
  });
}
