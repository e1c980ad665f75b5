/**
 * Issue 13: "sources and goldenSet can read any container, including outbox where approval links
 * live". ingestBlob is where every dataset read ends (a run's source, a pipeline's goldenSet, a
 * contract's reference dataset), so it refuses anything but a clean path in the datasets container
 * at use, whatever let the name in. Also the one listing that answers a large training-events
 * delivery. Real Azurite.
 */
import { ingestBlob } from '../../lib/data/datasets';
import { ArtifactStore } from '../../lib/storage/blob';
import type { BlobEmulator } from '../support/emulators';
import { startAzuriteBlob } from '../support/emulators';

let azurite: BlobEmulator;
let store: ArtifactStore;

beforeAll(async () => {
  azurite = await startAzuriteBlob();
  store = ArtifactStore.fromConnectionString(azurite.connectionString);
  await store.ensureContainers();
  await store.put({ container: 'outbox', path: 'run-1/request.json' }, 'a,b\n1,2\n');
  await store.put({ container: 'datasets', path: 'incoming/ok.csv' }, 'a,b\n1,2\n3,4\n');
});
afterAll(async () => {
  await azurite?.stop();
});

describe('a goldenSet or source outside the datasets container is refused at use (issue 13)', () => {
  it.each([
    ['the outbox, by location', { container: 'outbox', path: 'run-1/request.json' }],
    ['the outbox, by URI', 'OUTBOX_URI'],
    ['a dot-dot path', { container: 'datasets', path: '../outbox/run-1/request.json' }],
  ])('%s', async (_name, ref) => {
    const target =
      ref === 'OUTBOX_URI' ? store.uri({ container: 'outbox', path: 'run-1/request.json' }) : ref;
    await expect(ingestBlob(store, target)).rejects.toMatchObject({
      code: 'invalid_dataset_blob',
      status: 400,
    });
  });

  it('still reads a dataset blob', async () => {
    const { table } = await ingestBlob(store, { container: 'datasets', path: 'incoming/ok.csv' });
    expect(table.rows).toBe(2);
  });
});

describe('listFolders', () => {
  it('names each job folder once, whatever it holds, and none for a missing container', async () => {
    for (const path of [
      'job-a/request.json',
      'job-a/status.json',
      'job-b/request.json',
      'job-b/out/model.json',
    ])
      await store.put({ container: 'jobs', path }, '{}');
    const folders: string[] = [];
    for await (const f of store.listFolders('jobs')) folders.push(f);
    expect(folders).toEqual(['job-a', 'job-b']);
    const none: string[] = [];
    for await (const f of store.listFolders('no-such-container')) none.push(f);
    expect(none).toEqual([]);
  });
});
