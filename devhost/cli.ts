#!/usr/bin/env node
/**
 * `devhost --app DIR [--port N] [--host ADDR] [--data-dir DIR | --in-memory] [--keys SPEC] [--no-services] ...`
 * Runs an Azure Functions Node.js v4 app folder locally. Exit codes: 0 after a graceful stop
 * (SIGINT/SIGTERM), 1 when the app cannot start (load error, busy port, bad configuration), 2 for bad flags.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AppLoadError } from './app/loader';
import { parseClockSetting } from './clock/clock';
import { createConsoleLogger } from './app/logger';
import { startHost, type RunningHost } from './host';

const usage = `Usage: devhost [--app DIR] [--port N] [--host ADDR] [--data-dir DIR | --in-memory] [--keys SPEC] [options]

  --app DIR        Functions app folder (package.json "main" glob, host.json). Default: .
  --port N         HTTP port. Default: local.settings.json Host.LocalHttpPort, else 7071. 0 = any free port.
  --host ADDR      Address to listen on. Default: 127.0.0.1 (loopback only; ::1 too). 0.0.0.0, :: or an
                   address of this machine exposes devhost to the network (use --keys then).
  --data-dir DIR   Local state (emulator data, timer status). Default: <app>/.sluice
  --in-memory      Keep all state in memory (nothing written to disk).
  --keys SPEC      Require keys for function/admin auth levels. SPEC: "master=M,name=K", a bare key
                   (function key "default"), or "generate". Default: the DEVHOST_KEYS setting; none = open.
  --blob-port N, --queue-port N, --table-port N, --cosmos-port N
                   Ports of the embedded Azurite services and Cosmos DB emulator. Default: free ports.
  --no-services    Do not start Azurite and the Cosmos emulator (for apps that need neither).
  --clock-offset T Test facility: start devhost's clock ahead of the wall clock, by a duration (3h, 90m,
                   1h30m, 1.00:00:00) or to an ISO instant (2027-01-04T09:00:00Z). Default: DEVHOST_CLOCK.
                   The clock only moves forward; POST /admin/host/clock {"advanceBy": "3h"} moves it.
  --verbose        Debug logging.
`;

function fail(message: string, code: number): never {
  process.stderr.write(`devhost: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        app: { type: 'string', default: '.' },
        port: { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
        'in-memory': { type: 'boolean', default: false },
        keys: { type: 'string' },
        'blob-port': { type: 'string' },
        'queue-port': { type: 'string' },
        'table-port': { type: 'string' },
        'cosmos-port': { type: 'string' },
        'no-services': { type: 'boolean', default: false },
        'clock-offset': { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n\n${usage}`, 2);
  }
  if (values.help) {
    process.stdout.write(usage);
    return;
  }
  const portFlag = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) > 65535)
      fail(`--${flag} must be a port number (0-65535), got '${value}'`, 2);
    return Number(value);
  };
  const port = portFlag('port', values.port);
  const servicePorts = {
    blob: portFlag('blob-port', values['blob-port']),
    queue: portFlag('queue-port', values['queue-port']),
    table: portFlag('table-port', values['table-port']),
    cosmos: portFlag('cosmos-port', values['cosmos-port']),
  };
  const listenHost = values.host;
  if (listenHost !== undefined && listenHost !== 'localhost' && isIP(listenHost) === 0)
    fail(`--host must be an IP address (127.0.0.1, 0.0.0.0, ::) or localhost, got '${listenHost}'`, 2);
  if (values['clock-offset'] !== undefined) {
    try {
      parseClockSetting(values['clock-offset'], '--clock-offset');
    } catch (err) {
      fail((err as Error).message, 2);
    }
  }
  if (values['in-memory'] && values['data-dir'] !== undefined)
    fail('use either --data-dir or --in-memory, not both', 2);

  const log = createConsoleLogger(values.verbose ? 'debug' : 'info');
  process.on('unhandledRejection', (reason) => {
    const error = reason instanceof Error ? reason : new Error(String(reason));
    log.error(`unhandled promise rejection in the app: ${error.stack ?? error.message}`);
  });
  process.on('uncaughtException', (error) => {
    log.error(`uncaught exception in the app: ${error.stack ?? error.message}`);
  });

  let host: RunningHost | undefined;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      process.stderr.write(`devhost: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    signalled = true;
    log.info(`${signal} received`);
    if (!host) return; // startup finishes first, then stops (below)
    host.stop().then(
      () => process.exit(0),
      (err: unknown) => fail(`shutdown failed: ${String(err)}`, 1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    host = await startHost({
      appDir: path.resolve(values.app),
      port,
      ...(listenHost === undefined ? {} : { host: listenHost }),
      dataDir: values['in-memory']
        ? null
        : values['data-dir'] === undefined
          ? undefined
          : path.resolve(values['data-dir']),
      keys: values.keys,
      services: !values['no-services'],
      servicePorts,
      ...(values['clock-offset'] === undefined ? {} : { clockOffset: values['clock-offset'] }),
      log,
    });
  } catch (err) {
    if (err instanceof AppLoadError) fail(`failed to load the app: ${err.file}\n${err.message}`, 1);
    const error = err instanceof Error ? err : new Error(String(err));
    // Configuration problems read best as their message; the stack helps only when debugging devhost.
    const detail = values.verbose ? (error.stack ?? error.message) : error.message;
    fail(error.name === 'PortInUseError' ? error.message : `failed to start: ${detail}`, 1);
  }
  if (signalled) {
    await host.stop();
    process.exit(0);
  }
}

void main();
