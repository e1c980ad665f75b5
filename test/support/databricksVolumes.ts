/**
 * The set-up the Databricks backend integration tests share (test/integration/training/databricks,
 * databricksLauncher, databricksScore): where the simulated Unity Catalog volumes and the workspace
 * folder are, and Azurite started with the wages data ingested as a run's validated dataset.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ingestDataset } from '../../lib/data/datasets';
import { ArtifactStore } from '../../lib/storage/blob';
import type { BlobEmulator } from './emulators';
import { startAzuriteBlob } from './emulators';

export const REPO_ROOT = path.join(__dirname, '..', '..');
/** The jobs volume (simulated over the jobs container): job data, code and the launcher. */
export const VOLUME = '/Volumes/main/sluice/jobs';
/** The joboutputs volume (simulated over the joboutputs container): what a job writes. */
export const OUT_VOLUME = '/Volumes/main/sluice/joboutputs';
export const WORKSPACE = '/Workspace/Shared/sluice';

/** Azurite started, the containers made and data/cps-wages-1985.csv ingested as ingest leaves it. */
export async function startWagesStore(): Promise<{
  azurite: BlobEmulator;
  store: ArtifactStore;
  dataset: { uri: string; sha256: string };
}> {
  const azurite = await startAzuriteBlob();
  const store = ArtifactStore.fromConnectionString(azurite.connectionString);
  await store.ensureContainers();
  const csv = await readFile(path.join(REPO_ROOT, 'data', 'cps-wages-1985.csv'));
  const ingested = await ingestDataset(store, csv);
  return {
    azurite,
    store,
    dataset: { uri: ingested.dataset.columnar.uri, sha256: ingested.dataset.columnar.sha256 },
  };
}
