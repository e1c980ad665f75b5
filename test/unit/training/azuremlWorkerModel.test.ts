/** @jest-environment ./test/support/onnxEnvironment.js */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JobResult } from '../../../lib/contracts/trainingJob';
import { manifestDigest } from '../../../lib/mlmodel/folder';
import type { BlobLocation } from '../../../lib/storage/blob';
import {
  checkRows,
  collectWorkerModel,
  storeWorkerFolder,
} from '../../../lib/training/backends/azuremlWorkerModel';
import type { BuiltInModelFolder } from '../../../lib/training/models/mlflowFolder';
import { builtInModelFolder } from '../../../lib/training/models/mlflowFolder';
import { loadModel } from '../../../lib/training/models/predict';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification, syntheticRegression } from '../../../lib/training/synthetic';

/** Blob as storeModelFolder uses it: write-once puts, URIs of the models container. */
class MemoryStore {
  readonly blobs = new Map<string, Uint8Array>();
  async put(at: BlobLocation, body: Uint8Array | string, _o?: unknown) {
    const key = `${at.container}/${at.path}`;
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if (this.blobs.has(key)) return { ok: Buffer.from(this.blobs.get(key)!).equals(Buffer.from(bytes)) };
    this.blobs.set(key, bytes);
    return { ok: true };
  }
  uri(at: BlobLocation) {
    return `https://acct.blob.core.windows.net/${at.container}/${at.path}`;
  }
  parseUri(uri: string): BlobLocation {
    const [container, ...rest] = new URL(uri).pathname.slice(1).split('/');
    return { container: container!, path: rest.join('/') };
  }
  async getBuffer(): Promise<never> {
    throw new Error('not read here');
  }
}

/** A store that must not be touched: a refused folder stores nothing. */
const untouchable = {
  put: () => Promise.reject(new Error('stored a refused folder')),
  uri: () => 'x',
  parseUri: () => ({ container: 'x', path: 'x' }),
  getBuffer: () => Promise.reject(new Error('read')),
} as never;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function trained(
  kind: 'classification' | 'regression',
  seed: number,
  algorithm = kind === 'classification' ? 'logistic_regression' : 'ridge',
) {
  const ds =
    kind === 'classification'
      ? syntheticClassification({ rows: 600, features: 3, seed, withSegment: true })
      : syntheticRegression({ rows: 600, features: 3, seed });
  const features = ds.columns.map((c) => c.name).filter((n) => n !== 'label' && n !== 'y');
  const target = ds.columns.some((c) => c.name === 'label') ? 'label' : 'y';
  const result = trainModel(ds, parseTrainingSpec({ algorithm, target, features }));
  const json = Buffer.from(JSON.stringify(result.model), 'utf8');
  const reported: JobResult = {
    modelUri: 'https://acct.blob.core.windows.net/jobs/j/model.json',
    modelDigest: sha256(json),
    algorithm: result.model.algorithm,
    task: result.model.task,
    metrics: {},
    rows: { ...result.rows },
    iterations: result.iterations,
    converged: result.converged,
  };
  return { json, folder: builtInModelFolder(json), reported };
}

describe('the Azure ML worker folder check (storeWorkerFolder)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const write = (folder: BuiltInModelFolder, replace: Record<string, Uint8Array> = {}): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sluice-worker-model-'));
    dirs.push(dir);
    for (const f of folder.files) writeFileSync(path.join(dir, f.path), replace[f.path] ?? f.bytes);
    return dir;
  };

  it('stores a classifier with a categorical feature and reports its folder, digest and artifact', async () => {
    const { folder, reported } = trained('classification', 3);
    const store = new MemoryStore();
    const result = await storeWorkerFolder(store as never, write(folder), reported, 1 << 20);
    const manifest = folder.files
      .map((f) => ({ path: f.path, sha256: sha256(f.bytes), bytes: f.bytes.byteLength }))
      .sort((a, b) => a.path.localeCompare(b.path));
    expect(result.modelDigest).toBe(manifestDigest(manifest));
    expect(result.modelUri).toBe(
      `https://acct.blob.core.windows.net/models/mlflow/${result.modelDigest}.manifest.json`,
    );
    // The artifact is the one the worker's own folder builder describes.
    expect(result.artifact).toEqual(folder.artifact);
    expect(result.artifact!.features.map((f) => f.kind)).toContain('string');
    expect(result).toMatchObject({ algorithm: reported.algorithm, rows: reported.rows });
    expect([...store.blobs.keys()].sort()).toEqual(
      [
        `models/mlflow/${result.modelDigest}.manifest.json`,
        ...folder.files.map((f) => `models/mlflow/${result.modelDigest}/${f.path}`),
      ].sort(),
    );
  });

  it('stores a regressor and a gradient-boosted classifier (tree ensemble)', async () => {
    const ridge = trained('regression', 5);
    const result = await storeWorkerFolder(
      new MemoryStore() as never,
      write(ridge.folder),
      ridge.reported,
      1 << 20,
    );
    expect(result.artifact).toMatchObject({ task: 'regression', flavor: 'onnx', inputLayout: 'per-feature' });
    const gbt = trained('classification', 3, 'gradient_boosting');
    const trees = await storeWorkerFolder(
      new MemoryStore() as never,
      write(gbt.folder),
      gbt.reported,
      1 << 20,
    );
    expect(trees).toMatchObject({ algorithm: 'gradient_boosting', artifact: gbt.folder.artifact });
  });

  it('refuses an ONNX graph of another model with the same features: onnx_model_mismatch', async () => {
    const a = trained('regression', 5);
    const b = trained('regression', 6);
    const dir = write(a.folder, { 'model.onnx': b.folder.files.find((f) => f.path === 'model.onnx')!.bytes });
    await expect(storeWorkerFolder(untouchable, dir, a.reported, 1 << 20)).rejects.toMatchObject({
      code: 'onnx_model_mismatch',
      message: expect.stringContaining('not the same model'),
    });
    const c = trained('classification', 3);
    const d = trained('classification', 4);
    const swapped = write(c.folder, {
      'model.onnx': d.folder.files.find((f) => f.path === 'model.onnx')!.bytes,
    });
    await expect(storeWorkerFolder(untouchable, swapped, c.reported, 1 << 20)).rejects.toMatchObject({
      code: 'onnx_model_mismatch',
    });
  });

  it('refuses a model.json that is not the reported one, or a report of another algorithm', async () => {
    const { folder, reported } = trained('classification', 3);
    await expect(
      storeWorkerFolder(untouchable, write(folder), { ...reported, modelDigest: '0'.repeat(64) }, 1 << 20),
    ).rejects.toMatchObject({ code: 'model_digest_mismatch' });
    await expect(
      storeWorkerFolder(untouchable, write(folder), { ...reported, algorithm: 'gbt' }, 1 << 20),
    ).rejects.toMatchObject({ code: 'model_output_invalid', message: expect.stringContaining('gbt') });
  });

  it('refuses a folder without model.json, and one whose model.json is not a Sluice model', async () => {
    const { folder, reported } = trained('regression', 5);
    const dir = write({ ...folder, files: folder.files.filter((f) => f.path !== 'model.json') });
    await expect(storeWorkerFolder(untouchable, dir, reported, 1 << 20)).rejects.toMatchObject({
      code: 'model_output_invalid',
    });
    const bogus = Buffer.from('{"format":"nope"}');
    await expect(
      storeWorkerFolder(
        untouchable,
        write(folder, { 'model.json': bogus }),
        { ...reported, modelDigest: sha256(bogus) },
        1 << 20,
      ),
    ).rejects.toMatchObject({ code: 'model_output_invalid' });
  });

  it('makes check rows from the model’s features: numbers spread, every category in turn', () => {
    const { json } = trained('classification', 3);
    const def = loadModel(JSON.parse(json.toString('utf8'))).definition;
    const rows = checkRows(def);
    expect(rows).toHaveLength(8);
    const categorical = def.features.find((f) => f.type === 'categorical')!;
    const numeric = def.features.find((f) => f.type === 'numeric')!;
    expect(new Set(rows.map((r) => r[categorical.name]))).toEqual(
      new Set(categorical.type === 'categorical' ? categorical.categories : []),
    );
    expect(new Set(rows.map((r) => r[numeric.name])).size).toBe(8);
    expect(checkRows(def)).toEqual(rows);
  });
});

describe('collectWorkerModel: once, and a storage error left for the next poll', () => {
  const reported: JobResult = {
    modelUri: 'https://acct.blob.core.windows.net/jobs/j/model.json',
    modelDigest: 'a'.repeat(64),
    algorithm: 'ridge',
    task: 'regression',
    metrics: {},
    rows: { train: 1 },
    iterations: 1,
    converged: true,
  };
  const store = (over: Record<string, unknown>) =>
    ({
      tryGetJson: async () => undefined,
      list: () => {
        throw new Error('list not expected');
      },
      put: async () => {
        throw new Error('put not expected');
      },
      ...over,
    }) as never;

  it('answers from the record without listing the output again', async () => {
    const recorded = { ...reported, modelDigest: 'b'.repeat(64) };
    const s = store({
      tryGetJson: async () => ({ value: { jobId: 'j', collectedAt: 'x', result: recorded }, etag: 'e' }),
    });
    await expect(collectWorkerModel(s, 'j', reported, { maxBytes: 1 << 20 })).resolves.toEqual({
      ok: true,
      result: recorded,
    });
    const failed = store({
      tryGetJson: async () => ({
        value: { jobId: 'j', collectedAt: 'x', error: { code: 'onnx_invalid', message: 'm' } },
        etag: 'e',
      }),
    });
    await expect(collectWorkerModel(failed, 'j', reported, { maxBytes: 1 << 20 })).resolves.toEqual({
      ok: false,
      error: { code: 'onnx_invalid', message: 'm' },
    });
  });

  it('refuses a record it cannot read (job_record_invalid)', async () => {
    const s = store({ tryGetJson: async () => ({ value: { jobId: 'j' }, etag: 'e' }) });
    await expect(collectWorkerModel(s, 'j', reported, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: 'job_record_invalid',
    });
  });

  it('rethrows a storage error and records nothing, so the next poll tries again', async () => {
    const s = store({
      // eslint-disable-next-line require-yield
      list: async function* () {
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
      },
    });
    await expect(collectWorkerModel(s, 'j', reported, { maxBytes: 1 << 20 })).rejects.toThrow(
      'socket hang up',
    );
  });

  it('keeps a result that already names a stored folder', async () => {
    const folderResult = {
      ...reported,
      modelUri: `https://acct.blob.core.windows.net/models/mlflow/${'c'.repeat(64)}.manifest.json`,
    };
    await expect(collectWorkerModel(store({}), 'j', folderResult, { maxBytes: 1 << 20 })).resolves.toEqual({
      ok: true,
      result: folderResult,
    });
  });
});
