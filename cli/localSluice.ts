/**
 * Starts Sluice on devhost as a child process, for the demo and the pipeline benchmark: a free
 * port, its own data folder, a fresh approval signing key, and approval links that point at the
 * port it got. Resolves once devhost prints its ready line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/** The folder with package.json above this file (right from `cli/` and from `dist/cli/`). */
export function repoRoot(start = __dirname): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

/**
 * The URL of the devhost serving from `dataDir` (default: `npm start`'s `.sluice/`, whatever port
 * it was given), from the `devhost.json` it keeps there while it runs; undefined when there is
 * none or its process is gone.
 */
export function runningDevhostUrl(dataDir = path.join(repoRoot(), '.sluice')): string | undefined {
  try {
    const { url, pid } = JSON.parse(readFileSync(path.join(dataDir, 'devhost.json'), 'utf8')) as {
      url?: unknown;
      pid?: unknown;
    };
    if (typeof url !== 'string' || typeof pid !== 'number') return undefined;
    process.kill(pid, 0); // throws when the process is gone
    return url;
  } catch {
    return undefined;
  }
}

/** A TCP port that was free a moment ago on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface LocalSluice {
  url: string;
  dataDir: string;
  logFile: string;
  proc: ChildProcess;
  /** The last `n` characters devhost wrote. */
  tail(n?: number): string;
  /** SIGTERM and wait (SIGKILL after 20 s). */
  stop(): Promise<void>;
}

export async function startLocalSluice(options: {
  dataDir: string;
  env?: Record<string, string>;
  /** Extra devhost CLI arguments, e.g. `['--cosmos-port', '8081']`. */
  args?: string[];
  readyTimeoutMs?: number;
}): Promise<LocalSluice> {
  const root = repoRoot();
  const cli = path.join(root, 'dist', 'devhost', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  const port = await freePort();
  const url = `http://localhost:${port}`;
  const kid = 'demo';
  const proc = spawn(
    process.execPath,
    [cli, '--app', root, '--port', String(port), '--data-dir', options.dataDir, ...(options.args ?? [])],
    {
      cwd: root,
      env: {
        ...process.env,
        PUBLIC_BASE_URL: url,
        DURABLE_TASK_HUB: 'SluiceDemo',
        NOTIFIER: 'outbox',
        APPROVAL_ACTIVE_KEY_ID: kid,
        APPROVAL_SIGNING_KEYS: JSON.stringify({ [kid]: randomBytes(32).toString('base64') }),
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logFile = path.join(options.dataDir, 'devhost.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  let text = '';
  const collect = (chunk: string) => {
    text = (text + chunk).slice(-200_000);
    log.write(chunk);
  };
  proc.stdout!.setEncoding('utf8').on('data', collect);
  proc.stderr!.setEncoding('utf8').on('data', collect);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(
        new Error(
          `devhost did not start within ${options.readyTimeoutMs ?? 120_000} ms:\n${text.slice(-3000)}`,
        ),
      );
    }, options.readyTimeoutMs ?? 120_000);
    const check = () => {
      if (/devhost ready: http/.test(text)) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`devhost exited (code ${code}) before it was ready:\n${text.slice(-3000)}`));
    });
  });

  return {
    url,
    dataDir: options.dataDir,
    logFile,
    proc,
    tail: (n = 3000) => text.slice(-n),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      await new Promise((r) => log.end(r));
    },
  };
}
