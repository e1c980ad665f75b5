import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { manifestDigest, readManifest } from '../../../lib/mlmodel';
import { fixtures, scratch } from './support';

const limits = { maxBytes: 1024 * 1024 };
const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});
async function copyOf(fixture: string): Promise<string> {
  const s = await scratch(fixture);
  cleanups.push(s.cleanup);
  return s.dir;
}

describe('the model manifest and digest', () => {
  it('lists every file with its SHA-256 and size; the digest is SHA-256 of "<sha> <bytes> <path>\\n" lines', async () => {
    const dir = path.join(fixtures, 'classifier-per-feature');
    const { manifest, digest } = await readManifest(dir, limits);
    for (const e of manifest) {
      const bytes = await readFile(path.join(dir, e.path));
      expect(e).toEqual({ path: e.path, sha256: sha256(bytes), bytes: bytes.length });
    }
    const text = manifest.map((e) => `${e.sha256} ${e.bytes} ${e.path}\n`).join('');
    expect(digest).toBe(sha256(text));
  });

  it('is stable: the same bytes in another folder give the same digest', async () => {
    const a = await readManifest(path.join(fixtures, 'regressor-tensor'), limits);
    const b = await readManifest(await copyOf('regressor-tensor'), limits);
    expect(b).toEqual(a);
  });

  it('changes when any byte of any file changes', async () => {
    const before = await readManifest(path.join(fixtures, 'regressor-tensor'), limits);
    const dir = await copyOf('regressor-tensor');
    const onnx = await readFile(path.join(dir, 'model.onnx'));
    onnx.writeUInt8(onnx.readUInt8(onnx.length - 1) ^ 1, onnx.length - 1);
    await writeFile(path.join(dir, 'model.onnx'), onnx);
    const after = await readManifest(dir, limits);
    expect(after.digest).not.toBe(before.digest);
    expect(after.manifest.find((e) => e.path === 'MLmodel')).toEqual(
      before.manifest.find((e) => e.path === 'MLmodel'),
    );
  });

  it('changes when a file is added or renamed', async () => {
    const before = await readManifest(path.join(fixtures, 'regressor-tensor'), limits);
    const dir = await copyOf('regressor-tensor');
    await writeFile(path.join(dir, 'progress.json'), '{}');
    const added = await readManifest(dir, limits);
    expect(added.digest).not.toBe(before.digest);
    const other = await copyOf('regressor-tensor');
    await rename(path.join(other, 'model.onnx'), path.join(other, 'model2.onnx'));
    expect((await readManifest(other, limits)).digest).not.toBe(before.digest);
  });

  it('does not depend on the order entries are given in', () => {
    const entries = [
      { path: 'b', sha256: 'f'.repeat(64), bytes: 2 },
      { path: 'B', sha256: 'e'.repeat(64), bytes: 1 },
      { path: 'a/z', sha256: '0'.repeat(64), bytes: 3 },
    ];
    expect(manifestDigest(entries)).toBe(manifestDigest([...entries].reverse()));
    // Sorted by UTF-8 bytes: upper case before lower case, whatever the locale.
    expect(manifestDigest(entries)).toBe(
      sha256(`${'e'.repeat(64)} 1 B\n${'0'.repeat(64)} 3 a/z\n${'f'.repeat(64)} 2 b\n`),
    );
  });

  it('sorts by UTF-8 bytes, not UTF-16 code units (a private-use character before an emoji in UTF-16)', () => {
    const emoji = { path: '\u{1F600}', sha256: 'a'.repeat(64), bytes: 1 };
    const privateUse = { path: '\uE000', sha256: 'b'.repeat(64), bytes: 1 };
    expect(manifestDigest([emoji, privateUse])).toBe(
      sha256(`${'b'.repeat(64)} 1 \uE000\n${'a'.repeat(64)} 1 \u{1F600}\n`),
    );
  });
});
