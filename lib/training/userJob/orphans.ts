import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
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
 * Trust: a record names a process group to SIGKILL, so one is read only from a real folder (not a
 * symlink) owned by this user and closed to everyone else (mode 0700, as mkdtemp makes it), the
 * record itself a regular file of this user; and a group is killed only when its leader runs as this
 * user (Uid in /proc/<pid>/status). Otherwise another local user could forge a record in the shared
 * temp folder naming any process and its start time, and have this app kill it.
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

/** True when `path` is this user's own (lstat: not a symlink) folder or regular file, as `kind` says. */
async function ownedByUs(path: string, kind: 'folder' | 'file'): Promise<boolean> {
  const info = await lstat(path).catch(() => undefined);
  if (!info || !(kind === 'folder' ? info.isDirectory() : info.isFile())) return false;
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) return false;
  // The folder closed to others (no one else can put a record in); the record not writable by others.
  return kind === 'folder' ? (info.mode & 0o077) === 0 : (info.mode & 0o022) === 0;
}

/** The real uid a process runs as (from /proc/<pid>/status), or undefined when unknown. */
export function processUid(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The folder's record, or undefined when there is none, it is malformed, or it is not trusted (see above). */
export async function readJobRecord(folder: string): Promise<JobProcessRecord | undefined> {
  try {
    if (!(await ownedByUs(folder, 'folder'))) return undefined;
    if (!(await ownedByUs(join(folder, JOB_RECORD_FILE), 'file'))) return undefined;
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
    const uid = process.getuid?.();
    if (
      user?.start !== undefined &&
      isSameProcess(user) &&
      (uid === undefined || processUid(user.pid) === uid)
    ) {
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
