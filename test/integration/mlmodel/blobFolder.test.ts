import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServices, type RunningServices } from '../../../devhost/services';
import {
  isModelFolderUri,
  openModelFolder,
  storeModelFiles,
  storeModelFolder,
} from '../../../lib/mlmodel/blobFolder';
import { manifestDigest, readManifest } from '../../../lib/mlmodel/folder';
import { ArtifactStore } from '../../../lib/storage';
import { memoryLog } from '../../devhost/servicesLog';

jest.setTimeout(120_000);

describe('model folders in Blob', () => {
  let services: RunningServices;
  let store: ArtifactStore;
  let dir: string;

  beforeAll(async () => {
    services = await startServices({ dataDir: null, log: memoryLog() });
    store = ArtifactStore.fromConnectionString(services.storageConnectionString);
    await store.ensureContainers();
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-folder-'));
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'MLmodel'), 'flavors:\n  onnx:\n    data: model.onnx\n');
    await writeFile(path.join(dir, 'model.onnx'), Buffer.from([1, 2, 3, 4]));
    await writeFile(path.join(dir, 'sub', 'notes.txt'), 'hello');
  });
  afterAll(async () => {
    await services?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores a folder from disk under its manifest digest and reads every file back verified', async () => {
    const { digest } = await readManifest(dir, { maxBytes: 1e6 });
    const stored = await storeModelFolder(store, dir, { maxBytes: 1e6 }, digest);
    expect(stored.digest).toBe(digest);
    expect(isModelFolderUri(stored.uri)).toBe(true);
    const again = await storeModelFolder(store, dir, { maxBytes: 1e6 });
    expect(again.uri).toBe(stored.uri);

    const opened = await openModelFolder(store, stored.uri, digest);
    expect(opened.manifest.map((f) => f.path)).toEqual(['MLmodel', 'model.onnx', 'sub/notes.txt']);
    expect([...(await opened.read('model.onnx'))]).toEqual([1, 2, 3, 4]);
    const out = await mkdtemp(path.join(tmpdir(), 'sluice-folder-out-'));
    await opened.download(out);
    expect(await readFile(path.join(out, 'sub', 'notes.txt'), 'utf8')).toBe('hello');
    await rm(out, { recursive: true, force: true });
  });

  it('refuses a folder that changed after its check', async () => {
    await expect(storeModelFolder(store, dir, { maxBytes: 1e6 }, 'f'.repeat(64))).rejects.toMatchObject({
      code: 'model_output_changed',
    });
  });

  it('stores files from memory the same way, and refuses a wrong digest or an edited file', async () => {
    const stored = await storeModelFiles(store, [
      { path: 'MLmodel', bytes: Buffer.from('flavors: {}\n') },
      { path: 'model.json', bytes: Buffer.from('{"a":1}') },
    ]);
    await expect(openModelFolder(store, stored.uri, '0'.repeat(64))).rejects.toMatchObject({
      code: 'model_digest_mismatch',
    });
    // Someone overwrites a file in place: the read is refused against the manifest.
    const at = store.parseUri(stored.uri);
    const filePath = at.path.replace(/\.manifest\.json$/, '/model.json');
    await store.put({ container: at.container, path: filePath }, '{"a":2}', { condition: 'overwrite' });
    const opened = await openModelFolder(store, stored.uri, stored.digest);
    await expect(opened.read('model.json')).rejects.toMatchObject({ code: 'BLOB_DIGEST_MISMATCH' });
    await expect(opened.read('nope')).rejects.toMatchObject({ code: 'invalid_model' });
  });

  // Regression: manifest paths are checked by one rule (folderPathProblem) wherever they are read
  // or written, so no file of a folder is ever read or written outside it.
  it.each(['..', '../escape.txt', 'a/../../b', '/etc/passwd', 'a\\b', 'a\nb', 'a//b', './a'])(
    'refuses the folder path %j when storing files and when opening a manifest',
    async (bad) => {
      await expect(
        storeModelFiles(store, [
          { path: 'MLmodel', bytes: Buffer.from('flavors: {}\n') },
          { path: bad, bytes: Buffer.from('x') },
        ]),
      ).rejects.toMatchObject({ code: 'model_output_invalid' });
      // A manifest that hashes to its digest but names a path out of the folder.
      const files = [{ path: bad, sha256: 'a'.repeat(64), bytes: 1 }];
      const digest = manifestDigest(files);
      const at = { container: 'models', path: `mlflow/${digest}.manifest.json` };
      await store.put(at, JSON.stringify({ format: 'sluice.model-folder/v1', digest, files }), {
        condition: 'overwrite',
      });
      await expect(openModelFolder(store, store.uri(at), digest)).rejects.toMatchObject({
        code: 'invalid_model',
      });
    },
  );

  it('refuses to store a folder from disk with a file name no folder may hold (readManifest: a backslash)', async () => {
    const odd = await mkdtemp(path.join(tmpdir(), 'sluice-folder-odd-'));
    try {
      await writeFile(path.join(odd, 'MLmodel'), 'flavors: {}\n');
      await writeFile(path.join(odd, 'a\\b.txt'), 'x');
      await expect(storeModelFolder(store, odd, { maxBytes: 1e6 })).rejects.toMatchObject({
        code: 'model_output_invalid',
        message: expect.stringContaining('backslash'),
      });
    } finally {
      await rm(odd, { recursive: true, force: true });
    }
  });

  it('refuses a URI that is not a model folder manifest', async () => {
    await expect(openModelFolder(store, 'models/sha256/abc', 'f'.repeat(64))).rejects.toMatchObject({
      code: 'invalid_model',
    });
  });
});
