/**
 * Issue 13, "A stale services.lock naming a dead, zombie or reused PID blocks start-up": a lock is
 * live only while its pid exists, is not a zombie and has the start time the lock recorded. Real
 * processes (a dead one, an unreaped zombie, an unrelated live one) and real lock files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LOCK_FILE, lockDataDir, procStat } from '../../devhost/services/lock';
import { runDevhostToExit, startDevhost } from '../support/devhost';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const children: ChildProcess[] = [];
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'services-lock-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function writeLock(content: unknown): void {
  writeFileSync(path.join(dir, LOCK_FILE), typeof content === 'string' ? content : JSON.stringify(content));
}

async function exitedPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

/** A zombie: `sh` starts a short `sleep` in the background, then becomes a `sleep` that never reaps it. */
async function zombiePid(): Promise<number> {
  const child = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 60'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.push(child);
  const pid = await new Promise<number>((resolve) =>
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
  );
  for (let i = 0; i < 100 && procStat(pid)?.state !== 'zombie'; i++) await sleep(20);
  expect(procStat(pid)?.state).toBe('zombie');
  return pid;
}

describe('A stale services.lock naming a dead, zombie or reused PID does not block start-up', () => {
  it('takes over a lock whose pid is dead', async () => {
    writeLock({ pid: await exitedPid(), start: '1', token: 'old' });
    const release = await lockDataDir(dir);
    expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
    await release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('takes over a lock whose pid is a zombie', async () => {
    const pid = await zombiePid();
    writeLock({ pid, start: procStat(pid)!.start, token: 'old' });
    const release = await lockDataDir(dir);
    expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
    await release();
  });

  it('takes over a lock whose pid now belongs to an unrelated process started later', async () => {
    const other = spawn('sleep', ['60']);
    children.push(other);
    const start = procStat(other.pid!)!.start;
    writeLock({ pid: other.pid, start: String(Number(start) - 100), token: 'old' });
    const release = await lockDataDir(dir);
    expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).toMatchObject({ pid: process.pid });
    await release();
  });

  it('takes over the bare-pid lock of an older devhost once that pid is dead', async () => {
    writeLock(String(await exitedPid()));
    await (
      await lockDataDir(dir)
    )();
  });

  it('still refuses a folder a live devhost holds, naming its pid', async () => {
    const release = await lockDataDir(dir);
    await expect(lockDataDir(dir)).rejects.toThrow(`in use by another devhost (pid ${process.pid})`);
    await release();
    // Released: the next devhost gets it.
    await (
      await lockDataDir(dir)
    )();
  });

  it('leaves a lock another devhost took alone when releasing', async () => {
    const release = await lockDataDir(dir);
    const other = { pid: process.pid, start: procStat(process.pid)!.start, token: 'someone-else' };
    writeLock(other);
    await release();
    expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).toEqual(other);
  });
});

describe('services.lock also guards a data folder devhost uses without the embedded services', () => {
  it('refuses a second --no-services devhost on a folder in use, and frees it on stop', async () => {
    const first = await startDevhost({ app: 'test/fixtures/basic', services: false, dataDir: dir });
    try {
      expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8'))).toMatchObject({
        pid: first.proc.pid,
      });
      const second = await runDevhostToExit({ app: 'test/fixtures/basic', services: false, dataDir: dir });
      expect(second.code).not.toBe(0);
      expect(second.output).toContain(`in use by another devhost (pid ${first.proc.pid})`);
    } finally {
      await first.stop();
    }
    expect(readdirSync(dir)).not.toContain(LOCK_FILE);
  });
});
