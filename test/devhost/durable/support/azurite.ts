/**
 * Starts Azurite's Table service for a test (child process, loopback, free port, telemetry off). With
 * `location` its data lives in that folder and survives a restart of devhost; otherwise in memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const repoRoot = path.resolve(__dirname, '..', '..', '..', '..');

export interface RunningAzurite {
  port: number;
  connectionString: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startAzuriteTable(location?: string): Promise<RunningAzurite> {
  const port = await freePort();
  const bin = path.join(repoRoot, 'node_modules', 'azurite', 'dist', 'src', 'table', 'main.js');
  const args = [
    bin,
    '--tableHost',
    '127.0.0.1',
    '--tablePort',
    String(port),
    '--disableTelemetry',
    '--skipApiVersionCheck',
  ];
  if (location) args.push('--location', location);
  else args.push('--inMemoryPersistence');
  const proc: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Azurite did not start:\n${out}`)), 30_000);
    const check = (): void => {
      if (/successfully listening|successfully started/i.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited (${String(code)}):\n${out}`));
    });
  });
  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};` +
    `TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`;
  return {
    port,
    connectionString,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    },
  };
}
