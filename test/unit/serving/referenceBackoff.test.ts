/**
 * A prediction reference that cannot be made is not re-scored every monitoring window
 * (lib/serving/reference.ts monitoredReference): the failure is remembered by model digest and data
 * digest beside where the reference would be recorded, and tried again 1 h later, then 2 h, … at
 * most 24 h; another model or data digest is tried at once; a transient failure is not remembered.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ZodType } from 'zod';
import { DATASET_COLUMNAR_SHA256_TAG, DATASET_COLUMNAR_URI_TAG } from '../../../lib/contracts/pipeline';
import { NonRetriableError, TransientError } from '../../../lib/errors';
import type { ModelVersion } from '../../../lib/registry/records';
import type { ReferenceDeps } from '../../../lib/serving/reference';
import {
  REFERENCE_RETRY,
  monitoredReference,
  referenceFailurePath,
  referenceRetryDelayMs,
} from '../../../lib/serving/reference';

const T0 = Date.parse('2026-03-02T10:00:00.000Z');
const MIN = 60_000;
const HOUR = 3_600_000;
const wages = JSON.parse(
  readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
) as { training: unknown };

function version(over: Partial<ModelVersion> = {}, data = 'd'): ModelVersion {
  return {
    modelName: 'wages',
    version: 4,
    modelDigest: `sha256:${'a'.repeat(64)}`,
    artifactUri: 'https://example/models/wages/4/model.json',
    trainingSpec: wages.training,
    tags: {
      [DATASET_COLUMNAR_URI_TAG]: 'https://example/datasets/columnar/x',
      [DATASET_COLUMNAR_SHA256_TAG]: data.repeat(64),
    },
    ...over,
  } as unknown as ModelVersion;
}

/** Blob by path, with the create / If-Match conditions of ArtifactStore.put; the dataset read fails as told. */
function memoryArtifacts(failWith: () => Error) {
  const blobs = new Map<string, { text: string; etag: number }>();
  let etags = 0;
  const datasetReads = { count: 0 };
  const artifacts = {
    async tryGetJson<T>(ref: { path: string }, schema?: ZodType<T>) {
      const b = blobs.get(ref.path);
      if (!b) return undefined;
      const value = JSON.parse(b.text) as unknown;
      return { value: schema ? schema.parse(value) : (value as T), etag: String(b.etag) };
    },
    async put(
      ref: { path: string },
      data: string,
      options: { condition?: 'create' | { ifMatch: string } } = {},
    ) {
      const b = blobs.get(ref.path);
      const c = options.condition ?? 'create';
      if (c === 'create' ? b !== undefined : String(b?.etag) !== c.ifMatch) return { ok: false as const };
      blobs.set(ref.path, { text: data, etag: ++etags });
      return { ok: true as const };
    },
    async getBuffer() {
      datasetReads.count++;
      throw failWith();
    },
  };
  return { deps: { artifacts, onnx: {} } as unknown as ReferenceDeps, blobs, datasetReads };
}

describe('a failing prediction reference backs off', () => {
  it('doubles from 1 h to at most 24 h', () => {
    expect([1, 2, 3, 5, 6, 20].map(referenceRetryDelayMs)).toEqual([
      HOUR,
      2 * HOUR,
      4 * HOUR,
      16 * HOUR,
      24 * HOUR,
      REFERENCE_RETRY.maxMs,
    ]);
  });

  it('scores once, remembers the failure, and does not score again before its retry time', async () => {
    const { deps, blobs, datasetReads } = memoryArtifacts(
      () => new NonRetriableError('blob_not_found', 'the columnar dataset is gone'),
    );
    const v = version();
    const first = await monitoredReference(deps, v, new Date(T0));
    expect(datasetReads.count).toBe(1);
    expect(first).toEqual({
      reference: undefined,
      rows: 0,
      failure: {
        reason: 'the columnar dataset is gone',
        failures: 1,
        firstAt: new Date(T0).toISOString(),
        lastAt: new Date(T0).toISOString(),
        retryAfter: new Date(T0 + HOUR).toISOString(),
        backedOff: false,
      },
    });
    // Remembered beside where the reference would be, with both digests.
    const stored = JSON.parse(blobs.get(referenceFailurePath(v))!.text) as Record<string, unknown>;
    expect(referenceFailurePath(v)).toBe(`monitoring/references/wages/v4-${'a'.repeat(16)}.failed.json`);
    expect(stored).toMatchObject({ modelDigest: v.modelDigest, dataDigest: 'd'.repeat(64), failures: 1 });

    // Windows inside the back-off: no scoring, the same failure, said as backed off.
    for (const later of [1, 30, 59]) {
      const again = await monitoredReference(deps, v, new Date(T0 + later * MIN));
      expect(again.failure).toMatchObject({
        failures: 1,
        backedOff: true,
        reason: 'the columnar dataset is gone',
      });
    }
    expect(datasetReads.count).toBe(1);

    // Past it: tried again, failed again, the next wait doubled.
    const second = await monitoredReference(deps, v, new Date(T0 + 61 * MIN));
    expect(datasetReads.count).toBe(2);
    expect(second.failure).toMatchObject({
      failures: 2,
      firstAt: new Date(T0).toISOString(),
      retryAfter: new Date(T0 + 61 * MIN + 2 * HOUR).toISOString(),
      backedOff: false,
    });
    await monitoredReference(deps, v, new Date(T0 + 62 * MIN + HOUR));
    expect(datasetReads.count).toBe(2);
  });

  it('another model digest or other data is tried at once', async () => {
    const { deps, datasetReads } = memoryArtifacts(() => new Error('bad ONNX graph'));
    await monitoredReference(deps, version(), new Date(T0));
    const otherData = await monitoredReference(deps, version({}, 'e'), new Date(T0 + MIN));
    expect(datasetReads.count).toBe(2);
    expect(otherData.failure).toMatchObject({ failures: 1, backedOff: false, reason: 'bad ONNX graph' });
    await monitoredReference(
      deps,
      version({ modelDigest: `sha256:${'a'.repeat(63)}b` }),
      new Date(T0 + 2 * MIN),
    );
    expect(datasetReads.count).toBe(3);
  });

  it('a transient failure (storage unavailable) is not remembered: it is thrown, and tried next window', async () => {
    const { deps, blobs, datasetReads } = memoryArtifacts(
      () => new TransientError('storage_unavailable', 'blob service unavailable (503)'),
    );
    const v = version();
    await expect(monitoredReference(deps, v, new Date(T0))).rejects.toThrow('blob service unavailable (503)');
    expect(blobs.has(referenceFailurePath(v))).toBe(false);
    await expect(monitoredReference(deps, v, new Date(T0 + MIN))).rejects.toThrow(/503/);
    expect(datasetReads.count).toBe(2);
  });
});
