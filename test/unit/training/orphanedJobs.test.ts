/**
 * reapOrphanedJobs (lib/training/userJob/orphans.ts) on recorded job folders: it kills a user group
 * only while its leader is the recorded process (pid and start time), so a reused pid is left alone;
 * it leaves jobs whose worker lives, and folders without a record.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  currentProcess,
  isSameProcess,
  processStartTime,
  reapOrphanedJobs,
  writeJobRecord,
} from '../../../lib/training/userJob/orphans';
import { gone, running } from '../../support/processes';

describe('orphaned local user jobs', () => {
  let root: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'sluice-orphans-test-'));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  const group = (): ChildProcess => {
    const c = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    children.push(c);
    return c;
  };
  /** A pid that was a process and has ended: a dead worker. */
  const deadPid = async (): Promise<number> => {
    const c = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => c.once('exit', r));
    return c.pid!;
  };
  const folder = async (jobId: string) => {
    const dir = join(root, `sluice-job-${jobId}-abc123`);
    await mkdir(dir, { recursive: true });
    return dir;
  };

  it('reads start times from /proc, and tells a reused pid from the recorded process', () => {
    const me = currentProcess();
    expect(me.start).toMatch(/^\d+$/);
    expect(processStartTime(process.pid)).toBe(me.start);
    expect(isSameProcess(me)).toBe(true);
    expect(isSameProcess({ pid: process.pid, start: String(Number(me.start) + 1) })).toBe(false);
  });

  it('kills the group of a job whose worker is dead and removes its folder', async () => {
    const user = group();
    const dir = await folder('dead-worker');
    writeJobRecord(dir, {
      jobId: 'dead-worker',
      worker: { pid: await deadPid(), start: '1' },
      user: currentProcess(user.pid),
    });
    const reaped = await reapOrphanedJobs({ tempDir: root });
    expect(reaped).toEqual([{ jobId: 'dead-worker', folder: dir, killedGroup: user.pid }]);
    expect(await gone(user.pid!)).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it('leaves a group whose leader is no longer the recorded process (pid reuse), but removes the folder', async () => {
    const other = group();
    const dir = await folder('reused');
    const start = String(Number(processStartTime(other.pid!)) - 1);
    writeJobRecord(dir, {
      jobId: 'reused',
      worker: { pid: await deadPid() },
      user: { pid: other.pid!, start },
    });
    const reaped = await reapOrphanedJobs({ tempDir: root, jobId: 'reused' });
    expect(reaped).toEqual([{ jobId: 'reused', folder: dir }]);
    expect(running(other.pid!)).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it('leaves jobs whose worker lives, and folders without a record', async () => {
    const user = group();
    const live = await folder('live-worker');
    writeJobRecord(live, { jobId: 'live-worker', worker: currentProcess(), user: currentProcess(user.pid) });
    const bare = await folder('no-record');
    expect(await reapOrphanedJobs({ tempDir: root })).toEqual([]);
    expect(running(user.pid!)).toBe(true);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(bare)).toBe(true);
  });
});
