/**
 * JOB_DATA_FORMAT (lib/training/userJob/jobDataCache.ts) is part of the job data cache's key, bumped
 * by hand whenever writeJobData writes other bytes. These digests of what it writes for a small fixed
 * table tie the two together: a change to the split, the CSV or Parquet formatting, the contract
 * file or JobData's shape fails here until JOB_DATA_FORMAT is bumped (and the digests for the new
 * format added), so a warm cache never hands a job files the current code would not write.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { BOOL_NULL, emptyIssues, NULL_CODE, type Table } from '../../../lib/data/table';
import { writeJobData } from '../../../lib/training/userJob/jobData';
import { JOB_DATA_FORMAT, parquetWriterVersion } from '../../../lib/training/userJob/jobDataCache';

/** Digest of the CSV files, the contract file and JobData (folder stripped), per JOB_DATA_FORMAT. */
const TEXT_GOLDEN: Record<number, string> = {
  1: '6902b191507348d236b4e174619167551c040f980922aa1e4ace9db5e312a13c',
};
/** Digest of the Parquet files, per JOB_DATA_FORMAT and hyparquet-writer version (also in the key). */
const PARQUET_GOLDEN: Record<string, string> = {
  '1/0.17.0': 'fc8606321108a2e3abc1a0c67c239d3e42e3863f4c02953d7bb8a1f7f886948d',
};

/** Every column type with nulls, and text that needs quoting; fixed values, no generator. */
function fixedTable(): Table {
  const rows = 40;
  const issues = emptyIssues();
  const at = <T>(xs: T[], i: number) => xs[i % xs.length]!;
  return {
    rows,
    columns: [
      {
        name: 'num',
        type: 'number',
        values: Float64Array.from({ length: rows }, (_, i) =>
          i % 9 === 4 ? NaN : at([0.5, -1.25e-7, 3e21, 42], i) * (i + 1),
        ),
        issues,
      },
      {
        name: 'int',
        type: 'integer',
        values: Float64Array.from({ length: rows }, (_, i) => (i % 7 === 2 ? NaN : i * 37 - 500)),
        issues,
      },
      {
        name: 'when',
        type: 'datetime',
        values: Float64Array.from({ length: rows }, (_, i) => (i % 11 === 3 ? NaN : 1.7e12 + i * 86_400_000)),
        issues,
      },
      {
        name: 'flag',
        type: 'boolean',
        values: Uint8Array.from({ length: rows }, (_, i) => (i % 8 === 5 ? BOOL_NULL : i % 3 === 0 ? 1 : 0)),
        issues,
      },
      {
        name: 'cat',
        type: 'category',
        codes: Int32Array.from({ length: rows }, (_, i) => (i % 10 === 6 ? NULL_CODE : i % 3)),
        dictionary: ['a', 'b,c', 'say "hi"'],
        issues,
      },
      {
        name: 'text',
        type: 'string',
        codes: Int32Array.from({ length: rows }, (_, i) => (i % 12 === 1 ? NULL_CODE : i % 3)),
        dictionary: ['x', ' padded ', 'line\nbreak'],
        issues,
      },
      {
        name: 'label',
        type: 'category',
        codes: Int32Array.from({ length: rows }, (_, i) => (i % 5 < 2 ? 1 : 0)),
        dictionary: ['no', 'yes'],
        issues,
      },
    ],
  };
}

describe('JOB_DATA_FORMAT', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-jobdata-format-test-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('matches the bytes writeJobData writes for a fixed table (bump it when this fails)', async () => {
    const table = fixedTable();
    const out = join(dir, 'data');
    const data = await writeJobData(out, {
      table,
      contract: inferDatasetContract(table),
      target: 'label',
      features: ['num', 'int', 'when', 'flag', 'cat', 'text'],
      seed: 7,
      split: { train: 0.6, validation: 0.2, holdout: 0.2 },
      parquetIn: 'main',
    });
    const text = createHash('sha256');
    const parquet = createHash('sha256');
    for (const name of (await readdir(out)).sort()) {
      const h = name.endsWith('.parquet') ? parquet : text;
      h.update(`${name}\n`).update(await readFile(join(out, name)));
    }
    text.update(JSON.stringify(data).replaceAll(out, '<dir>'));
    const got = { text: text.digest('hex'), parquet: parquet.digest('hex') };
    const parquetKey = `${JOB_DATA_FORMAT}/${parquetWriterVersion()}`;
    const bump =
      `writeJobData's output changed: bump JOB_DATA_FORMAT in lib/training/userJob/jobDataCache.ts ` +
      `(so warm caches miss) and add the new digests here`;
    if (got.text !== TEXT_GOLDEN[JOB_DATA_FORMAT]) throw new Error(`${bump} (text digest ${got.text})`);
    if (PARQUET_GOLDEN[parquetKey] === undefined)
      throw new Error(
        `no Parquet digest for ${parquetKey}: after a hyparquet-writer upgrade (already in the cache key) ` +
          `add '${parquetKey}': '${got.parquet}' once the files are checked`,
      );
    if (got.parquet !== PARQUET_GOLDEN[parquetKey])
      throw new Error(`${bump} (Parquet digest ${got.parquet} for ${parquetKey})`);
    expect(got).toEqual({ text: TEXT_GOLDEN[JOB_DATA_FORMAT], parquet: PARQUET_GOLDEN[parquetKey] });
  });
});
