import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { NonRetriableError } from '../errors';

/** One file of a model folder: its path inside the folder ('/'-separated), SHA-256 and size. */
export interface ManifestEntry {
  path: string;
  sha256: string;
  bytes: number;
}

export interface FolderLimits {
  /** The whole folder's size limit in bytes. */
  maxBytes: number;
  /** At most this many files (default 10,000). */
  maxFiles?: number;
}

export const defaultMaxFiles = 10_000;
/** A suggested whole-folder limit for the setting that feeds `maxBytes`: 512 MiB. */
export const defaultModelMaxBytes = 512 * 1024 * 1024;
const maxDepth = 32;

/** The bytes of one download so far, counted across all of its files (the limit is the folder's). */
export interface ByteCount {
  bytes: number;
}

/**
 * A pass-through for one file of a model folder being downloaded: adds each chunk to `count` and
 * fails the stream with `model_too_large` (the message `tooLarge()`, in each caller's own words) as
 * soon as the count goes past `maxBytes`, whatever the listing said (it can be stale, or wrong).
 */
export function byteLimit(count: ByteCount, maxBytes: number, tooLarge: () => string): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      count.bytes += chunk.length;
      if (count.bytes > maxBytes) {
        done(new NonRetriableError('model_too_large', tooLarge()));
        return;
      }
      done(null, chunk);
    },
  });
}

/** By the paths' UTF-8 bytes (as `LC_ALL=C sort`), the same under every locale. */
const byPath = (a: { path: string }, b: { path: string }): number =>
  Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8'));

const invalid = (message: string): NonRetriableError =>
  new NonRetriableError('model_output_invalid', message);

/**
 * Lists every regular file under `dir`, checking the limits before reading a byte: a symlink is
 * followed only to a regular file inside the folder; a symlink out of it, a directory symlink, a
 * socket or device, a name with a control character, more than `maxFiles` files or more than
 * `maxBytes` bytes stop it with a NonRetriableError.
 */
async function listFiles(
  dir: string,
  limits: FolderLimits,
): Promise<{ path: string; abs: string; bytes: number }[]> {
  let root: string;
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw invalid(`the model output ${dir} is not a folder`);
    root = await realpath(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NonRetriableError('model_output_empty', `the job wrote nothing: ${dir} does not exist`);
    }
    throw err;
  }
  const maxFiles = limits.maxFiles ?? defaultMaxFiles;
  const files: { path: string; abs: string; bytes: number }[] = [];
  let total = 0;
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > maxDepth) throw invalid(`the model folder nests deeper than ${maxDepth} levels at ${rel}`);
    const entries = await readdir(abs, { withFileTypes: true });
    for (const entry of entries) {
      const name = entry.name;
      const relPath = rel ? `${rel}/${name}` : name;
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f\\]/.test(name)) {
        throw invalid(
          `the model folder has a file name with a control character or backslash: ${JSON.stringify(relPath)}`,
        );
      }
      const full = path.join(abs, name);
      let info = await lstat(full);
      if (info.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(full);
        } catch {
          throw invalid(`the symlink ${relPath} in the model folder points nowhere`);
        }
        if (target !== root && !target.startsWith(root + path.sep)) {
          throw invalid(`the symlink ${relPath} points outside the model folder`);
        }
        info = await stat(full);
        if (!info.isFile()) throw invalid(`the symlink ${relPath} does not point to a regular file`);
      }
      if (info.isDirectory()) {
        await walk(full, relPath, depth + 1);
      } else if (info.isFile()) {
        files.push({ path: relPath, abs: full, bytes: info.size });
        total += info.size;
        if (files.length > maxFiles) throw invalid(`the model folder has more than ${maxFiles} files`);
        if (total > limits.maxBytes) {
          throw new NonRetriableError(
            'model_too_large',
            `the model folder is over its size limit of ${limits.maxBytes} bytes (at least ${total} bytes)`,
          );
        }
      } else {
        throw invalid(`${relPath} in the model folder is not a regular file or folder`);
      }
    }
  };
  await walk(root, '', 0);
  if (files.length === 0)
    throw new NonRetriableError('model_output_empty', `the job wrote nothing to ${dir}`);
  return files.sort(byPath);
}

/** SHA-256 and size of what was actually read (a file still being written may differ from its stat). */
async function sha256File(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * The model digest: SHA-256 of the manifest's canonical text, one line per file in path order,
 * `<sha256 hex> <bytes> <path>\n`. Any changed, added, removed or renamed file changes it.
 */
export function manifestDigest(manifest: readonly ManifestEntry[]): string {
  const hash = createHash('sha256');
  for (const e of [...manifest].sort(byPath)) hash.update(`${e.sha256} ${e.bytes} ${e.path}\n`, 'utf8');
  return hash.digest('hex');
}

/** Every file of the folder with its SHA-256 and size, sorted by path, and the folder's digest. */
export async function readManifest(
  dir: string,
  limits: FolderLimits,
): Promise<{ manifest: ManifestEntry[]; digest: string }> {
  const files = await listFiles(dir, limits);
  const manifest: ManifestEntry[] = [];
  let total = 0;
  for (const f of files) {
    const { sha256, bytes } = await sha256File(f.abs);
    total += bytes;
    if (total > limits.maxBytes) {
      throw new NonRetriableError(
        'model_too_large',
        `the model folder is over its size limit of ${limits.maxBytes} bytes (it grew while being read)`,
      );
    }
    manifest.push({ path: f.path, sha256, bytes });
  }
  return { manifest, digest: manifestDigest(manifest) };
}
