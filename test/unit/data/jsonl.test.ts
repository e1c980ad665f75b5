import { defaultLimits } from '../../../lib/data/limits';
import { codeOf, parse, rowsOf } from './helpers';

describe('JSON Lines reader', () => {
  it('reads one object per line: keys in order of first appearance, missing keys null, CRLF and blank lines', async () => {
    const text = '{"a":1,"b":"x"}\r\n\n{"b":"y","c":true}\n{"a":2.5}\n';
    const { table, format, stats } = await parse(text, { chunk: 5 });
    expect(format).toBe('jsonl');
    expect(table.columns.map((c) => [c.name, c.type])).toEqual([
      ['a', 'number'],
      ['b', 'category'],
      ['c', 'boolean'],
    ]);
    expect(rowsOf(table)).toEqual([
      [1, 'x', null],
      [null, 'y', true],
      [2.5, null, null],
    ]);
    expect(stats).toMatchObject({ rows: 3, blankLines: 1 });
  });

  it('widens an inferred column when a later line holds another type, and keeps strings as text', async () => {
    const { table } = await parse('{"v":1}\n{"v":"two"}\n{"v":3}\n');
    expect(table.columns[0]!.type).toBe('string');
    expect(rowsOf(table)).toEqual([['1'], ['two'], ['3']]);
  });

  it('a key that is always null is a column of nulls', async () => {
    const { table } = await parse('{"a":1,"b":null}\n{"a":2}\n');
    expect(rowsOf(table)).toEqual([
      [1, null],
      [2, null],
    ]);
  });

  it('reads declared types strictly: a string in a number column is a type issue on its row', async () => {
    const contract = { columns: [{ name: 'n', type: 'number' as const }] };
    const { table } = await parse('{"n":1}\n{"n":"abc"}\n{"n":null}\n', { contract });
    expect(rowsOf(table)).toEqual([[1], [null], [null]]);
    expect(table.columns[0]!.issues).toEqual({ count: 1, firstRows: [2], examples: ['abc'] });
  });

  it.each([
    ['a line that is not JSON', '{"a":1}\n{"a":\n', 'JSONL_INVALID'],
    ['a line that is not an object', '{"a":1}\n[1,2]\n', 'JSONL_NOT_OBJECT'],
    ['a nested value', '{"a":{"b":1}}\n', 'JSONL_NESTED_VALUE'],
    ['an empty key', '{"":1}\n', 'HEADER_EMPTY'],
    ['only blank lines', '\n\n  \n', 'INPUT_EMPTY'],
    ['a JSON array instead of lines', '[{"a":1}]\n', 'INPUT_UNSUPPORTED_FORMAT'],
  ])('%s', async (_name, text, code) => {
    expect(await codeOf(parse(text, text.startsWith('[') ? {} : { format: 'jsonl' }))).toBe(code);
  });

  it('enforces the column, row and line limits', async () => {
    expect(
      await codeOf(parse('{"a":1,"b":2,"c":3}\n', { limits: { ...defaultLimits, maxColumns: 2 } })),
    ).toBe('LIMIT_COLUMNS');
    expect(
      await codeOf(parse('{"a":1}\n{"a":2}\n{"a":3}\n', { limits: { ...defaultLimits, maxRows: 2 } })),
    ).toBe('LIMIT_ROWS');
    expect(
      await codeOf(
        parse(`{"a":"${'x'.repeat(200)}"}\n`, { limits: { ...defaultLimits, maxRowBytes: 100 }, chunk: 16 }),
      ),
    ).toBe('LIMIT_ROW_BYTES');
  });
});
