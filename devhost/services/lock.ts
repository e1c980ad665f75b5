/**
 * `services.lock`: one devhost per data folder (two Azurite processes, or two writers of the task-hub
 * file, on one folder would corrupt it). The lock names its holder by pid, the process's start time
 * (`/proc/<pid>/stat` field 22, clock ticks since boot) and a random token. A lock is live only while a
 * process with that pid exists, is not a zombie, and started at that time: a dead pid, a zombie left
 * unreaped, or a pid the kernel has since given to an unrelated process all make it stale, and a stale
 * lock is taken over.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'services.lock';

export interface LockHolder {
  pid: number;
  /** `/proc/<pid>/stat` start time; absent in locks written by older devhost versions or off Linux. */
  start?: string;
  token?: string;
}

export type ProcessState = 'running' | 'zombie' | 'gone';

/** State and start time of a process from `/proc` (undefined where there is no `/proc`, e.g. macOS). */
export function procStat(pid: number): { state: ProcessState; start: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') {
      try {
        readFileSync('/proc/self/stat');
        return { state: 'gone', start: '' };
      } catch {
        return undefined; // no /proc at all
      }
    }
    throw err;
  }
  // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0] === 'Z' || fields[0] === 'X' ? 'zombie' : 'running';
  return { state, start: fields[19] ?? '' };
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process a lock names still holds it. */
export function isLive(holder: LockHolder): boolean {
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  const stat = procStat(holder.pid);
  if (stat === undefined) return signalable(holder.pid); // no /proc: the best the platform offers
  if (stat.state !== 'running') return false;
  return holder.start === undefined || holder.start === stat.start;
}

/** Parses a lock file: JSON, or the bare pid older devhost versions wrote. */
export function parseLock(text: string): LockHolder | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed) };
  try {
    const value = JSON.parse(trimmed) as Partial<LockHolder>;
    if (typeof value.pid === 'number') return value as LockHolder;
  } catch {
    // unreadable: a lock torn by a crash while it was written
  }
  return undefined;
}

/**
 * Takes the data folder's lock, taking over a stale one. Resolves with the release function (which
 * removes the file only while it still holds this process's token). Throws, naming the holder, when a
 * live devhost holds it.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = join(dataDir, LOCK_FILE);
  const self: LockHolder = {
    pid: process.pid,
    ...(procStat(process.pid)?.start ? { start: procStat(process.pid)!.start } : {}),
    token: randomBytes(12).toString('hex'),
  };
  const text = JSON.stringify(self);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      const fh = await open(file, 'wx');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return async () => {
        const now = await readFile(file, 'utf8').catch(() => '');
        if (now === text) await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const seen = await readFile(file, 'utf8').catch(() => undefined);
      if (seen === undefined) continue; // released meanwhile
      const holder = parseLock(seen);
      if (holder && isLive(holder)) {
        throw new Error(
          `Data folder ${dataDir} is in use by another devhost (pid ${holder.pid}). Stop it, or use another --data-dir.`,
          { cause: err },
        );
      }
      await takeOver(file, seen, self.token!);
    }
  }
  throw new Error(`could not lock data folder ${dataDir}`);
}

/**
 * Removes a stale lock, unless another devhost replaced it since it was read: the file is moved aside
 * atomically (only one contender can move it), and put back if it is no longer the stale one.
 */
async function takeOver(file: string, stale: string, token: string): Promise<void> {
  const aside = `${file}.${token}`;
  try {
    await rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== stale) {
    // A fresh lock taken by another devhost in between: give it back, unless a newer one is there.
    await link(aside, file).catch(() => undefined);
  }
  await rm(aside, { force: true });
}
