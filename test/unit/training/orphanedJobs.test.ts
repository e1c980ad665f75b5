/**
 * reapOrphanedJobs (lib/training/userJob/orphans.ts) on recorded job folders: it kills a user group
 * only while its leader is the recorded process (pid and start time), so a reused pid is left alone;
 * it leaves jobs whose worker lives, and folders without a record; and it trusts only records in
 * this user's own closed folders, naming a group that runs as this user (no forged kill).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
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
    await mkdir(dir, { recursive: true, mode: 0o700 }); // as the worker's mkdtemp makes it
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

  describe('forged records are ignored and their victim lives', () => {
    const NOBODY = 65534;
    const isRoot = process.getuid?.() === 0;
    const forge = async (jobId: string, dir: string, victim: number) => {
      writeJobRecord(dir, {
        jobId,
        worker: { pid: await deadPid(), start: '1' },
        user: currentProcess(victim),
      });
    };

    it.each([
      ['group-writable', 0o770],
      ['other-writable', 0o777],
      ['group-readable', 0o750],
    ])('in a %s folder', async (label, mode) => {
      const victim = group();
      const dir = await folder(`forged-${label}`);
      await forge(`forged-${label}`, dir, victim.pid!);
      await chmod(dir, mode);
      expect(await reapOrphanedJobs({ tempDir: root, jobId: `forged-${label}` })).toEqual([]);
      expect(running(victim.pid!)).toBe(true);
      expect(existsSync(dir)).toBe(true);
    });

    it('in a folder or with a record owned by another user', async () => {
      expect(isRoot).toBe(true); // chown needs root; the suite runs as root here
      const victim = group();
      const dir = await folder('forged-owner');
      await forge('forged-owner', dir, victim.pid!);
      await chown(dir, NOBODY, NOBODY);
      const fileDir = await folder('forged-file');
      await forge('forged-file', fileDir, victim.pid!);
      await chown(join(fileDir, 'sluice-job.json'), NOBODY, NOBODY);
      expect(await reapOrphanedJobs({ tempDir: root, jobId: 'forged-owner' })).toEqual([]);
      expect(await reapOrphanedJobs({ tempDir: root, jobId: 'forged-file' })).toEqual([]);
      expect(running(victim.pid!)).toBe(true);
    });

    it('behind a symlink', async () => {
      const victim = group();
      const real = await mkdtemp(join(root, 'elsewhere-'));
      await forge('forged-link', real, victim.pid!);
      const dir = join(root, 'sluice-job-forged-link-abc123');
      await symlink(real, dir);
      expect(await reapOrphanedJobs({ tempDir: root, jobId: 'forged-link' })).toEqual([]);
      expect(running(victim.pid!)).toBe(true);
    });

    it('naming a group that runs as another user', async () => {
      expect(isRoot).toBe(true);
      const victim = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', uid: NOBODY, gid: NOBODY });
      children.push(victim);
      await new Promise((r) => victim.once('spawn', r));
      const dir = await folder('forged-uid');
      await forge('forged-uid', dir, victim.pid!);
      // The folder is ours and sound, so it is removed; the other user's process is not killed.
      expect(await reapOrphanedJobs({ tempDir: root, jobId: 'forged-uid' })).toEqual([
        { jobId: 'forged-uid', folder: dir },
      ]);
      expect(running(victim.pid!)).toBe(true);
    });
  });
});
