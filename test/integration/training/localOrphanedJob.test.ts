/**
 * Issue 15: "If the whole app is killed while a local user job runs, the user's process runs on
 * until it ends; the run resubmits the job (worker_died) and the old temp folder stays."
 *
 * An app process (its own process group: the local backend, as the Functions host holds it) submits
 * a custom job; the real worker/userJob.ts runs a fake user job (a Node script that runs until
 * killed). The test SIGKILLs the app's whole process group, app and worker at once, and sees the
 * user's process survive it (it leads a group of its own). The app then "restarts": a new local
 * backend on the same storage, which stops the orphaned job and removes its temp folder when it is
 * made; the job reads as worker_died, and the resubmitted attempt runs alone, with no second copy
 * beside it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import resources from '../../../lib/resources.json';
import { ArtifactStore } from '../../../lib/storage/blob';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import type { LocalTrainingBackend } from '../../../lib/training/backends/local';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { JOB_RECORD_FILE, type JobProcessRecord } from '../../../lib/training/userJob/orphans';
import { columnarBytes, tableOf } from '../../support/datasets';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';
import { localWorkerBackend } from '../../support/localWorker';
import { gone, running } from '../../support/processes';

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..', '..');
const REGISTER_TS = join(ROOT, 'test', 'support', 'registerTs.js');

describe('local backend: a user job orphaned by a kill of the whole app', () => {
  let azurite: BlobEmulator;
  let store: ArtifactStore;
  let work: string;
  let code: string;
  let app: ChildProcess | undefined;
  let restarted: LocalTrainingBackend | undefined;
  const marker = `orphan-marker-${process.pid}-${Date.now()}`;

  beforeAll(async () => {
    azurite = await startAzuriteBlob();
    store = ArtifactStore.fromConnectionString(azurite.connectionString);
    await store.ensureContainers();
    work = await mkdtemp(join(tmpdir(), 'sluice-orphan-test-'));
    code = join(work, 'code');
    await mkdir(code);
    // The user's job: its pid in a file named by its job id, then it runs until it is killed.
    await writeFile(
      join(code, 'job.js'),
      `require('node:fs').writeFileSync('pid-' + process.env.SLUICE_JOB_ID, String(process.pid));
       setInterval(() => {}, 1000);\n`,
    );
  }, 120_000);
  afterAll(async () => {
    if (app?.pid) kill(-app.pid);
    for (const pid of copies()) kill(pid);
    await restarted?.stopAll();
    await azurite?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const kill = (pid: number) => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  /** Every running copy of the user's job on this machine (its command line carries the marker). */
  const copies = (): number[] =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker) && running(Number(d));
        } catch {
          return false;
        }
      })
      .map(Number);
  const tempFolders = (jobId: string) =>
    readdirSync(tmpdir()).filter((f) => f.startsWith(`sluice-job-${jobId}-`));
  const userPid = async (jobId: string): Promise<number> => {
    const file = join(code, `pid-${jobId}`);
    const deadline = Date.now() + 90_000;
    while (!existsSync(file) || readFileSync(file, 'utf8') === '') {
      if (Date.now() > deadline) throw new Error(`the user job of ${jobId} never started`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Number(readFileSync(file, 'utf8'));
  };

  async function request(jobId: string): Promise<TrainingJobRequestInput> {
    const ds = syntheticClassification({ rows: 500, features: 2, seed: 5 });
    const stored = await store.putContentAddressed(resources.blobContainers.datasets, columnarBytes(ds));
    return {
      jobId,
      spec: {
        algorithm: 'custom',
        code,
        command: `'${process.execPath}' job.js ${marker}`,
        target: 'label',
        features: ['x0', 'x1'],
        timeLimitSeconds: 600,
      },
      dataset: { uri: stored.uri, sha256: stored.sha256 },
      contract: inferDatasetContract(tableOf(ds)),
    };
  }

  it('stops the orphaned user process and removes its temp folder when the app restarts; the resubmit runs alone', async () => {
    const first = await request('orphan-attempt-1');
    const appScript = join(work, 'app.js');
    await writeFile(
      appScript,
      `const { ArtifactStore } = require(${JSON.stringify(join(ROOT, 'lib', 'storage', 'blob.ts'))});
       const { localWorkerBackend } = require(${JSON.stringify(join(ROOT, 'test', 'support', 'localWorker.ts'))});
       const store = ArtifactStore.fromConnectionString(process.env.CONNECTION);
       const backend = localWorkerBackend(store, process.env.CONNECTION);
       backend.submit(JSON.parse(process.env.REQUEST)).then(() => setInterval(() => {}, 1000), (err) => {
         console.error(err);
         process.exit(3);
       });\n`,
    );
    app = spawn(process.execPath, ['-r', REGISTER_TS, appScript], {
      env: { ...process.env, CONNECTION: azurite.connectionString, REQUEST: JSON.stringify(first) },
      detached: true, // the app's own process group, as a host's; the worker it spawns joins it
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const orphan = await userPid('orphan-attempt-1');
    const [folder] = tempFolders('orphan-attempt-1');
    expect(folder).toBeDefined();
    const record = JSON.parse(
      readFileSync(join(tmpdir(), folder!, JOB_RECORD_FILE), 'utf8'),
    ) as JobProcessRecord;
    expect(record.user?.pid).toBe(orphan);
    expect(record.user?.start).toMatch(/^\d+$/);

    // Everything of the app at once: the host process and the worker it started.
    process.kill(-app.pid!, 'SIGKILL');
    expect(await gone(app.pid!)).toBe(true);
    expect(await gone(record.worker.pid)).toBe(true);
    // What the issue saw: the user's process lives on, in its own group, with its temp folder.
    await new Promise((r) => setTimeout(r, 500));
    expect(running(orphan)).toBe(true);
    expect(tempFolders('orphan-attempt-1')).toEqual([folder]);
    expect(copies()).toEqual([orphan]);

    // The app restarts on the same storage: its local backend sweeps for orphans when it is made.
    restarted = localWorkerBackend(store, azurite.connectionString, {
      heartbeatStaleMs: 2_000,
      reapOrphans: true,
    });
    await restarted.whenSwept();
    expect(running(orphan)).toBe(false);
    expect(tempFolders('orphan-attempt-1')).toEqual([]);

    // The monitor then reads the job as dead, and the pipeline resubmits it: one copy runs.
    const deadline = Date.now() + 60_000;
    let status = await restarted.status('orphan-attempt-1');
    while (status.state === 'running' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      status = await restarted.status('orphan-attempt-1');
    }
    expect(status.state).toBe('failed');
    expect(status.error?.code).toBe('worker_died');
    await restarted.submit(await request('orphan-attempt-2'));
    const second = await userPid('orphan-attempt-2');
    expect(second).not.toBe(orphan);
    expect(copies()).toEqual([second]);
    await restarted.cancel('orphan-attempt-2');
    expect(await gone(second)).toBe(true);
  });
});
