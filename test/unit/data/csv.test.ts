import { gzipSync } from 'node:zlib';
import { encodeCsv, formatCsvField, neutralizeFormula } from '../../../lib/data/reading/csvWrite';
import { DataFormatError } from '../../../lib/data/errors';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { defaultLimits } from '../../../lib/data/limits';
import { codeOf, column, parse, rowsOf } from './helpers';

describe('CSV reader: RFC 4180 and what real files do', () => {
  it('reads quoted fields with delimiters, doubled quotes and newlines inside', async () => {
    const text = 'id,note,score\n1,"a, b",2.5\n2,"say ""hi""",3\n3,"line one\nline two",4\n';
    const { table, stats } = await parse(text);
    expect(rowsOf(table)).toEqual([
      [1, 'a, b', 2.5],
      [2, 'say "hi"', 3],
      [3, 'line one\nline two', 4],
    ]);
    expect(stats.rows).toBe(3);
    expect(stats.lines).toBe(5); // the quoted newline is a fifth physical line
  });

  it('gives the same table whatever the chunk boundaries (1, 2, 3, 7 bytes)', async () => {
    const text = 'a,b,c\r\n1,"x\r\ny",2\r\n3,"""q""",4\n5,,6\r\n"7",z,8';
    const whole = rowsOf((await parse(text)).table);
    expect(whole).toEqual([
      [1, 'x\r\ny', 2],
      [3, '"q"', 4],
      [5, null, 6],
      [7, 'z', 8],
    ]);
    for (const chunk of [1, 2, 3, 7]) expect(rowsOf((await parse(text, { chunk })).table)).toEqual(whole);
  });

  it('accepts a mix of CRLF and LF line ends and reports the mix', async () => {
    const r = await parse('a,b\r\n1,2\n3,4\r\n5,6\n');
    expect(rowsOf(r.table)).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(r.lineEndings).toBe('mixed');
  });

  it('strips a UTF-8 byte-order mark so the first column keeps its name', async () => {
    const r = await parse('\uFEFFid,name\n1,Zoë\n');
    expect(r.table.columns.map((c) => c.name)).toEqual(['id', 'name']);
    expect(r.input.bom).toBe(true);
    expect(rowsOf(r.table)).toEqual([[1, 'Zoë']]);
  });

  it('reads a last row without a line break, and skips blank lines', async () => {
    const r = await parse('a,b\n1,2\n\n3,4');
    expect(rowsOf(r.table)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(r.stats).toMatchObject({ blankLines: 1 });
  });

  it('keeps formula-looking cells as data, quotes inside unquoted fields included', async () => {
    const r = await parse('a,b\n=HYPERLINK("http://x"),+1\n@SUM(A1),-2\n');
    expect(rowsOf(r.table)).toEqual([
      ['=HYPERLINK("http://x")', 1],
      ['@SUM(A1)', -2],
    ]);
  });

  it('reads another delimiter when asked', async () => {
    const r = await parse('a;b\n1,5;x\n', { delimiter: ';' });
    expect(rowsOf(r.table)).toEqual([['1,5', 'x']]);
  });

  it('reads 10,000 columns', async () => {
    const n = 10_000;
    const header = Array.from({ length: n }, (_, i) => `c${i}`).join(',');
    const row = Array.from({ length: n }, (_, i) => String(i)).join(',');
    const r = await parse(`${header}\n${row}\n${row}\n`);
    expect(r.table.columns).toHaveLength(n);
    expect(r.table.rows).toBe(2);
    expect(rowsOf(r.table)[1]![9_999]).toBe(9_999);
  });

  it('infers types from the data and widens a column when a later value does not fit', async () => {
    const rows = Array.from(
      { length: 3000 },
      (_, i) => `${i},${i % 2 ? 'yes' : 'no'},2020-01-0${(i % 9) + 1}`,
    );
    rows.push('oops,yes,2020-02-01');
    const { table } = await parse(`n,flag,day\n${rows.join('\n')}\n`);
    expect(table.columns.map((c) => c.type)).toEqual(['string', 'boolean', 'datetime']);
    expect(rowsOf(table)[3000]).toEqual(['oops', true, '2020-02-01T00:00:00.000Z']);
    expect(rowsOf(table)[5]![0]).toBe('5');
  });

  it('reads declared types strictly and records values that are not of the type', async () => {
    const contract = { columns: [{ name: 'n', type: 'number' as const }], nullValues: ['', 'NA'] };
    const { table } = await parse('n\n1\nNA\nabc\n4\n', { contract });
    const n = column(table, 'n');
    expect(rowsOf(table)).toEqual([[1], [null], [null], [4]]);
    expect(n.issues).toEqual({ count: 1, firstRows: [3], examples: ['abc'] });
  });
});

describe('CSV reader: hostile input gets a specific error code', () => {
  const cases: [string, string | Uint8Array, string][] = [
    ['an empty file', '', 'INPUT_EMPTY'],
    ['only a BOM', '\uFEFF', 'INPUT_EMPTY'],
    ['a header with no rows', 'a,b,c\n', 'INPUT_HEADER_ONLY'],
    ['a ragged row (too few)', 'a,b,c\n1,2,3\n4,5\n', 'CSV_RAGGED_ROW'],
    ['a ragged row (too many)', 'a,b\n1,2\n3,4,5\n', 'CSV_RAGGED_ROW'],
    ['an unterminated quote', 'a,b\n1,"never closed\n2,3\n', 'CSV_UNTERMINATED_QUOTE'],
    ['text after a closing quote', 'a,b\n"x"y,2\n', 'CSV_TEXT_AFTER_QUOTE'],
    ['a bare carriage return', 'a,b\r1,2\n', 'CSV_BARE_CR'],
    ['a NUL byte', 'a,b\n1,\u00002\n', 'INPUT_NUL_BYTE'],
    ['duplicate headers', 'id,x,id\n1,2,3\n', 'HEADER_DUPLICATE'],
    ['an empty header', 'id,,x\n1,2,3\n', 'HEADER_EMPTY'],
    ['UTF-16 LE with a BOM', Buffer.from('\uFEFFa,b\n1,2\n', 'utf16le'), 'INPUT_UTF16'],
    ['UTF-16 LE without a BOM', Buffer.from('a,b\n1,2\n', 'utf16le'), 'INPUT_UTF16'],
    ['UTF-16 BE with a BOM', Buffer.from([0xfe, 0xff, 0, 0x61, 0, 0x0a]), 'INPUT_UTF16'],
    ['Latin-1 text', Buffer.from('name\ncaf\u00e9\n', 'latin1'), 'INPUT_NOT_UTF8'],
    ['a zip file', Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]), 'INPUT_UNSUPPORTED_FORMAT'],
  ];
  it.each(cases)('%s', async (_name, input, code) => {
    expect(await codeOf(parse(input))).toBe(code);
  });

  it('names the line and row of a ragged row', async () => {
    const err = await parse('a,b\n1,2\n"x\ny",2\n3\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect((err as DataFormatError).position).toEqual({ line: 5, row: 3 });
  });

  it('fails on a field over the field limit without reading further', async () => {
    const big = 'x'.repeat(1024 * 1024 + 1);
    expect(await codeOf(parse(`a,b\n1,${big}\n`))).toBe('LIMIT_FIELD_BYTES');
    // An unterminated quote in a large file trips the same limit early, long before the end.
    const body = Buffer.from(`a,b\n1,"open\n${'2,3\n'.repeat(2_000_000)}`);
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < body.length; i += 64 * 1024) {
        pulled += 64 * 1024;
        yield body.subarray(i, i + 64 * 1024);
      }
    }
    expect(await codeOf(readDataset(source()))).toBe('LIMIT_FIELD_BYTES');
    expect(pulled).toBeLessThan(body.length / 2);
  });

  it('enforces the column, row and size limits from settings', async () => {
    const limits = { ...defaultLimits, maxColumns: 3, maxRows: 2, maxBytes: 100 };
    expect(await codeOf(parse('a,b,c,d\n1,2,3,4\n', { limits }))).toBe('LIMIT_COLUMNS');
    expect(await codeOf(parse('a\n1\n2\n3\n', { limits }))).toBe('LIMIT_ROWS');
    expect(await codeOf(parse(`a\n${'1\n'.repeat(100)}`, { limits }))).toBe('INPUT_TOO_LARGE');
    expect(
      await codeOf(
        parse(`a,b\n1,${'x'.repeat(50)}\n`, {
          limits: { ...defaultLimits, maxRowBytes: 40, maxFieldBytes: 1000 },
          chunk: 8,
        }),
      ),
    ).toBe('LIMIT_ROW_BYTES');
  });

  it('refuses 10,001 columns with the default limit of 10,000', async () => {
    const header = Array.from({ length: 10_001 }, (_, i) => `c${i}`).join(',');
    expect(await codeOf(parse(`${header}\n`))).toBe('LIMIT_COLUMNS');
  });
});

describe('gzip input', () => {
  it('reads gzip-compressed CSV and hashes the bytes as received', async () => {
    const text = 'a,b\n1,x\n2,y\n';
    const gz = gzipSync(text);
    const r = await parse(gz);
    expect(rowsOf(r.table)).toEqual([
      [1, 'x'],
      [2, 'y'],
    ]);
    expect(r.input).toMatchObject({ gzip: true, bytes: gz.length, decodedBytes: text.length });
  });

  it('stops a gzip bomb by ratio, and by decompressed size, without inflating it all', async () => {
    // 64 MiB of well-formed rows in about 64 KB: neither the field nor the row limit catches it.
    const bomb = gzipSync(Buffer.concat([Buffer.from('a,b\n'), Buffer.alloc(64 * 1024 * 1024, '1,2\n')]));
    expect(await codeOf(parse(bomb))).toBe('GZIP_RATIO');
    const limits = { ...defaultLimits, maxBytes: 2 * 1024 * 1024, maxGzipRatio: 100_000 };
    expect(await codeOf(parse(bomb, { limits }))).toBe('GZIP_TOO_LARGE');
  });

  it('reports a truncated gzip stream as corrupt', async () => {
    const gz = gzipSync('a,b\n'.repeat(1000));
    expect(await codeOf(parse(gz.subarray(0, gz.length - 20)))).toBe('GZIP_CORRUPT');
  });
});

describe('writing CSV', () => {
  it('neutralizes formula cells with a leading quote and leaves numbers alone', () => {
    expect(neutralizeFormula('=HYPERLINK("http://x","y")')).toBe('\'=HYPERLINK("http://x","y")');
    expect(neutralizeFormula('+cmd|calc')).toBe("'+cmd|calc");
    expect(neutralizeFormula('-2+3')).toBe("'-2+3");
    expect(neutralizeFormula('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(neutralizeFormula('\tx')).toBe("'\tx");
    expect(neutralizeFormula('-5')).toBe('-5');
    expect(neutralizeFormula('plain')).toBe('plain');
    expect(formatCsvField('a,"b"')).toBe('"a,""b"""');
    expect(formatCsvField(null)).toBe('');
    expect(formatCsvField(-1.5)).toBe('-1.5');
  });

  it('round-trips a table through CSV (raw), and a written formula cell reads back as quoted text', async () => {
    const text = 'a,b,c\n1,"x, ""y""",true\n2,"line\nbreak",\n3,=1+2,false\n';
    const { table } = await parse(text);
    const raw = [...encodeCsv(table, { raw: true })].join('');
    expect(rowsOf((await parse(raw)).table)).toEqual(rowsOf(table));
    const safe = [...encodeCsv(table)].join('');
    expect(safe).toContain("\n3,'=1+2,false\n");
  });
});
