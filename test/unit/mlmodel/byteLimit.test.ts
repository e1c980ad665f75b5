/**
 * byteLimit, the counting pass-through every model-folder download shares (Unity Catalog, the
 * MLflow artifact proxy and Databricks stores, a remote job's output): the count runs across the
 * folder's files, and the stream fails with model_too_large and the caller's message once past it.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteCount } from '../../../lib/mlmodel/folder';
import { byteLimit } from '../../../lib/mlmodel/folder';

const sink = (into: Buffer[]) =>
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      into.push(chunk);
      done();
    },
  });

describe('byteLimit', () => {
  it('passes every byte through and counts across files, up to the limit itself', async () => {
    const count: ByteCount = { bytes: 0 };
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([Buffer.alloc(4), Buffer.alloc(3)]),
      byteLimit(count, 10, () => 'x'),
      sink(out),
    );
    await pipeline(
      Readable.from([Buffer.alloc(3)]),
      byteLimit(count, 10, () => 'x'),
      sink(out),
    );
    expect(count.bytes).toBe(10);
    expect(Buffer.concat(out)).toHaveLength(10);
  });

  it('fails with model_too_large and the caller’s message at the first byte past the limit', async () => {
    const count: ByteCount = { bytes: 8 };
    const out: Buffer[] = [];
    const failed = pipeline(
      Readable.from([Buffer.alloc(2), Buffer.alloc(1), Buffer.alloc(5)]),
      byteLimit(count, 10, () => 'f.bin is bigger than listed'),
      sink(out),
    );
    await expect(failed).rejects.toMatchObject({
      code: 'model_too_large',
      message: 'f.bin is bigger than listed',
    });
    expect(Buffer.concat(out)).toHaveLength(2);
    expect(count.bytes).toBe(11);
  });
});
