/**
 * The job data a local user job gets: the Parquet files written in a worker thread are the bytes the
 * in-thread writer writes, and the job data cache (lib/training/userJob/jobDataCache.ts) hands out
 * the bytes a fresh write gives — on a miss, on a hit (without building), and after an entry was
 * corrupted (rebuilt) — stays within its bounds, and is not used from a folder others may write.
 */
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  utimes,
  writeFile,
  appendFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { BOOL_NULL, emptyIssues, NULL_CODE, type Table } from '../../../lib/data/table';
import type { JobData, JobDataInput } from '../../../lib/training/userJob/jobData';
import { writeJobData } from '../../../lib/training/userJob/jobData';
import {
  cachedJobData,
  DEBRIS_AGE_MS,
  jobDataKey,
  type JobDataCacheOptions,
} from '../../../lib/training/userJob/jobDataCache';

const DATA_FILES = [
  'contract.json',
  'holdout.csv',
  'holdout.parquet',
  'train.csv',
  'train.parquet',
  'validation.csv',
  'validation.parquet',
];

/** Every column type, with nulls in each, and values whose text needs care (quotes, commas, exponents). */
function mixedTable(rows: number, seed = 1): Table {
  let s = seed;
  const rand = () => (s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const num = Float64Array.from({ length: rows }, (_, i) =>
    i % 17 === 3 ? NaN : (rand() - 0.5) * 10 ** ((i % 9) - 4),
  );
  const int = Float64Array.from({ length: rows }, (_, i) =>
    i % 13 === 5 ? NaN : Math.floor(rand() * 1e6) - 5e5,
  );
  const when = Float64Array.from({ length: rows }, (_, i) =>
    i % 11 === 7 ? NaN : 1.7e12 + Math.floor(rand() * 1e10),
  );
  const flag = Uint8Array.from({ length: rows }, (_, i) => (i % 7 === 1 ? BOOL_NULL : rand() < 0.5 ? 1 : 0));
  const cat = Int32Array.from({ length: rows }, (_, i) =>
    i % 19 === 2 ? NULL_CODE : Math.floor(rand() * 3),
  );
  const text = Int32Array.from({ length: rows }, (_, i) =>
    i % 23 === 4 ? NULL_CODE : Math.floor(rand() * 3),
  );
  const label = Int32Array.from({ length: rows }, (_, i) =>
    i % 29 === 9 ? NULL_CODE : rand() < 0.4 ? 1 : 0,
  );
  const issues = emptyIssues();
  return {
    rows,
    columns: [
      { name: 'num', type: 'number', values: num, issues },
      { name: 'int', type: 'integer', values: int, issues },
      { name: 'when', type: 'datetime', values: when, issues },
      { name: 'flag', type: 'boolean', values: flag, issues },
      { name: 'cat', type: 'category', codes: cat, dictionary: ['a', 'b,c', 'say "hi"'], issues },
      { name: 'text', type: 'string', codes: text, dictionary: ['x', ' padded ', 'line\nbreak'], issues },
      { name: 'label', type: 'category', codes: label, dictionary: ['no', 'yes'], issues },
    ],
  };
}

const FEATURES = ['num', 'int', 'when', 'flag', 'cat', 'text'];

function input(table: Table, over: Partial<JobDataInput> = {}): JobDataInput {
  return {
    table,
    contract: inferDatasetContract(table),
    target: 'label',
    features: FEATURES,
    seed: 7,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
    ...over,
  };
}

async function filesOf(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const name of (await readdir(dir)).sort()) out[name] = await readFile(join(dir, name));
  return out;
}

/** JobData without its folder, for comparing two folders' worth. */
const portable = (d: JobData) => JSON.parse(JSON.stringify(d).replaceAll(d.dir, '<dir>')) as unknown;

describe('job data: Parquet in a worker thread', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-jobdata-test-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes the same bytes, every file, as the Parquet writer on the calling thread', async () => {
    const table = mixedTable(3_000);
    const inThread = await writeJobData(join(dir, 'thread'), input(table));
    const onMain = await writeJobData(join(dir, 'main'), input(table, { parquetIn: 'main' }));
    const a = await filesOf(join(dir, 'thread'));
    const b = await filesOf(join(dir, 'main'));
    expect(Object.keys(a)).toEqual(DATA_FILES);
    for (const name of DATA_FILES) expect(a[name]!.equals(b[name]!)).toBe(true);
    expect(portable(inThread)).toEqual(portable(onMain));
    expect(a['train.parquet']!.subarray(0, 4).toString()).toBe('PAR1');
  });

  it('fails with the thread’s error when the Parquet file cannot be written, and leaves no unhandled rejection', async () => {
    const table = mixedTable(200);
    const blocked = join(dir, 'blocked');
    await mkdir(join(blocked, 'train.parquet'), { recursive: true }); // a folder where the file must go
    await expect(writeJobData(blocked, input(table))).rejects.toThrow(/Parquet/);
  });
});

describe('job data cache', () => {
  let root: string;
  let cacheDir: string;
  let n = 0;
  const table = mixedTable(2_000);
  const key = jobDataKey({
    datasetSha256: 'a'.repeat(64),
    contract: inferDatasetContract(table),
    target: 'label',
    features: FEATURES,
    seed: 7,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
  });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'sluice-jobdata-cache-test-'));
    await writeJobData(join(root, 'reference'), input(table, { parquetIn: 'main' }));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));
  beforeEach(async () => {
    cacheDir = join(root, `cache-${++n}`);
  });

  let builds = 0;
  const build = (into: string) => {
    builds++;
    return writeJobData(into, input(table));
  };
  const get = (options: JobDataCacheOptions = { dir: cacheDir }, k = key, b = build) =>
    cachedJobData(k, join(root, `job-${++n}`, 'data'), b, options);

  async function expectReferenceBytes(data: JobData) {
    const got = await filesOf(data.dir);
    const want = await filesOf(join(root, 'reference'));
    expect(Object.keys(got)).toEqual(DATA_FILES);
    for (const name of DATA_FILES) expect(got[name]!.equals(want[name]!)).toBe(true);
  }

  it('misses, then hits without building, handing out the bytes of a fresh write', async () => {
    builds = 0;
    const first = await get();
    expect(first.cache).toBe('miss');
    expect(builds).toBe(1);
    await expectReferenceBytes(first.data);

    const second = await get();
    expect(second.cache).toBe('hit');
    expect(builds).toBe(1);
    expect(second.data.dir).not.toBe(first.data.dir);
    await expectReferenceBytes(second.data);
    expect(portable(second.data)).toEqual(portable(first.data));
    expect(second.data.train.csv).toBe(join(second.data.dir, 'train.csv'));
    // The job's copy is read-only: editing it in place cannot change what the next job gets.
    expect((await stat(second.data.train.csv)).mode & 0o222).toBe(0);
    // Atomic: nothing but the entry in the cache folder.
    expect(await readdir(cacheDir)).toEqual([key]);
  });

  it('gives each job its own copy: a job writing its input in place changes neither the entry nor another job', async () => {
    const a = await get();
    const b = await get();
    expect(b.cache).toBe('hit');
    const before = await readFile(join(cacheDir, key, 'train.csv'));
    // As root, or after a chmod of its own, the job can write its read-only file in place.
    await chmod(a.data.train.csv, 0o644);
    await writeFile(a.data.train.csv, 'overwritten by job a\n', { flag: 'r+' });
    expect((await readFile(a.data.train.csv, 'utf8')).startsWith('overwritten by job a')).toBe(true);
    expect((await readFile(join(cacheDir, key, 'train.csv'))).equals(before)).toBe(true);
    expect((await readFile(b.data.train.csv)).equals(before)).toBe(true);
    expect((await stat(a.data.train.csv)).ino).not.toBe((await stat(join(cacheDir, key, 'train.csv'))).ino);
    // The next job gets a hit, not a rebuild: the entry is intact.
    const c = await get();
    expect(c.cache).toBe('hit');
    await expectReferenceBytes(c.data);
  });

  it('sweeps half-built folders of killed preparations once they are an hour old, even when every job hits', async () => {
    await get();
    const old = join(cacheDir, `.tmp-${key}-killed`);
    const young = join(cacheDir, `.tmp-${key}-building`);
    for (const d of [old, young]) {
      await mkdir(d);
      await writeFile(join(d, 'train.csv'), 'half');
    }
    const hourAgo = new Date(Date.now() - DEBRIS_AGE_MS - 60_000);
    await utimes(old, hourAgo, hourAgo);
    expect((await get()).cache).toBe('hit');
    expect((await readdir(cacheDir)).sort()).toEqual([`.tmp-${key}-building`, key].sort());
  });

  it('empties the job folder before building when the entry could not be handed out', async () => {
    await get();
    // A job folder the entry's files cannot go into (a folder where holdout.parquet must be), after
    // some of the copies went in: the build must start from an empty folder.
    const jobDir = join(root, `job-${++n}`, 'data');
    await mkdir(join(jobDir, 'holdout.parquet'), { recursive: true });
    await writeFile(join(jobDir, 'holdout.parquet', 'x'), 'in the way');
    builds = 0;
    const got = await cachedJobData(key, jobDir, build, { dir: cacheDir });
    expect(got.cache).toBe('uncached');
    expect(builds).toBe(1);
    await expectReferenceBytes(got.data);
  });

  it('rebuilds an entry whose file was changed, truncated or whose record is malformed', async () => {
    await get();
    const entry = join(cacheDir, key);
    const corrupt: [string, () => Promise<void>][] = [
      [
        'does not match its SHA-256',
        async () => {
          const f = join(entry, 'train.csv');
          await chmod(f, 0o644);
          const text = await readFile(f, 'utf8');
          await writeFile(
            f,
            text.replace(/\d/, (d) => String((Number(d) + 1) % 10)),
          );
        },
      ],
      [
        'has \\d+ bytes',
        async () => {
          const f = join(entry, 'holdout.parquet');
          await chmod(f, 0o644);
          await appendFile(f, 'x');
        },
      ],
      ['is not JSON', () => writeFile(join(entry, 'entry.json'), '{"format": 1,')],
      ['is missing', () => rm(join(entry, 'validation.parquet'), { force: true })],
    ];
    for (const [problem, damage] of corrupt) {
      await damage();
      builds = 0;
      const again = await get();
      expect(again.cache).toBe('rebuilt');
      expect(again.note).toMatch(new RegExp(problem));
      expect(builds).toBe(1);
      await expectReferenceBytes(again.data);
      expect((await get()).cache).toBe('hit');
    }
  });

  it('keys on everything the files are a function of, and not on key order', () => {
    const parts = {
      datasetSha256: 'a'.repeat(64),
      contract: { columns: [{ name: 'x', type: 'number' }], version: 1 },
      target: 'label',
      features: ['x', 'y'],
      seed: 7,
      split: { train: 0.7, validation: 0.15, holdout: 0.15 },
    };
    const k = jobDataKey(parts);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(jobDataKey({ ...parts, contract: { version: 1, columns: [{ type: 'number', name: 'x' }] } })).toBe(
      k,
    );
    expect(jobDataKey({ ...parts, split: { holdout: 0.15, validation: 0.15, train: 0.7 } })).toBe(k);
    for (const other of [
      { datasetSha256: 'b'.repeat(64) },
      { contract: null },
      { target: 'y' },
      { features: ['y', 'x'] },
      { seed: 8 },
      { task: 'regression' },
      { split: { train: 0.8, validation: 0.1, holdout: 0.1 } },
    ])
      expect(jobDataKey({ ...parts, ...other })).not.toBe(k);
  });

  it('keeps at most maxEntries entries, dropping the least recently used', async () => {
    const keys = ['1', '2', '3'].map((c) => c.repeat(64));
    const options = { dir: cacheDir, maxEntries: 2 };
    await get(options, keys[0]);
    await get(options, keys[1]);
    // Using the first makes the second the least recently used.
    await new Promise((r) => setTimeout(r, 20));
    expect((await get(options, keys[0])).cache).toBe('hit');
    await new Promise((r) => setTimeout(r, 20));
    await get(options, keys[2]);
    expect((await readdir(cacheDir)).sort()).toEqual([keys[0], keys[2]].sort());
  });

  it('does not keep a result larger than maxBytes, and the job still gets its files', async () => {
    const got = await get({ dir: cacheDir, maxBytes: 1_000 });
    expect(got.cache).toBe('uncached');
    expect(got.note).toMatch(/over the cache's 1000/);
    await expectReferenceBytes(got.data);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('is not used from a folder other users may write to', async () => {
    await mkdir(cacheDir, { recursive: true });
    await chmod(cacheDir, 0o777);
    builds = 0;
    const got = await get();
    expect(got.cache).toBe('uncached');
    expect(got.note).toMatch(/writable by other users/);
    expect(builds).toBe(1);
    await expectReferenceBytes(got.data);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('two jobs storing the same key at once leave one sound entry', async () => {
    const [a, b] = await Promise.all([get(), get()]);
    expect([a.cache, b.cache].sort()).toEqual(expect.arrayContaining(['miss']));
    await expectReferenceBytes(a.data);
    await expectReferenceBytes(b.data);
    expect(await readdir(cacheDir)).toEqual([key]);
  });
});
