/**
 * Regression: the local backend killed the user's process group announced by a worker on every
 * worker exit. A worker that ends normally has already stopped that group, and its id may by then
 * belong to an unrelated process group, which the backend must leave alone. Only a worker that was
 * killed (or exited with a code worker/userJob.ts never uses) leaves the group for the backend.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServices, type RunningServices } from '../../../devhost/services';
import resources from '../../../lib/resources.json';
import { ArtifactStore } from '../../../lib/storage';
import { LocalTrainingBackend, workerEndedAbnormally } from '../../../lib/training/backends/local';
import { USER_PGID_MARKER } from '../../../lib/training/userJob/progress';
import { memoryLog } from '../../devhost/servicesLog';

jest.setTimeout(60_000);

describe('local backend: the user process group on worker exit', () => {
  let services: RunningServices;
  let store: ArtifactStore;
  let dir: string;
  const victims: ChildProcess[] = [];

  beforeAll(async () => {
    services = await startServices({ dataDir: null, log: memoryLog() });
    store = ArtifactStore.fromConnectionString(services.storageConnectionString);
    await store.ensureContainers();
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-pgid-'));
  });
  afterAll(async () => {
    for (const v of victims) if (v.exitCode === null && v.signalCode === null) v.kill('SIGKILL');
    await services?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A process group of its own that stands for an unrelated one reusing the announced id. */
  const victim = (): ChildProcess => {
    const v = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    victims.push(v);
    return v;
  };

  /**
   * The signal that ended the victim: we send SIGTERM now, so SIGTERM means it was still running and
   * SIGKILL means the backend had killed it (a killed, not yet reaped process still takes signals).
   */
  const endedBy = async (v: ChildProcess): Promise<NodeJS.Signals | null> => {
    const exited = new Promise<NodeJS.Signals | null>((r) => {
      if (v.exitCode !== null || v.signalCode !== null) r(v.signalCode);
      else v.once('exit', (_code, signal) => r(signal));
    });
    try {
      process.kill(-v.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    return exited;
  };

  /** A stand-in worker that announces `group` as its user's group, then ends as `end` says. */
  async function run(jobId: string, group: number, end: string): Promise<void> {
    const script = path.join(dir, `${jobId}.js`);
    await writeFile(script, `process.stderr.write('${USER_PGID_MARKER} ${group}\\n', () => { ${end} });\n`);
    const backend = new LocalTrainingBackend({ files: store, workerScript: script });
    const dataset = await store.putContentAddressed(resources.blobContainers.datasets, Buffer.from(jobId));
    await backend.submit({
      jobId,
      spec: { algorithm: 'logistic_regression', target: 'label', features: ['x'] },
      dataset: { uri: dataset.uri, sha256: dataset.sha256 },
    });
    await backend.whenEnded(jobId);
  }

  it.each([
    ['done (0)', 'process.exit(0)'],
    ['failed (1)', 'process.exit(1)'],
    ['canceled (2)', 'process.exit(2)'],
  ])('leaves the announced group alone when the worker exits %s', async (_how, end) => {
    const v = victim();
    await run(`job-pgid-${end.replace(/\D/g, '')}`, v.pid!, end);
    expect(await endedBy(v)).toBe('SIGTERM');
  });

  it('stops the announced group when the worker was killed', async () => {
    const v = victim();
    await run('job-pgid-killed', v.pid!, "process.kill(process.pid, 'SIGKILL')");
    expect(await endedBy(v)).toBe('SIGKILL');
  });

  it('workerEndedAbnormally: a signal, or a code the worker never uses', () => {
    expect(workerEndedAbnormally(0, null)).toBe(false);
    expect(workerEndedAbnormally(1, null)).toBe(false);
    expect(workerEndedAbnormally(2, null)).toBe(false);
    expect(workerEndedAbnormally(137, null)).toBe(true);
    expect(workerEndedAbnormally(null, 'SIGKILL')).toBe(true);
    expect(workerEndedAbnormally(null, 'SIGTERM')).toBe(true);
  });
});
