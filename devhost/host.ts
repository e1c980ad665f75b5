/**
 * devhost composition (durable-host-spec §11): HTTP port → embedded services → environment → app →
 * Durable engine → HTTP routes → timers. The port is bound first so a busy port fails fast, before the
 * emulators start; requests get 503 until the app is loaded.
 */
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { DurableEngine, EmbeddedServices, EmbeddedServicesOptions, Logger } from './contracts';
import type * as DurableModule from './durable/index';
import type * as ServicesModule from './services/index';
import { installCoreModuleShim, type ProgrammingModelLike } from './app/coreShim';
import { createInvoker } from './app/invoker';
import { listenOnLoopbackDuring, loopbackUri } from './app/loopbackListen';
import { loadEntryPoints } from './app/loader';
import { childLogger, createConsoleLogger } from './app/logger';
import { createRegistry, type HostedFunction, type HostRegistry } from './app/registry';
import {
  applySettings,
  functionTimeoutOf,
  hubNameOf,
  readHostJson,
  readLocalSettings,
  routePrefixOf,
} from './app/settings';
import { DevhostClock, describeOffset } from './clock/clock';
import { defaultBufferedBodyBudgetBytes } from './http/bodyBudget';
import { lockDataDir } from './services/lock';
import { parseKeys, type HostKeys } from './http/keys';
import { createHttpFront, defaultMaxRequestBodyBytes, type HttpFront } from './http/server';
import { sendNotReady, startupParts, type StartupPart } from './http/notReady';
import { startTimers, validateTimerFunctions, type TimerScheduler } from './timers/scheduler';

export interface HostOptions {
  /** The Functions app folder (has package.json with a `main` glob, host.json, local.settings.json). */
  appDir: string;
  /** Port of the HTTP front; 0 picks a free one. Default `Host.LocalHttpPort` or 7071. */
  port?: number;
  /**
   * Address to listen on (`--host`). Default `127.0.0.1`: loopback only (also `::1` when the machine has
   * IPv6). `0.0.0.0`/`::` or another address exposes devhost; loopback is always served too.
   */
  host?: string;
  /** Folder for local state (emulator data, timer status). `null` keeps everything in memory. */
  dataDir?: string | null;
  /** Key spec (see `parseKeys`); default the `DEVHOST_KEYS` setting; none ⇒ keys are not enforced. */
  keys?: string;
  log?: Logger;
  /** Start Azurite and the Cosmos emulator (default true). Without them Durable needs AzureWebJobsStorage. */
  services?: boolean;
  /** Fixed ports for the embedded services; 0 or absent picks free ones. */
  servicePorts?: EmbeddedServicesOptions['ports'];
  /** How long shutdown waits for in-flight invocations before abandoning them. */
  shutdownTimeoutMs?: number;
  /**
   * Start devhost's clock ahead of the wall clock (a test facility, `--clock-offset`): a duration
   * (`3h`, `90m`, `1.00:00:00`) or an ISO instant. Default the `DEVHOST_CLOCK` setting; none = no offset
   * (or the one the data folder keeps).
   */
  clockOffset?: string;
}

export interface RunningHost {
  port: number;
  url: string;
  /** devhost's movable clock (also at `/admin/host/clock`). */
  clock: DevhostClock;
  registry: HostRegistry;
  keys: HostKeys | undefined;
  /** Graceful stop; safe to call twice. */
  stop(): Promise<void>;
}

/** The HTTP port is taken; the message names the port and the flag that changes it. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(
      `Port ${port} is already in use: stop the other process or start devhost with --port <N> (--port 0 picks a free port)`,
    );
    this.name = 'PortInUseError';
  }
}

/*
 * The services and the Durable engine are required on demand: they pull in the Azure SDKs and the
 * emulators (about half a second of loading) that apps without storage or Durable functions never need.
 */
function loadServices(): typeof ServicesModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./services/index') as typeof ServicesModule;
}

function loadDurable(): typeof DurableModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./durable/index') as typeof DurableModule;
}

function listen(server: Server, port: number, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? new PortInUseError(port) : err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, address);
  });
}

/** The default `--host`: loopback only, so no other machine (and no cross-site form) reaches a keyless devhost. */
export const defaultListenHost = '127.0.0.1';

export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return a === 'localhost' || a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

/**
 * The addresses to bind for `--host`: the first is required; loopback is always added so the app's own
 * Durable client (`rpcBaseUrl` on 127.0.0.1) and `http://localhost:<port>` keep working, and `::1` is
 * best-effort (clients whose `localhost` resolves to IPv6 first).
 */
export function listenAddresses(host: string): { address: string; required: boolean }[] {
  const h = host.toLowerCase();
  if (h === '::') return [{ address: '::', required: true }]; // dual-stack: IPv4 loopback included
  // These already include 127.0.0.1, where the app's own Durable client calls.
  if (h === '127.0.0.1' || h === 'localhost' || h === '::1' || h === '0.0.0.0') {
    return [
      { address: h === '0.0.0.0' ? h : '127.0.0.1', required: true },
      { address: '::1', required: false },
    ];
  }
  return [
    { address: host, required: true },
    { address: '127.0.0.1', required: true },
    { address: '::1', required: false },
  ];
}

export async function startHost(options: HostOptions): Promise<RunningHost> {
  const log = options.log ?? createConsoleLogger();
  const appDir = path.resolve(options.appDir);
  if (!existsSync(appDir) || !statSync(appDir).isDirectory()) {
    throw new Error(`App folder ${appDir} does not exist (--app)`);
  }
  // Before anything can load @azure/functions: the library decides once whether a host is present.
  const capture = installCoreModuleShim();
  capture.systemLog = (level, category, message) => {
    if (level === 'error' || level === 'critical') log.error(`(${category}) ${message}`);
    else if (level === 'warning') log.warn(`(${category}) ${message}`);
    else log.debug(`(${category}) ${message}`);
  };

  const localSettings = readLocalSettings(appDir);
  const requestedPort = options.port ?? localSettings.localHttpPort ?? 7071;

  let front: HttpFront | undefined;
  // What start-up still has to do; requests before the front is ready are told (problem JSON).
  let remaining: StartupPart[] = [...startupParts];
  const done = (part: StartupPart) => (remaining = remaining.filter((p) => p !== part));
  const servers: Server[] = [];
  const newServer = (): Server => {
    const server = createServer((req, res) => {
      if (front) front.handle(req, res);
      else sendNotReady(res, remaining);
    });
    server.keepAliveTimeout = 5_000;
    return server;
  };
  const closeServers = (): Promise<void> =>
    Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(
      () => undefined,
    );
  const listenHost = options.host ?? defaultListenHost;
  let port = requestedPort;
  for (const { address, required } of listenAddresses(listenHost)) {
    const server = newServer();
    try {
      port = await listen(server, port, address);
      servers.push(server);
    } catch (err) {
      if (required) {
        await closeServers();
        throw err;
      }
      log.debug(`not listening on ${address}: ${(err as Error).message}`);
    }
  }
  const origin = `http://localhost:${port}`;

  let services: EmbeddedServices | undefined;
  let engine: DurableEngine | undefined;
  let timers: TimerScheduler | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  let unlockDataDir: (() => Promise<void>) | undefined;
  const abort = async (): Promise<void> => {
    timers?.stop();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await closeServers();
  };

  try {
    const dataDir = options.dataDir === undefined ? path.join(appDir, '.sluice') : options.dataDir;
    if (dataDir !== null) {
      mkdirSync(dataDir, { recursive: true });
      // One devhost per data folder, with or without the embedded services: the task-hub file and the
      // timer status live there too. Released last (cleanups run in reverse; stop ends with it).
      unlockDataDir = await lockDataDir(dataDir);
      cleanups.push(unlockDataDir);
    }

    // The movable clock (a test facility): read before anything time-stamps, kept in the data folder.
    const clock = DevhostClock.open({ dataDir, setting: options.clockOffset ?? process.env.DEVHOST_CLOCK });
    if (clock.offsetMs > 0)
      log.info(
        `devhost's clock is ${describeOffset(clock.offsetMs)} ahead of the wall clock: now is ${new Date(clock.now()).toISOString()} (a test facility; POST /admin/host/clock moves it)`,
      );

    // Environment precedence: variables already set > embedded services > local.settings.json Values.
    process.env.WEBSITE_HOSTNAME ??= `localhost:${port}`;
    process.env.FUNCTIONS_WORKER_RUNTIME ??= 'node';
    if (options.services !== false) {
      services = await loadServices().startServices({
        dataDir,
        ports: options.servicePorts,
        log: childLogger(log, '[services]'),
        dataDirLocked: dataDir !== null,
      });
      const started = services;
      cleanups.push(() => started.stop());
      const shadowed = applySettings(services.env);
      for (const name of shadowed) {
        log.warn(`${name} is set in the environment; the embedded service value is not used`);
      }
    }
    done('services');
    applySettings(localSettings.values);

    const hostJson = readHostJson(appDir);
    const keys = parseKeys(options.keys ?? process.env.DEVHOST_KEYS);
    const invoker = createInvoker({ capture, log, functionTimeoutMs: functionTimeoutOf(hostJson) });

    await loadEntryPoints(appDir);
    const registry = createRegistry(capture.registrations);
    validateTimerFunctions(registry.byKind('timer'));
    await invoker.runAppStartHooks(appDir);
    cleanups.push(() => invoker.runAppTerminateHooks(appDir));
    // As the worker does after loading: lets the library lock app.setup() and report capabilities.
    const models = new Set<ProgrammingModelLike>();
    for (const fn of registry.all()) if (fn.programmingModel) models.add(fn.programmingModel);
    for (const model of models) {
      // The library starts its streaming proxy here; keep it off the network like devhost itself.
      const capabilities = (await listenOnLoopbackDuring(async () => model.getCapabilities?.({}))) ?? {};
      if (capabilities.HttpUri) {
        const proxy = loopbackUri(capabilities.HttpUri);
        invoker.enableHttpStream(model, proxy);
        log.info(`HTTP streaming: the library's proxy listens on ${proxy}`);
      }
    }

    done('functions');
    const front_ = createHttpFront({
      registry,
      invoker,
      routePrefix: routePrefixOf(hostJson),
      keys,
      maxRequestBodyBytes:
        Number(process.env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT) || defaultMaxRequestBodyBytes,
      bufferedBodyBudgetBytes:
        Number(process.env.DEVHOST_BUFFERED_BODY_BUDGET) || defaultBufferedBodyBudgetBytes,
      cors: { origins: localSettings.cors, credentials: localSettings.corsCredentials },
      clock,
      log,
    });

    const durable = registry
      .all()
      .some((fn) => fn.kind !== 'http' && fn.kind !== 'timer' && fn.kind !== 'other');
    const needsEngine = durable || registry.all().some((fn) => fn.durableClientBindingName !== undefined);
    if (needsEngine) {
      // The task hub lives in devhost's own SQLite file. An older devhost's hub is imported (and its
      // table dropped) only from the embedded Azurite: never from an account AzureWebJobsStorage names.
      const storageConnectionString = services?.storageConnectionString;
      engine = await loadDurable().createDurableEngine({
        registry,
        invoke: invoker.invoke,
        hubName: resolveHubName(hostJson, log),
        hostJson,
        dataDir,
        ...(storageConnectionString ? { storageConnectionString } : {}),
        baseUrl: origin,
        ...(keys ? { keys } : {}),
        clock,
        log: childLogger(log, '[durable]'),
      });
      const started = engine;
      invoker.setClientBindingDataSource(() => started.clientBindingData());
      front_.addExtension(started);
      await started.start();
      cleanups.push(() => started.stop());
    }

    done('durable');
    front = front_;
    front.setReady(true);
    timers = startTimers({
      functions: registry.byKind('timer'),
      invoke: invoker.invoke,
      log,
      statusDir: dataDir === null ? null : path.join(dataDir, 'timers'),
      clock,
    });

    printBanner(
      log,
      origin,
      front,
      timers,
      registry.all().filter((fn) => fn.kind !== 'http' && fn.kind !== 'timer'),
      keys,
    );
    const bound = servers.map((s) => formatAddress(s.address() as AddressInfo));
    log.info(`Listening on ${bound.join(', ')}`);
    if (!keys && !listenAddresses(listenHost).every(({ address }) => isLoopback(address))) {
      log.warn(
        `devhost listens beyond loopback (--host ${listenHost}) without keys: anyone who can reach this machine can call every function and the Durable HTTP API. Start with --keys to require keys.`,
      );
    }
    // Where this devhost serves, for tools that look for a running one in its data folder (the
    // demo): written once ready, removed when it stops, and ignored when its pid is gone.
    const urlFile = dataDir === null ? undefined : path.join(dataDir, RUNNING_FILE);
    if (urlFile) writeFileSync(urlFile, `${JSON.stringify({ url: origin, pid: process.pid })}\n`);
    log.info(`devhost ready: ${origin}`);

    let stopping: Promise<void> | undefined;
    const shutdownTimeout = options.shutdownTimeoutMs ?? 10_000;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        log.info('devhost stopping');
        timers?.stop();
        front?.setReady(false);
        if (urlFile) rmSync(urlFile, { force: true });
        const closed = closeServers();
        for (const server of servers) server.closeIdleConnections();
        if (engine)
          await engine
            .stop()
            .catch((err: unknown) => log.error(`Durable engine stop failed: ${String(err)}`));
        if (!(await invoker.drain(shutdownTimeout))) {
          log.warn(`abandoned ${invoker.inFlight()} invocation(s) still running after ${shutdownTimeout}ms`);
        }
        await invoker
          .runAppTerminateHooks(appDir)
          .catch((err: unknown) => log.error(`appTerminate hook failed: ${String(err)}`));
        if (services)
          await services
            .stop()
            .catch((err: unknown) => log.error(`stopping services failed: ${String(err)}`));
        for (const server of servers) server.closeAllConnections();
        await closed;
        await unlockDataDir?.().catch((err: unknown) =>
          log.error(`releasing services.lock failed: ${String(err)}`),
        );
        log.info('devhost stopped');
      })());
    return { port, url: origin, registry, keys, clock, stop };
  } catch (err) {
    await abort();
    throw err;
  }
}

/** In the data folder while a devhost serves from it: `{"url": "http://localhost:7071", "pid": 123}`. */
export const RUNNING_FILE = 'devhost.json';

const formatAddress = (a: AddressInfo): string =>
  a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;

/** The task hub name; a `%SETTING%` that is not set falls back to the default, with a warning. */
function resolveHubName(hostJson: Record<string, unknown>, log: Logger): string {
  try {
    return hubNameOf(hostJson);
  } catch (err) {
    const fallback = hubNameOf({});
    log.warn(`${(err as Error).message}; using the task hub name '${fallback}'`);
    return fallback;
  }
}

function printBanner(
  log: Logger,
  origin: string,
  front: HttpFront,
  timers: TimerScheduler,
  others: HostedFunction[],
  keys: HostKeys | undefined,
): void {
  const lines: string[] = ['Functions:'];
  const routes = front.routes().sort((a, b) => a.fn.name.localeCompare(b.fn.name));
  for (const route of routes) {
    const methods = route.methods.length > 0 ? route.methods.join(',') : 'ANY';
    lines.push(`  ${route.fn.name}: [${methods}] ${origin}${route.displayPath} (auth: ${route.authLevel})`);
  }
  for (const { name, schedule, nextRun } of timers.schedules()) {
    const next = nextRun ? `, next ${nextRun.toISOString()}` : '';
    lines.push(`  ${name}: timerTrigger '${schedule.expression}' (${schedule.timeZone}${next})`);
  }
  for (const fn of others) lines.push(`  ${fn.name}: ${fn.triggerBinding.type}`);
  log.info(lines.join('\n'));
  if (keys) {
    const entries = [
      `master=${keys.master}`,
      ...[...keys.functionKeys].map(([name, value]) => `${name}=${value}`),
      ...[...keys.systemKeys].map(([name, value]) => `${name}=${value}`),
    ];
    log.info(`Keys (send as x-functions-key header or ?code=): ${entries.join(' ')}`);
  } else {
    log.info('Keys: not enforced (start with --keys or set DEVHOST_KEYS to require them)');
  }
}
