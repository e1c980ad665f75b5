/**
 * Starts the compiled devhost (`dist/devhost/cli.js`) as a child process on a free port and waits for
 * its ready line. Tests talk to it over real HTTP. `npm test` builds `dist/` before jest runs; when
 * running jest alone, build first with `npx tsc -p .`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot as findRepoRoot } from '../../cli/localSluice';

/** The repository root (also right when running compiled from `dist/`). */
export const repoRoot = findRepoRoot(__dirname);
export const devhostCli = path.join(repoRoot, 'dist', 'devhost', 'cli.js');

export interface StartDevhostOptions {
  /** App folder: absolute, or relative to the repo root (e.g. `test/fixtures/basic`, or `.` for Sluice). */
  app: string;
  /** Default 0: devhost picks a free port and reports it in its ready line. `null` passes no --port. */
  port?: number | null;
  /** Data folder (`--data-dir`); undefined starts devhost `--in-memory`; `null` passes neither (default folder). */
  dataDir?: string | null;
  /** Start the embedded Azurite and Cosmos emulator (default true); false passes `--no-services`. */
  services?: boolean;
  /** Extra environment variables (on top of this process's environment). */
  env?: Record<string, string | undefined>;
  /** Extra CLI arguments, e.g. `['--keys', 'master=m,default=k']`. */
  args?: string[];
  /** How long to wait for the ready line. Default 60 s (the emulators start first). */
  readyTimeoutMs?: number;
  /** Spawn devhost as the leader of its own process group, so `killGroup()` can kill it with its children. */
  detached?: boolean;
}

export interface RunningDevhost {
  /** `http://localhost:<port>` */
  url: string;
  port: number;
  proc: ChildProcess;
  /** Everything devhost wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the output matches `pattern` (checked against output written so far, too). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then waits for exit; resolves with the exit code (SIGKILL after `timeoutMs`, code null). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL, then waits for exit. */
  kill(): Promise<void>;
  /**
   * SIGKILL to the whole process group (devhost, Azurite, workers) at once, then waits until no process
   * of the group is left. Needs `detached: true`.
   */
  killGroup(): Promise<void>;
  /** Stops collecting output (still drained), for long noisy runs such as benchmarks. */
  discardOutput(): void;
}

const readyLine = /devhost ready: (http:\/\/localhost:(\d+))/;

function ensureBuilt(): void {
  if (!existsSync(devhostCli)) {
    throw new Error(`${devhostCli} is missing: build first with \`npx tsc -p .\` (npm test does this)`);
  }
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

/** Spawns devhost without waiting for readiness (for tests of start-up failures). */
export function spawnDevhost(options: StartDevhostOptions): {
  proc: ChildProcess;
  output: () => string;
  discardOutput: () => void;
} {
  ensureBuilt();
  const app = path.resolve(repoRoot, options.app);
  const args = [devhostCli, '--app', app];
  if (options.port !== null) args.push('--port', String(options.port ?? 0));
  if (typeof options.dataDir === 'string') args.push('--data-dir', options.dataDir);
  else if (options.dataDir === undefined) args.push('--in-memory');
  if (options.services === false) args.push('--no-services');
  args.push(...(options.args ?? []));
  const proc = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let text = '';
  let keep = true;
  const collect = (chunk: string): void => {
    if (keep) text += chunk;
  };
  proc.stdout?.setEncoding('utf8').on('data', collect);
  proc.stderr?.setEncoding('utf8').on('data', collect);
  return {
    proc,
    output: () => text,
    discardOutput: () => {
      keep = false;
    },
  };
}

/** Runs devhost to completion (for start-up failures); resolves with its exit code and output. */
export async function runDevhostToExit(
  options: StartDevhostOptions,
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  const { proc, output } = spawnDevhost(options);
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await exited(proc);
  clearTimeout(timer);
  return { code, output: output() };
}

export async function startDevhost(options: StartDevhostOptions): Promise<RunningDevhost> {
  const { proc, output, discardOutput } = spawnDevhost(options);

  const waitForOutput = (pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const match = output().match(pattern);
        if (match) {
          cleanup();
          resolve(match);
          return true;
        }
        return false;
      };
      const onData = (): void => void check();
      const onExit = (): void => {
        if (check()) return;
        cleanup();
        reject(
          new Error(
            `devhost exited (code ${String(proc.exitCode)}) before printing ${pattern}:\n${output()}`,
          ),
        );
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`devhost did not print ${pattern} within ${timeoutMs}ms:\n${output()}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        proc.stdout?.off('data', onData);
        proc.stderr?.off('data', onData);
        proc.off('exit', onExit);
      };
      if (check()) return;
      // Listeners added after the helper's own ones, so output() already includes the chunk.
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('exit', onExit);
    });

  let match: RegExpMatchArray;
  try {
    match = await waitForOutput(readyLine, options.readyTimeoutMs ?? 60_000);
  } catch (err) {
    proc.kill('SIGKILL');
    await exited(proc);
    throw err;
  }

  const stop = async (timeoutMs = 20_000): Promise<number | null> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    const done = exited(proc);
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const code = await done;
    clearTimeout(timer);
    return code;
  };

  return {
    url: match[1]!,
    port: Number(match[2]),
    proc,
    output,
    waitForOutput,
    stop,
    discardOutput,
    kill: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const done = exited(proc);
      proc.kill('SIGKILL');
      await done;
    },
    killGroup: async () => {
      const pgid = proc.pid!;
      if (!options.detached) throw new Error('killGroup() needs a devhost started with detached: true');
      const done = exited(proc);
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // the group is already gone
      }
      await done;
      // Children die with the same signal, but are reaped by init a moment later.
      for (let i = 0; i < 200 && groupAlive(pgid); i++) await new Promise((r) => setTimeout(r, 25));
    },
  };
}

/** True while any process is left in process group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
