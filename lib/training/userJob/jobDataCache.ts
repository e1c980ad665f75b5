import { createHash, randomUUID } from 'node:crypto';
import { constants, createReadStream, readFileSync } from 'node:fs';
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { JobData, JobPart } from './jobData';

/**
 * A cache of the job data `writeJobData` writes (split CSV + Parquet + contract), so a resubmitted
 * job, a second attempt or another pipeline training on the same dataset with the same split and
 * columns starts its process without reading the dataset or writing a file.
 *
 * - Content-addressed: an entry's name is the SHA-256 of everything the files are a function of
 *   (`jobDataKey`: the dataset's digest, the contract, target, features in order, task, seed, split,
 *   JOB_DATA_FORMAT, bumped whenever writeJobData's output changes, and the Parquet writer's version).
 * - Written atomically: built in a `.tmp-*` folder beside the entries and renamed into place with its
 *   `entry.json` (the JobData and each file's size and SHA-256) inside; a reader never sees half an
 *   entry, and two writers of one key leave one entry.
 * - Checked by digest: a hit re-hashes every file against `entry.json` before a job gets it; an
 *   entry that fails (edited, truncated, malformed) is removed and rebuilt.
 * - Bounded: after a new entry, the least recently used ones go until at most `maxEntries` entries
 *   and `maxBytes` bytes remain; a result larger than `maxBytes` is not cached at all.
 * - A job gets its own copy of the files in its own data folder (a reflink where the file system
 *   supports them, else a plain copy), read-only (0444): a job that edits its input in place (root
 *   ignores 0444; another user may chmod) changes only its own copy, never the entry nor another
 *   job's files.
 * - The cache folder must be this user's and not writable by others (it lives in the shared temp
 *   folder by default); otherwise the cache is not used and the data is written as without it.
 */

/**
 * Bump when writeJobData writes different bytes or JobData changes shape: old entries then miss.
 * test/unit/training/jobDataFormat.test.ts holds the digest of what it writes for a fixed table, so
 * a change to the split or the formatting without a bump fails there.
 */
export const JOB_DATA_FORMAT = 1;

/**
 * The installed hyparquet-writer's version, part of the key: an upgrade that writes other Parquet
 * bytes then misses instead of serving files the new version would not write. Read from its
 * package.json (its exports map does not expose the file, so found beside the resolved entry point).
 */
export function parquetWriterVersion(): string {
  let dir = dirname(require.resolve('hyparquet-writer'));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'hyparquet-writer' && pkg.version) return pkg.version;
    } catch {
      // no package.json at this level
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

export interface JobDataCacheOptions {
  /** The cache folder. Default `<temp>/sluice-jobdata-<uid>` (not `sluice-job-*`: those are jobs' folders). */
  dir?: string;
  /** Default 16. */
  maxEntries?: number;
  /** Default 2 GiB. */
  maxBytes?: number;
}

export const defaultJobDataCacheDir = (): string =>
  join(tmpdir(), `sluice-jobdata-${process.getuid?.() ?? 'user'}`);

const DEFAULT_MAX_ENTRIES = 16;
const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;
const ENTRY_FILE = 'entry.json';

/** What the job data is a function of; the cache key is its digest. */
export interface JobDataKeyParts {
  datasetSha256: string;
  /** The request's dataset contract, or null when it carries none (then inferred from the dataset). */
  contract: unknown;
  target: string;
  features: readonly string[];
  task?: string;
  seed: number;
  split: unknown;
}

export function jobDataKey(parts: JobDataKeyParts): string {
  const canonical = JSON.stringify([
    JOB_DATA_FORMAT,
    parquetWriterVersion(),
    parts.datasetSha256,
    canonicalJson(parts.contract ?? null),
    parts.target,
    parts.features,
    parts.task ?? null,
    parts.seed,
    canonicalJson(parts.split ?? null),
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** JSON with object keys sorted, so the key does not depend on the order a document was built in. */
function canonicalJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalJson);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonicalJson((value as Record<string, unknown>)[k])]),
    );
  return value;
}

interface EntryFile {
  format: number;
  key: string;
  /** JobData with bare file names in place of paths. */
  data: JobData;
  files: { name: string; bytes: number; sha256: string }[];
}

export type JobDataCacheOutcome = 'hit' | 'miss' | 'rebuilt' | 'uncached';

export interface CachedJobData {
  data: JobData;
  /** hit: served from the cache; miss: built and stored; rebuilt: a corrupt entry was replaced; uncached: built without the cache. */
  cache: JobDataCacheOutcome;
  /** Why the cache was not used or an entry was dropped, when it was. */
  note?: string;
}

/**
 * The job data for `key` in `dir` (the job's own data folder): from the cache when a sound entry
 * is there, else built by `build` (writeJobData into the folder it is given) and stored.
 */
export async function cachedJobData(
  key: string,
  dir: string,
  build: (into: string) => Promise<JobData>,
  options: JobDataCacheOptions = {},
): Promise<CachedJobData> {
  const root = options.dir ?? defaultJobDataCacheDir();
  const unsafe = await unsafeRoot(root);
  if (unsafe) return { data: await build(dir), cache: 'uncached', note: unsafe };
  // Half-built folders of a preparation that was killed: swept here, not only after a miss (a cache
  // whose jobs all hit would keep them forever). A readdir of a small folder.
  await sweepDebris(root);
  const entry = join(root, key);

  /** The entry's files into the job's folder; if they went meanwhile, built there as without a cache. */
  const handOut = async (
    record: EntryFile,
    cache: JobDataCacheOutcome,
    note?: string,
  ): Promise<CachedJobData> => {
    try {
      return { data: await linkInto(entry, record, dir), cache, ...(note ? { note } : {}) };
    } catch (err) {
      // Pruned by another job between the check and the copies. Some read-only copies may be in the
      // folder already: emptied first, so the build starts from nothing.
      await rm(dir, { recursive: true, force: true });
      return { data: await build(dir), cache: 'uncached', note: (err as Error).message };
    }
  };

  const found = await verifiedEntry(entry, key);
  if (found.ok) {
    await utimes(join(entry, ENTRY_FILE), new Date(), new Date()).catch(() => undefined);
    return handOut(found.entry, 'hit');
  }
  let note: string | undefined;
  if (found.problem) {
    note = `cache entry ${key.slice(0, 12)} dropped: ${found.problem}`;
    await removeFolder(root, entry);
  }

  const temp = join(root, `.tmp-${key}-${randomUUID()}`);
  try {
    const built = await build(temp);
    const files = dataFileNames(built);
    const manifest = await Promise.all(
      files.map(async (name) => ({ name, ...(await digestFile(join(temp, name))) })),
    );
    const bytes = manifest.reduce((n, f) => n + f.bytes, 0);
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (bytes > maxBytes) {
      // Too big to keep: the job gets the files as built.
      await mkdir(dir, { recursive: true });
      for (const name of files) await moveFile(join(temp, name), join(dir, name));
      return {
        data: relocate(built, dir),
        cache: 'uncached',
        note: `${bytes} bytes is over the cache's ${maxBytes}`,
      };
    }
    await Promise.all(files.map((name) => chmod(join(temp, name), 0o444)));
    const record: EntryFile = { format: JOB_DATA_FORMAT, key, data: relocate(built, ''), files: manifest };
    await writeFile(join(temp, ENTRY_FILE), JSON.stringify(record));
    try {
      await rename(temp, entry);
    } catch (err) {
      // Another job stored the same key first: theirs is as good (checked again below).
      if (!['EEXIST', 'ENOTEMPTY', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      await rm(temp, { recursive: true, force: true });
      const theirs = await verifiedEntry(entry, key);
      if (!theirs.ok)
        throw new Error(`the job data cache entry ${key} is unreadable after a concurrent write`, {
          cause: err,
        });
      return handOut(theirs.entry, 'hit');
    }
    await prune(root, key, options.maxEntries ?? DEFAULT_MAX_ENTRIES, maxBytes);
    return handOut(record, found.problem ? 'rebuilt' : 'miss', note);
  } finally {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Why the cache folder must not be used (made, if missing, as 0700), or undefined when it may. */
async function unsafeRoot(root: string): Promise<string | undefined> {
  try {
    await mkdir(root, { recursive: true, mode: 0o700 });
    const info = await lstat(root);
    if (!info.isDirectory()) return `${root} is not a folder`;
    const uid = process.getuid?.();
    if (uid !== undefined && info.uid !== uid) return `${root} belongs to another user`;
    if (info.mode & 0o022) return `${root} is writable by other users`;
    return undefined;
  } catch (err) {
    return `${root}: ${(err as Error).message}`;
  }
}

type Verified = { ok: true; entry: EntryFile } | { ok: false; problem?: string };

/** The entry's record when every file it lists is there with its size and digest. */
async function verifiedEntry(entry: string, key: string): Promise<Verified> {
  let text: string;
  try {
    text = await readFile(join(entry, ENTRY_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      return { ok: false, problem: (err as Error).message };
    // No record: no entry (a folder without one is debris of a crash; rename makes entries whole).
    return (await exists(entry)) ? { ok: false, problem: `${ENTRY_FILE} is missing` } : { ok: false };
  }
  let record: EntryFile;
  try {
    record = JSON.parse(text) as EntryFile;
  } catch {
    return { ok: false, problem: `${ENTRY_FILE} is not JSON` };
  }
  if (
    record?.format !== JOB_DATA_FORMAT ||
    record.key !== key ||
    !Array.isArray(record.files) ||
    !record.data
  )
    return { ok: false, problem: `${ENTRY_FILE} is not an entry of format ${JOB_DATA_FORMAT} for this key` };
  const expected = dataFileNames(record.data);
  if (expected.some((name) => !record.files.some((f) => f.name === name)))
    return { ok: false, problem: `${ENTRY_FILE} does not list every data file` };
  for (const f of record.files) {
    if (basename(f.name) !== f.name) return { ok: false, problem: `${ENTRY_FILE} names ${f.name}` };
    const file = join(entry, f.name);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) return { ok: false, problem: `${f.name} is missing` };
    if (info.size !== f.bytes)
      return { ok: false, problem: `${f.name} has ${info.size} bytes, not ${f.bytes}` };
  }
  const digests = await Promise.all(record.files.map((f) => digestFile(join(entry, f.name))));
  const bad = record.files.find((f, i) => digests[i]!.sha256 !== f.sha256);
  if (bad) return { ok: false, problem: `${bad.name} does not match its SHA-256` };
  return { ok: true, entry: record };
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

async function digestFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The file names a JobData refers to (its paths' last parts). */
function dataFileNames(data: JobData): string[] {
  const parts: JobPart[] = [data.train, data.validation, data.holdout];
  return [...parts.flatMap((p) => [p.csv, p.parquet]), data.contractFile].map((p) => basename(p));
}

/** The JobData with its files in `dir` (bare names when `dir` is ''). */
function relocate(data: JobData, dir: string): JobData {
  const at = (p: string) => (dir ? join(dir, basename(p)) : basename(p));
  const part = (p: JobPart): JobPart => ({ ...p, csv: at(p.csv), parquet: at(p.parquet) });
  return {
    ...data,
    dir,
    train: part(data.train),
    validation: part(data.validation),
    holdout: part(data.holdout),
    contractFile: at(data.contractFile),
  };
}

/**
 * The entry's files in the job's folder, each the job's own: a reflink where the file system has them
 * (copy-on-write, no bytes copied), else a copy. Not hard links: those share the entry's inode, root
 * ignores 0444 and a job of the same user may chmod, so a job writing its input in place would
 * change the entry and every other job's files. Read-only (0444) still, as a hint.
 */
async function linkInto(entry: string, record: EntryFile, dir: string): Promise<JobData> {
  await mkdir(dir, { recursive: true });
  await Promise.all(
    record.files.map(async ({ name }) => {
      const to = join(dir, name);
      await rm(to, { force: true });
      await copyFile(join(entry, name), to, constants.COPYFILE_FICLONE);
      await chmod(to, 0o444);
    }),
  );
  return relocate(record.data, dir);
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, to);
  }
}

/** Removes a folder without a window where it is half there: renamed aside first. */
async function removeFolder(root: string, folder: string): Promise<void> {
  const aside = join(root, `.trash-${randomUUID()}`);
  try {
    await rename(folder, aside);
  } catch {
    return;
  }
  await rm(aside, { recursive: true, force: true }).catch(() => undefined);
}

/** A `.tmp-*` or `.trash-*` folder this old is debris: no writer takes that long to build an entry. */
export const DEBRIS_AGE_MS = 3_600_000;

/** Removes debris (`.tmp-*`, `.trash-*`) of writers that died mid-build, once it is DEBRIS_AGE_MS old. */
async function sweepDebris(root: string): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith('.'))) {
    const path = join(root, name);
    const info = await lstat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > DEBRIS_AGE_MS)
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Drops the least recently used entries past the bounds (never `keep`); debris is cachedJobData's sweep's. */
async function prune(root: string, keep: string, maxEntries: number, maxBytes: number): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  const entries: { name: string; used: number; bytes: number }[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue; // a build in progress, or debris (sweepDebris)
    const path = join(root, name);
    try {
      const recordPath = join(path, ENTRY_FILE);
      const [info, text] = await Promise.all([stat(recordPath), readFile(recordPath, 'utf8')]);
      const record = JSON.parse(text) as EntryFile;
      entries.push({ name, used: info.mtimeMs, bytes: record.files.reduce((n, f) => n + f.bytes, 0) });
    } catch {
      entries.push({ name, used: 0, bytes: 0 }); // unreadable: first to go
    }
  }
  entries.sort((a, b) => b.used - a.used);
  let count = 0;
  let bytes = 0;
  for (const e of entries) {
    count++;
    bytes += e.bytes;
    if (e.name !== keep && (count > maxEntries || bytes > maxBytes)) {
      await removeFolder(root, join(root, e.name));
      count--;
      bytes -= e.bytes;
    }
  }
}
