import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Local user jobs whose worker is gone. The user's command runs in a process group of its own (so a
 * time limit or a cancel stops all of it), which also means it outlives a SIGKILL of the app's whole
 * process group: the worker that would stop it and remove the job's temporary folder is dead, and
 * nothing else knows of it. So the worker records, in the job's temporary folder
 * (`<temp>/sluice-job-<jobId>-*`), who it is and, once started, the user's process group — each with
 * the process's start time from /proc/<pid>/stat, which defeats PID reuse: a recorded process
 * counts as alive only while a process with that pid and that start time exists.
 *
 * `reapOrphanedJobs` (run by the local backend when it starts and before each job it starts) finds
 * every such folder whose worker is no longer alive, SIGKILLs the user's group if its leader is still
 * that process, and removes the folder. A job whose worker lives (this app's or another instance's on
 * the same machine) is left alone.
 *
 * Why not make the job die with its parent instead: Linux's PR_SET_PDEATHSIG is not reachable from
 * Node's spawn; a wrapper program (`setpriv --pdeathsig`) would be another dependency, signals only
 * the group's leader (not what it started), and leaves the temporary folder behind anyway.
 *
 * Without /proc (macOS) start times are unknown: folders of dead workers are still removed, but no
 * group is killed, since its id may be another process's by then.
 */

export const JOB_RECORD_FILE = 'sluice-job.json';
const JOB_FOLDER_PREFIX = 'sluice-job-';

export interface RecordedProcess {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot); absent where there is no /proc. */
  start?: string;
}

export interface JobProcessRecord {
  jobId: string;
  worker: RecordedProcess;
  /** The user's process, which leads its own group (pgid = pid); set once it started. */
  user?: RecordedProcess;
}

/** A process's start time, or undefined when it does not exist, is a zombie, or there is no /proc. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so fields count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  return fields[19];
}

/** This process as a record entry. */
export function currentProcess(pid = process.pid): RecordedProcess {
  const start = processStartTime(pid);
  return start === undefined ? { pid } : { pid, start };
}

/** True while the recorded process is that process (same pid, same start time). */
export function isSameProcess(p: RecordedProcess): boolean {
  const start = processStartTime(p.pid);
  if (start !== undefined) return p.start === undefined || start === p.start;
  if (p.start !== undefined) return false; // recorded with /proc, and that pid is gone
  try {
    process.kill(p.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes the record into the job's folder (a temporary file renamed over it, so a reader never sees
 * half). Synchronous: it is called from the user process's start callback, before anything else.
 */
export function writeJobRecord(folder: string, record: JobProcessRecord): void {
  const file = join(folder, JOB_RECORD_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(record));
  renameSync(`${file}.tmp`, file);
}

export async function readJobRecord(folder: string): Promise<JobProcessRecord | undefined> {
  try {
    const doc = JSON.parse(await readFile(join(folder, JOB_RECORD_FILE), 'utf8')) as JobProcessRecord;
    const okProcess = (p: unknown) =>
      !!p && Number.isSafeInteger((p as RecordedProcess).pid) && (p as RecordedProcess).pid > 1;
    if (typeof doc?.jobId !== 'string' || !okProcess(doc.worker)) return undefined;
    if (doc.user !== undefined && !okProcess(doc.user)) return undefined;
    return doc;
  } catch {
    return undefined;
  }
}

export interface ReapedJob {
  jobId: string;
  folder: string;
  /** The user's process group, when it was still running and was killed. */
  killedGroup?: number;
}

/**
 * Stops the user process groups of jobs whose worker is dead and removes their folders. `jobId`
 * limits it to that job's folders. Waits (bounded) until a killed group's leader is gone, so a job
 * started next never runs beside it.
 */
export async function reapOrphanedJobs(
  options: { jobId?: string; tempDir?: string; waitMs?: number } = {},
): Promise<ReapedJob[]> {
  const root = options.tempDir ?? tmpdir();
  const prefix = options.jobId ? `${JOB_FOLDER_PREFIX}${options.jobId}-` : JOB_FOLDER_PREFIX;
  const names = await readdir(root).catch(() => [] as string[]);
  const reaped: ReapedJob[] = [];
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    const folder = join(root, name);
    const record = await readJobRecord(folder);
    // No record: a folder of an older version or of a worker that died in its first moment; left alone.
    if (!record || isSameProcess(record.worker)) continue;
    const out: ReapedJob = { jobId: record.jobId, folder };
    const user = record.user;
    if (user?.start !== undefined && isSameProcess(user)) {
      try {
        process.kill(-user.pid, 'SIGKILL');
        out.killedGroup = user.pid;
      } catch {
        // ended meanwhile
      }
    }
    if (out.killedGroup !== undefined) {
      const deadline = Date.now() + (options.waitMs ?? 5_000);
      while (isSameProcess(user!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    await rm(folder, { recursive: true, force: true }).catch(() => undefined);
    reaped.push(out);
  }
  return reaped;
}
