/**
 * The local training backend as the integration tests run it: a real worker process on the
 * TypeScript source (loaded with registerTs.js), storing to Azurite, with a fast heartbeat.
 *
 * Two defaults differ from the app's, so that tests do not reach into each other's state on a
 * shared machine:
 * - the job data cache is a folder of this process's own (made once, removed when it exits), not the
 *   user's default one, so a test never gets entries another run left (possibly written by older
 *   code);
 * - the orphan sweep is off: a backend made in one jest worker would otherwise sweep the shared temp
 *   folder and could kill the job another test is deliberately orphaning. The orphan test turns it on
 *   for the backend under test (`reapOrphans: true`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTrainingBackend, type LocalBackendOptions } from '../../lib/training/backends/local';
import type { ArtifactStore } from '../../lib/storage/blob';

const root = join(__dirname, '..', '..');

let cacheDir: string | undefined;

/** This process's job data cache folder (0700, as mkdtemp makes it; removed at exit). */
export function testJobDataCache(): string {
  if (!cacheDir) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-jobdata-test-cache-'));
    cacheDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return cacheDir;
}

export function localWorkerBackend(
  store: ArtifactStore,
  connectionString: string,
  over: Partial<LocalBackendOptions> = {},
): LocalTrainingBackend {
  return new LocalTrainingBackend({
    files: store,
    workerScript: join(root, 'worker', 'trainingJob.ts'),
    execArgv: ['-r', join(root, 'test', 'support', 'registerTs.js')],
    env: { ARTIFACT_STORAGE_CONNECTION: connectionString },
    heartbeatMs: 300,
    jobDataCache: testJobDataCache(),
    reapOrphans: false,
    ...over,
  });
}
