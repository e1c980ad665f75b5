import { createHash } from 'node:crypto';
import { brotliCompressSync, gzipSync, zstdCompressSync } from 'node:zlib';
import type * as Writer from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import type { ColumnSource } from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import { isDictionary } from '../../../lib/data/table';
import type { DeclaredTypes } from '../../../lib/data/reading/tableBuilder';
import { DataFormatError } from '../../../lib/data/errors';
import { defaultLimits } from '../../../lib/data/limits';
import { column, parse, rowsOf } from './helpers';

// hyparquet-writer ships only ES modules (see jest.config.js).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const writer = require('hyparquet-writer') as typeof Writer;

function parquet(columnData: ColumnSource[], options: Partial<Writer.ParquetWriteOptions> = {}): Uint8Array {
  return new Uint8Array(writer.parquetWriteBuffer({ columnData, ...options }));
}

const people = (): ColumnSource[] => [
  { name: 'id', data: [1, 2, 3, 4], type: 'INT32', nullable: false },
  { name: 'big', data: [1n, 2n, 9007199254740993n, null], type: 'INT64' },
  { name: 'score', data: [1.5, null, 2.25, -3], type: 'DOUBLE' },
  { name: 'ok', data: [true, false, null, true], type: 'BOOLEAN' },
  { name: 'city', data: ['Oslo', 'Lima', null, 'Oslo'], type: 'STRING' },
  {
    name: 'at',
    data: [new Date('2024-01-02T03:04:05.000Z'), null, new Date('1999-12-31T00:00:00.000Z'), new Date(0)],
    type: 'TIMESTAMP',
  },
];

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DataFormatError) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('Parquet input', () => {
  it('reads the columns CSV would produce, with nulls kept and the digest of the bytes as sent', async () => {
    const bytes = parquet(people());
    const r = await parse(bytes, { chunk: 7 });
    expect(r.format).toBe('parquet');
    expect(r.input.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(r.input.bytes).toBe(bytes.length);
    expect(r.table.columns.map((c) => [c.name, c.type])).toEqual([
      ['id', 'integer'],
      ['big', 'string'], // 2^53 + 1 is not exact as a double: kept exactly as text
      ['score', 'number'],
      ['ok', 'boolean'],
      ['city', 'category'],
      ['at', 'datetime'],
    ]);
    expect(rowsOf(r.table)).toEqual([
      [1, '1', 1.5, true, 'Oslo', '2024-01-02T03:04:05.000Z'],
      [2, '2', null, false, 'Lima', null],
      [3, '9007199254740993', 2.25, null, null, '1999-12-31T00:00:00.000Z'],
      [4, null, -3, true, 'Oslo', '1970-01-01T00:00:00.000Z'],
    ]);
    expect(r.stats).toMatchObject({ rows: 4, columns: 6, rowGroups: 1, codecs: ['SNAPPY'] });
  });

  it('honours declared types: a number out of double range and text that is not a number become parse issues', async () => {
    const contract: DeclaredTypes = {
      columns: [
        { name: 'big', type: 'integer' },
        { name: 'city', type: 'string' },
        { name: 'code', type: 'number' },
        { name: 'flag', type: 'boolean' },
        { name: 'day', type: 'datetime' },
      ],
    };
    const bytes = parquet([
      { name: 'big', data: [5n, 9007199254740993n, null], type: 'INT64' },
      { name: 'city', data: ['a', 'a', 'a'], type: 'STRING' },
      { name: 'code', data: ['1.5', 'abc', 'NA'], type: 'STRING' },
      { name: 'flag', data: [1, 0, 2], type: 'INT32' },
      { name: 'day', data: ['2024-02-29', 'yesterday', null], type: 'STRING' },
    ]);
    const { table } = await parse(bytes, { contract });
    expect(column(table, 'city').type).toBe('string'); // declared, so not settled to category
    expect(rowsOf(table)).toEqual([
      [5, 'a', 1.5, true, '2024-02-29T00:00:00.000Z'],
      [null, 'a', null, false, null],
      [null, 'a', null, null, null],
    ]);
    expect(column(table, 'big').issues).toMatchObject({
      count: 1,
      firstRows: [2],
      examples: ['9007199254740993'],
    });
    expect(column(table, 'code').issues).toMatchObject({ count: 1, firstRows: [2], examples: ['abc'] });
    expect(column(table, 'flag').issues).toMatchObject({ count: 1, firstRows: [3] });
    expect(column(table, 'day').issues).toMatchObject({ count: 1, firstRows: [2], examples: ['yesterday'] });
  });

  it('reads many row groups in order, and the same data under every supported codec', async () => {
    const n = 2_500;
    const ids = Array.from({ length: n }, (_, i) => i);
    const labels = ids.map((i) => `label-${i % 7}`);
    const cols = (): ColumnSource[] => [
      { name: 'id', data: ids, type: 'INT32', nullable: false },
      { name: 'label', data: labels, type: 'STRING' },
    ];
    const expected = rowsOf((await parse(parquet(cols(), { rowGroupSize: n }))).table);
    const compressors = {
      GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)),
      BROTLI: (b: Uint8Array) => new Uint8Array(brotliCompressSync(b)),
      ZSTD: (b: Uint8Array) => new Uint8Array(zstdCompressSync(b)),
    };
    for (const codec of ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI', 'ZSTD'] as const) {
      const r = await parse(parquet(cols(), { codec, compressors, rowGroupSize: 300 }), { chunk: 4096 });
      expect(r.stats).toMatchObject({ rows: n, rowGroups: 9, codecs: [codec] });
      expect(rowsOf(r.table)).toEqual(expected);
    }
    const label = column((await parse(parquet(cols()))).table, 'label');
    expect(isDictionary(label) && label.dictionary.length).toBe(7);
  });

  it('decides Parquet by the PAR1 magic, and refuses a format that contradicts the bytes', async () => {
    const bytes = parquet(people());
    expect((await parse(bytes, { format: 'parquet' })).table.rows).toBe(4);
    expect(await codeOf(parse(bytes, { format: 'csv' }))).toMatch(/^INPUT_UNSUPPORTED_FORMAT: .*Parquet/);
    expect(await codeOf(parse('a,b\n1,2\n', { format: 'parquet' }))).toMatch(/^INPUT_UNSUPPORTED_FORMAT/);
    // CSV is untouched: a text file starting with "PAR" but not PAR1 is CSV.
    expect((await parse('PARt,b\n1,2\n')).format).toBe('csv');
  });

  describe('hostile input, each with its own code', () => {
    const good = (): Uint8Array => parquet(people());

    it('a truncated file', async () => {
      const b = good();
      expect(await codeOf(parse(b.subarray(0, 10)))).toMatch(/^PARQUET_TRUNCATED/);
      expect(await codeOf(parse(b.subarray(0, b.length - 100)))).toMatch(/^PARQUET_BAD_MAGIC/);
    });

    it('a wrong trailing magic', async () => {
      const b = Buffer.from(good());
      b.write('PAR0', b.length - 4, 'latin1');
      expect(await codeOf(parse(b))).toMatch(/^PARQUET_BAD_MAGIC/);
    });

    it('a footer length pointing outside the file', async () => {
      const b = Buffer.from(good());
      b.writeUInt32LE(b.length, b.length - 8);
      expect(await codeOf(parse(b))).toMatch(/^PARQUET_FOOTER_LENGTH/);
    });

    it('corrupt metadata', async () => {
      const b = Buffer.from(good());
      const len = b.readUInt32LE(b.length - 8);
      b.fill(0xff, b.length - 8 - len, b.length - 8);
      expect(await codeOf(parse(b))).toMatch(/^PARQUET_METADATA_CORRUPT/);
    });

    it('an oversized footer', async () => {
      // A file of 64 MiB + a bit whose footer claims (nearly) all of it.
      const size = 64 * 1024 * 1024 + 64;
      const b = Buffer.alloc(size);
      b.write('PAR1', 0, 'latin1');
      b.writeUInt32LE(size - 12, size - 8);
      b.write('PAR1', size - 4, 'latin1');
      expect(await codeOf(parse(b, { limits: { ...defaultLimits, maxBytes: 128 * 1024 * 1024 } }))).toMatch(
        /^PARQUET_METADATA_TOO_LARGE/,
      );
    });

    it('corrupt column data', async () => {
      const b = Buffer.from(parquet(people(), { codec: 'UNCOMPRESSED', statistics: false }));
      b.fill(0xfe, 4, 60); // page headers and values of the first columns
      expect(await codeOf(parse(b))).toMatch(/^PARQUET_(CORRUPT|DECOMPRESSED_TOO_LARGE)/);
    });

    it('nested columns, naming the column (a JSON column is text, not nested)', async () => {
      const list = parquet(
        [
          { name: 'id', data: [1, 2] },
          { name: 'tags', data: [[1, 2], [3]] },
        ],
        {
          schema: [
            { name: 'root', num_children: 2 },
            { name: 'id', type: 'INT32', repetition_type: 'REQUIRED' },
            { name: 'tags', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
            { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
            { name: 'element', type: 'INT32', repetition_type: 'OPTIONAL' },
          ],
        },
      );
      expect(await codeOf(parse(list))).toMatch(/^PARQUET_NESTED_COLUMN.*\(column "tags"\): a list/);
      const struct = parquet([{ name: 's', data: [{ x: 1 }, { x: 2 }] }], {
        schema: [
          { name: 'root', num_children: 1 },
          { name: 's', repetition_type: 'OPTIONAL', num_children: 1 },
          { name: 'x', type: 'INT32', repetition_type: 'OPTIONAL' },
        ],
      });
      expect(await codeOf(parse(struct))).toMatch(/^PARQUET_NESTED_COLUMN.*\(column "s"\): a struct/);
      const json = parquet([{ name: 'tags', data: [[1, 2], { a: 3 }] }]);
      expect(rowsOf((await parse(json)).table)).toEqual([['[1,2]'], ['{"a":3}']]);
    });

    it('an unsupported codec, naming the codec and the column', async () => {
      const b = parquet(
        [
          { name: 'id', data: [1, 2], type: 'INT32' },
          { name: 'v', data: [1, 2], type: 'INT32', codec: 'LZ4_RAW' },
        ],
        { compressors: { LZ4_RAW: (x: Uint8Array) => x } },
      );
      expect(await codeOf(parse(b))).toMatch(/^PARQUET_UNSUPPORTED_CODEC.*\(column "v"\): LZ4_RAW/);
    });

    it('zero rows means the same as a header-only CSV', async () => {
      const b = parquet([{ name: 'id', data: [], type: 'INT32' }]);
      expect(await codeOf(parse(b))).toMatch(/^INPUT_HEADER_ONLY.*id/);
    });

    it('more columns than the limit, from the footer', async () => {
      const cols = Array.from({ length: 12 }, (_, i): ColumnSource => ({
        name: `c${i}`,
        data: [i],
        type: 'INT32',
      }));
      const limits = { ...defaultLimits, maxColumns: 10 };
      expect(await codeOf(parse(parquet(cols), { limits }))).toMatch(/^LIMIT_COLUMNS/);
    });

    it('more rows than the limit, and a file over the size cap', async () => {
      expect(await codeOf(parse(good(), { limits: { ...defaultLimits, maxRows: 3 } }))).toMatch(
        /^LIMIT_ROWS/,
      );
      expect(await codeOf(parse(good(), { limits: { ...defaultLimits, maxBytes: 100 } }))).toMatch(
        /^INPUT_TOO_LARGE/,
      );
    });

    it('a field over the size limit', async () => {
      const b = parquet([{ name: 's', data: ['x', 'y'.repeat(5000)], type: 'STRING' }]);
      expect(await codeOf(parse(b, { limits: { ...defaultLimits, maxFieldBytes: 1000 } }))).toMatch(
        /^LIMIT_FIELD_BYTES.*\(row 2, column "s"\)/,
      );
    });
  });
});
