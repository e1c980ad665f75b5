import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { NonRetriableError } from '../errors';
import resources from '../resources.json';
import type { ArtifactStore, BlobLocation } from '../storage/blob';
import type { FolderLimits, ManifestEntry } from './folder';
import { manifestDigest, readManifest } from './folder';

/**
 * MLflow model folders in Blob Storage. A folder's files go under `mlflow/<digest>/` of the `models`
 * container, and its manifest (every file's path, SHA-256 and size) beside them at
 * `mlflow/<digest>.manifest.json`. The manifest is written last: it is the commit point, so a folder
 * whose upload was cut short is never named by a manifest. The manifest's URI is the model's
 * `artifactUri`; its digest (`manifestDigest`) is the one the registry records and approval binds to.
 * Reading checks the manifest against that digest and every file against its manifest entry, so a
 * swapped, edited or missing file is refused before a byte of it is used.
 */

export const MODEL_FOLDER_PREFIX = 'mlflow';
const MANIFEST_SUFFIX = '.manifest.json';
export const MODEL_FOLDER_MANIFEST_FORMAT = 'sluice.model-folder/v1';

/** The store operations model folders need (`ArtifactStore` has them). */
export type FolderStore = Pick<ArtifactStore, 'put' | 'getBuffer' | 'uri' | 'parseUri'>;

/**
 * Why `file` cannot be a path inside a model folder, or undefined when it can: a relative,
 * '/'-separated path whose segments are neither empty, `.` nor `..`, without backslashes or
 * control characters. Every manifest path (read or written) and every downloaded blob name passes
 * this one check, so no file is ever read or written outside its folder.
 */
export function folderPathProblem(file: string): string | undefined {
  if (file === '') return 'an empty path';
  if (file.startsWith('/')) return 'an absolute path';
  if (file.includes('\\')) return 'a backslash';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(file)) return 'a control character';
  const segments = file.split('/');
  if (segments.includes('..')) return 'a ".." segment';
  if (segments.includes('.')) return 'a "." segment';
  if (segments.includes('')) return 'an empty segment';
  return undefined;
}

const manifestSchema = z.object({
  format: z.literal(MODEL_FOLDER_MANIFEST_FORMAT),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  files: z
    .array(
      z.object({
        path: z.string().superRefine((p, ctx) => {
          const problem = folderPathProblem(p);
          if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `bad file path (${problem})` });
        }),
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        bytes: z.number().int().min(0),
      }),
    )
    .min(1),
});

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const container = resources.blobContainers.models;
const fileLocation = (digest: string, file: string): BlobLocation => ({
  container,
  path: `${MODEL_FOLDER_PREFIX}/${digest}/${file}`,
});
const manifestLocation = (digest: string): BlobLocation => ({
  container,
  path: `${MODEL_FOLDER_PREFIX}/${digest}${MANIFEST_SUFFIX}`,
});

/** True when an artifact URI names a stored model folder's manifest (not a legacy JSON model). */
export function isModelFolderUri(uri: string): boolean {
  return new RegExp(`/${MODEL_FOLDER_PREFIX}/[0-9a-f]{64}${MANIFEST_SUFFIX.replace('.', '\\.')}$`).test(uri);
}

/** A file's bytes; `path` is '/'-separated, relative to the folder. */
export interface FolderFile {
  path: string;
  bytes: Uint8Array;
}

export interface StoredFolderRef {
  /** The manifest's URI: the model's `artifactUri`. */
  uri: string;
  digest: string;
  manifest: ManifestEntry[];
}

async function putOnce(store: FolderStore, at: BlobLocation, bytes: Uint8Array, contentType: string) {
  const put = await store.put(at, bytes, { contentType, condition: 'create' });
  if (!put.ok) {
    // A content-addressed name holding other bytes: someone wrote there who should not have.
    throw new NonRetriableError(
      'model_folder_conflict',
      `${at.container}/${at.path} already holds different content; refusing to overwrite it`,
    );
  }
}

const contentTypeOf = (file: string): string =>
  file.endsWith('.json')
    ? 'application/json'
    : file.endsWith('.onnx')
      ? 'application/octet-stream'
      : file === 'MLmodel' || file.endsWith('.yaml') || file.endsWith('.txt')
        ? 'text/plain; charset=utf-8'
        : 'application/octet-stream';

/**
 * Stores a folder given as files in memory (the built-in worker's output). Idempotent: storing the
 * same files again finds them there and returns the same reference.
 */
export async function storeModelFiles(
  store: FolderStore,
  files: readonly FolderFile[],
): Promise<StoredFolderRef> {
  if (files.length === 0) throw new NonRetriableError('model_output_empty', 'a model folder needs files');
  const seen = new Set<string>();
  const manifest: ManifestEntry[] = files.map((f) => {
    const problem = folderPathProblem(f.path) ?? (seen.has(f.path) ? 'repeated' : undefined);
    if (problem) {
      throw new NonRetriableError(
        'model_output_invalid',
        `bad file path in a model folder (${problem}): ${JSON.stringify(f.path)}`,
      );
    }
    seen.add(f.path);
    return { path: f.path, sha256: sha256Hex(f.bytes), bytes: f.bytes.byteLength };
  });
  const digest = manifestDigest(manifest);
  for (const f of files) await putOnce(store, fileLocation(digest, f.path), f.bytes, contentTypeOf(f.path));
  return commit(store, digest, manifest);
}

/**
 * Sluice's own description of a user model (its ModelArtifact as JSON), added to the stored folder
 * when the description is too big to travel on activity payloads; `describeModel` (lib/scoring)
 * reads it back. A job's own output may not use this name.
 */
export const ARTIFACT_SIDECAR_FILE = 'sluice-artifact.json';

/**
 * Stores a folder from disk (what a user job wrote, after `checkModelFolder`). When `expected` is
 * given (the checked manifest's digest), the folder must still hash to it: a job that changed its
 * output after the check is refused. `extra` files (Sluice's own, e.g. ARTIFACT_SIDECAR_FILE) are
 * stored with it and are part of the stored folder's digest; one the folder already has is refused.
 */
export async function storeModelFolder(
  store: FolderStore,
  dir: string,
  limits: FolderLimits,
  expected?: string,
  extra: readonly FolderFile[] = [],
): Promise<StoredFolderRef> {
  const read = await readManifest(dir, limits);
  if (expected && read.digest !== expected) {
    throw new NonRetriableError(
      'model_output_changed',
      `the model folder changed after it was checked (digest ${read.digest}, checked ${expected})`,
    );
  }
  const extraEntries: ManifestEntry[] = extra.map((f) => {
    const problem = folderPathProblem(f.path);
    if (problem) {
      throw new NonRetriableError(
        'model_output_invalid',
        `bad file path in a model folder (${problem}): ${JSON.stringify(f.path)}`,
      );
    }
    if (read.manifest.some((e) => e.path === f.path)) {
      throw new NonRetriableError(
        'model_output_invalid',
        `the model folder has a file named ${f.path}, a name Sluice reserves for its own`,
      );
    }
    return { path: f.path, sha256: sha256Hex(f.bytes), bytes: f.bytes.byteLength };
  });
  const manifest = [...read.manifest, ...extraEntries].sort((a, b) =>
    Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8')),
  );
  const digest = extra.length > 0 ? manifestDigest(manifest) : read.digest;
  for (const f of extra) await putOnce(store, fileLocation(digest, f.path), f.bytes, contentTypeOf(f.path));
  for (const entry of read.manifest) {
    const bytes = await readFile(path.join(dir, ...entry.path.split('/')));
    if (sha256Hex(bytes) !== entry.sha256) {
      throw new NonRetriableError(
        'model_output_changed',
        `${entry.path} changed while the model folder was stored`,
      );
    }
    await putOnce(store, fileLocation(digest, entry.path), bytes, contentTypeOf(entry.path));
  }
  return commit(store, digest, manifest);
}

async function commit(
  store: FolderStore,
  digest: string,
  manifest: ManifestEntry[],
): Promise<StoredFolderRef> {
  const body = JSON.stringify({ format: MODEL_FOLDER_MANIFEST_FORMAT, digest, files: manifest });
  const at = manifestLocation(digest);
  await putOnce(store, at, Buffer.from(body, 'utf8'), 'application/json');
  return { uri: store.uri(at), digest, manifest };
}

/** A stored model folder, opened: its verified manifest and verified reads of its files. */
export interface StoredModelFolder {
  uri: string;
  digest: string;
  manifest: ManifestEntry[];
  has(file: string): boolean;
  /** The file's bytes, refused unless they hash to the manifest's entry. */
  read(file: string): Promise<Buffer>;
  /** Writes every file under `dir` (each verified), e.g. for a `score` command to open. */
  download(dir: string): Promise<void>;
}

/**
 * Opens the folder whose manifest is at `uri`, refusing it unless the manifest hashes to `digest`
 * (the registered model digest) and is the manifest of that digest's own folder.
 */
export async function openModelFolder(
  store: FolderStore,
  uri: string,
  digest: string,
): Promise<StoredModelFolder> {
  if (!isModelFolderUri(uri)) {
    throw new NonRetriableError('invalid_model', `${uri} is not a stored model folder's manifest`);
  }
  const { data } = await store.getBuffer(uri);
  let parsed;
  try {
    parsed = manifestSchema.parse(JSON.parse(data.toString('utf8')));
  } catch (err) {
    throw new NonRetriableError('invalid_model', `the model folder manifest at ${uri} is malformed`, {
      cause: err,
    });
  }
  const actual = manifestDigest(parsed.files);
  if (actual !== digest || parsed.digest !== digest) {
    throw new NonRetriableError(
      'model_digest_mismatch',
      `model folder digest ${actual} does not match the registered digest ${digest}; refusing to load it`,
    );
  }
  // The files are read next to the manifest, under the folder of the digest that was checked.
  const at = store.parseUri(uri);
  const base = at.path.slice(0, -MANIFEST_SUFFIX.length);
  const byPath = new Map(parsed.files.map((f) => [f.path, f]));
  const read = async (file: string): Promise<Buffer> => {
    const entry = byPath.get(file);
    if (!entry) throw new NonRetriableError('invalid_model', `the model folder has no file ${file}`);
    const { data: bytes } = await store.getBuffer(
      { container: at.container, path: `${base}/${file}` },
      { sha256: entry.sha256 },
    );
    if (bytes.byteLength !== entry.bytes) {
      throw new NonRetriableError(
        'model_digest_mismatch',
        `${file} has ${bytes.byteLength} bytes, not ${entry.bytes}`,
      );
    }
    return bytes;
  };
  return {
    uri,
    digest,
    manifest: parsed.files,
    has: (file) => byPath.has(file),
    read,
    download: async (dir) => {
      for (const f of parsed.files) {
        const target = path.join(dir, ...f.path.split('/'));
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, await read(f.path));
      }
    },
  };
}
