/**
 * The local training backend as the integration tests run it: a real worker process on the
 * TypeScript source (loaded with registerTs.js), storing to Azurite, with a fast heartbeat.
 */
import { join } from 'node:path';
import { LocalTrainingBackend, type LocalBackendOptions } from '../../lib/training/backends/local';
import type { ArtifactStore } from '../../lib/storage/blob';

const root = join(__dirname, '..', '..');

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
    ...over,
  });
}
