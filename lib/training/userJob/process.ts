import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, constants, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { NonRetriableError } from '../../errors';

/**
 * Runs one process of a user job: argv without a shell, in its own process group (so a time limit
 * or a cancel stops everything it started), stdout and stderr appended to a log file and kept as a
 * tail of lines. When the job's own process ends, whatever it left running in its group is killed.
 */

export interface JobProcessOptions {
  argv: readonly string[];
  cwd: string;
  env: Record<string, string>;
  logFile: string;
  timeLimitMs: number;
  /** Each complete line of output as it arrives (progress display, live log). */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  /** After SIGTERM, how long the group has before SIGKILL. Default 5 s. */
  killGraceMs?: number;
  /**
   * Called once the process started, with its pid (= its process group id). A supervisor that may
   * itself be killed hands it to its own parent, which can then stop the group (worker/userJob.ts).
   */
  onStart?: (pid: number) => void;
  /** Lines kept for the failure message. Default 50. */
  tailLines?: number;
  /** The log file stops growing past this (the tail still follows). Default 64 MiB. */
  maxLogBytes?: number;
}

export interface JobProcessResult {
  exitCode: number | null;
  /** The signal that ended the process, when one did. */
  signal: NodeJS.Signals | null;
  /** Set when Sluice ended it: the time limit passed, or the caller canceled. */
  stoppedBy?: 'time_limit' | 'canceled';
  durationMs: number;
  logTail: string[];
  logBytes: number;
}

const MAX_LINE_CHARS = 2_000;

/** The executable argv[0] names: a path (relative to `cwd`) when it has a slash, else looked up on PATH. */
export async function resolveExecutable(
  name: string,
  cwd: string,
  pathVar: string | undefined,
): Promise<string> {
  if (name.includes('/')) {
    const file = isAbsolute(name) ? name : resolve(cwd, name);
    if (!(await isFile(file)))
      throw new NonRetriableError(
        'command_not_found',
        `${name} not found${isAbsolute(name) ? '' : ' in the code folder'}`,
      );
    if (!(await executable(file)))
      throw new NonRetriableError('command_not_executable', `${name} is not executable (chmod +x it)`);
    return file;
  }
  for (const dir of (pathVar ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    if ((await isFile(file)) && (await executable(file))) return file;
  }
  throw new NonRetriableError('command_not_found', `${name} not found on PATH`);
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function executable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs the process to its end; resolves with how it ended (a non-zero exit is not an error here). */
export async function runJobProcess(options: JobProcessOptions): Promise<JobProcessResult> {
  const [name, ...args] = options.argv;
  if (name === undefined || name === '') throw new NonRetriableError('bad_command', 'the command is empty');
  const file = await resolveExecutable(name, options.cwd, options.env.PATH);
  if (options.signal?.aborted)
    throw new NonRetriableError('canceled', 'the job was canceled before it started');

  const tailMax = options.tailLines ?? 50;
  const maxLogBytes = options.maxLogBytes ?? 64 * 1024 * 1024;
  const tail: string[] = [];
  const log = createWriteStream(options.logFile, { flags: 'a' });
  let logBytes = 0;
  let logCapped = false;
  const logClosed = new Promise<void>((r) => log.on('close', r));
  const started = performance.now();

  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env,
    argv0: name,
    detached: true, // its own process group: kill(-pid) reaches everything it starts
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid !== undefined) options.onStart?.(pid);
  const killGroup = (sig: NodeJS.Signals) => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is gone already
    }
  };

  const lineReader = (stream: 'stdout' | 'stderr') => {
    let partial = '';
    const emit = (line: string) => {
      const l = line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line;
      tail.push(l);
      if (tail.length > tailMax) tail.shift();
      options.onLine?.(l, stream);
    };
    return {
      data(chunk: Buffer) {
        if (!logCapped) {
          if (logBytes + chunk.length > maxLogBytes) {
            logCapped = true;
            log.write(`\n[sluice: the log passed ${maxLogBytes} bytes; the rest is not kept]\n`);
          } else log.write(chunk);
        }
        logBytes += chunk.length;
        const lines = (partial + chunk.toString('utf8')).split(/\r?\n/);
        partial = lines.pop()!;
        if (partial.length > MAX_LINE_CHARS * 4) {
          emit(partial);
          partial = '';
        }
        for (const l of lines) emit(l);
      },
      end() {
        if (partial) emit(partial);
        partial = '';
      },
    };
  };
  const out = lineReader('stdout');
  const err = lineReader('stderr');
  child.stdout.on('data', out.data);
  child.stderr.on('data', err.data);

  let stoppedBy: JobProcessResult['stoppedBy'];
  let graceTimer: NodeJS.Timeout | undefined;
  const stop = (why: 'time_limit' | 'canceled') => {
    if (stoppedBy) return;
    stoppedBy = why;
    killGroup('SIGTERM');
    graceTimer = setTimeout(() => killGroup('SIGKILL'), options.killGraceMs ?? 5_000);
  };
  const limitTimer = setTimeout(() => stop('time_limit'), options.timeLimitMs);
  const onAbort = () => stop('canceled');
  options.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
      child.once('error', rej);
      child.once('exit', (code, signal) => res({ code, signal }));
    });
    // Whatever the job left behind in its group (a background process holding the pipes) goes too.
    killGroup('SIGKILL');
    // A process that left the group (setsid) may still hold the pipes: stop reading after a grace.
    let drainTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([
        new Promise<void>((r) => (child.stdout.closed ? r() : child.stdout.once('close', r))),
        new Promise<void>((r) => (child.stderr.closed ? r() : child.stderr.once('close', r))),
      ]),
      new Promise<void>((r) => (drainTimer = setTimeout(r, options.killGraceMs ?? 5_000))),
    ]);
    clearTimeout(drainTimer);
    child.stdout.destroy();
    child.stderr.destroy();
    out.end();
    err.end();
    return {
      exitCode: ended.code,
      signal: ended.signal,
      stoppedBy,
      durationMs: Math.round(performance.now() - started),
      logTail: tail,
      logBytes,
    };
  } catch (e) {
    killGroup('SIGKILL');
    throw new NonRetriableError('job_start_failed', `could not start ${name}: ${(e as Error).message}`, {
      cause: e,
    });
  } finally {
    clearTimeout(limitTimer);
    clearTimeout(graceTimer);
    options.signal?.removeEventListener('abort', onAbort);
    log.end();
    await logClosed;
  }
}
