import type { DatasetContractInput } from '../../../lib/contracts/datasetContract';
import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import { profileTable } from '../../../lib/data/profiling/profile';
import {
  cannotViolate,
  checkColumn,
  checkTable,
  duplicateRows,
  hasKeyColumn,
} from '../../../lib/data/checking/quality';
import { parse } from './helpers';

async function violations(csv: string, input: DatasetContractInput) {
  const contract = parseDatasetContract(input);
  const { table } = await parse(csv, { contract });
  return checkTable(table, contract, profileTable(table));
}

const rule = (vs: Awaited<ReturnType<typeof violations>>, name: string, column?: string) =>
  vs.find((v) => v.rule === name && (column === undefined || v.column === column));

describe('contract checks name the rule, the column and the first rows', () => {
  const csv =
    'id,age,sex,code,score\n1,30,male,AB-1,0.5\n2,-4,female,AB-2,1.5\n2,,x,zz,2\n4,200,,AB-4,abc\n5,40.5,male,AB-5,0.1\n';
  const contract: DatasetContractInput = {
    columns: [
      { name: 'id', type: 'integer', unique: true },
      { name: 'age', type: 'integer', min: 0, max: 120 },
      { name: 'sex', type: 'category', values: ['male', 'female'], nullable: true },
      { name: 'code', type: 'string', pattern: '[A-Z]{2}-\\d' },
      { name: 'score', type: 'number', max: 1 },
    ],
  };

  it.each([
    ['unique', 'id', [3], 1],
    ['min', 'age', [2], 1],
    ['max', 'age', [4], 1],
    ['nullable', 'age', [3], 1],
    ['integer', 'age', [5], 1],
    ['values', 'sex', [3], 1],
    ['pattern', 'code', [3], 1],
    ['type', 'score', [4], 1],
    ['max', 'score', [2, 3], 2],
  ])('%s on %s at rows %j', async (name, column, rows, count) => {
    const v = rule(await violations(csv, contract), name, column);
    expect(v).toMatchObject({ column, count, firstRows: rows, severity: 'error' });
  });

  it('passes clean data with no violations', async () => {
    expect(await violations('id,age,sex,code,score\n1,30,male,AB-1,0.5\n2,31,,CD-2,1\n', contract)).toEqual(
      [],
    );
  });

  it('reports missing and unexpected columns', async () => {
    const vs = await violations('id,extra\n1,2\n', {
      columns: [
        { name: 'id', type: 'integer' },
        { name: 'age', type: 'integer' },
      ],
      quality: { unexpectedColumns: 'error' },
    });
    expect(rule(vs, 'column.missing', 'age')).toBeDefined();
    expect(rule(vs, 'column.unexpected', 'extra')).toMatchObject({ severity: 'error' });
  });
});

describe('quality rules', () => {
  it('minimum rows, null fraction per column, duplicate rows, class balance', async () => {
    const csv = 'a,b,y\n1,,0\n1,,0\n2,x,0\n3,y,1\n';
    const vs = await violations(csv, {
      columns: [
        { name: 'a', type: 'integer' },
        { name: 'b', type: 'category', nullable: true },
        { name: 'y', type: 'integer', values: [0, 1] },
      ],
      target: 'y',
      task: 'binary',
      quality: {
        minRows: 10,
        maxNullFraction: 0.25,
        maxDuplicateRowFraction: 0.1,
        classBalance: { minClassFraction: 0.3 },
      },
    });
    expect(rule(vs, 'minRows')).toMatchObject({ count: 4 });
    expect(rule(vs, 'maxNullFraction', 'b')).toMatchObject({ count: 2, firstRows: [1, 2] });
    expect(rule(vs, 'maxDuplicateRowFraction')).toMatchObject({ count: 1, firstRows: [2] });
    expect(rule(vs, 'classBalance', 'y')).toMatchObject({ examples: ['1'] });
  });

  it('duplicate rows compare every column exactly, nulls equal to nulls', async () => {
    const { table } = await parse('a,b\n1,\n1,\n1,2\n1.0,2\n2,2\n');
    expect(duplicateRows(table)).toEqual({ count: 2, firstRows: [2, 4] });
  });

  it('a column unique in every row rules duplicate rows out without searching; otherwise they are found', async () => {
    const keyed = await parse('id,a,b\n1,x,2\n2,x,2\n3,x,2\n');
    expect(hasKeyColumn(keyed.table, profileTable(keyed.table))).toBe(true);
    const contract = parseDatasetContract({
      columns: [
        { name: 'id', type: 'integer' },
        { name: 'a', type: 'category' },
        { name: 'b', type: 'integer' },
      ],
      quality: { maxDuplicateRowFraction: 0 },
    });
    expect(
      rule(checkTable(keyed.table, contract, profileTable(keyed.table)), 'maxDuplicateRowFraction'),
    ).toBeUndefined();
    // A null in the would-be key column: two rows may still be identical, so the search runs.
    const nullKey = await parse('id,a,b\n1,x,2\n,x,2\n,x,2\n');
    expect(hasKeyColumn(nullKey.table, profileTable(nullKey.table))).toBe(false);
    const found = checkTable(nullKey.table, { ...contract, columns: [] }, profileTable(nullKey.table));
    expect(rule(found, 'maxDuplicateRowFraction')).toMatchObject({ count: 1, firstRows: [3] });
  });

  it('the profile short-cut and the row scan agree, violations or not', async () => {
    const csv = [
      'n,i,c,b,d',
      ...Array.from(
        { length: 400 },
        (_, k) =>
          `${(k % 37) / 4},${k % 11},${['a', 'b', 'c'][k % 3]},${k % 2 === 0},2024-01-${String((k % 28) + 1).padStart(2, '0')}`,
      ),
    ].join('\n');
    const specs: DatasetContractInput['columns'][] = [
      [
        { name: 'n', type: 'number', min: 0, max: 9 },
        { name: 'i', type: 'integer', min: 0, max: 10, values: Array.from({ length: 11 }, (_, k) => k) },
        { name: 'c', type: 'category', values: ['a', 'b', 'c'], pattern: '[a-c]' },
        { name: 'b', type: 'boolean', values: [true, false] },
        { name: 'd', type: 'datetime', min: '2024-01-01', max: '2024-01-31' },
      ],
      [
        { name: 'n', type: 'integer', min: 1, max: 5 },
        { name: 'i', type: 'integer', values: [1, 2, 3] },
        { name: 'c', type: 'category', values: ['a', 'b'], pattern: '[ab]' },
        { name: 'b', type: 'boolean', values: [true] },
        { name: 'd', type: 'datetime', min: '2024-01-05', max: '2024-01-20' },
      ],
    ];
    const found: string[][] = [];
    for (const columns of specs) {
      const contract = parseDatasetContract({ columns });
      const { table } = await parse(csv, { contract });
      const profile = profileTable(table);
      const rules: string[] = [];
      table.columns.forEach((col, i) => {
        const spec = contract.columns[i]!;
        const withStats = checkColumn(col, spec, table.rows, profile.stats[i]);
        expect(withStats).toEqual(checkColumn(col, spec, table.rows));
        // The short-cut is taken exactly when nothing is wrong with the column.
        expect(cannotViolate(col, spec, table.rows, profile.stats[i]!)).toBe(withStats.length === 0);
        rules.push(...withStats.map((v) => `${v.rule}:${col.name}`));
      });
      found.push(rules);
    }
    expect(found[0]).toEqual([]);
    expect(found[1]).toEqual(
      expect.arrayContaining([
        'integer:n',
        'min:n',
        'max:n',
        'values:i',
        'values:c',
        'pattern:c',
        'values:b',
        'min:d',
        'max:d',
      ]),
    );
  });

  it('row rules: when/assert with column references; a null makes a comparison unknown, not a failure', async () => {
    const vs = await violations('age,education,sector\n30,12,a\n10,16,a\n,16,a\n20,25,b\n', {
      columns: [
        { name: 'age', type: 'integer', nullable: true },
        { name: 'education', type: 'integer' },
        { name: 'sector', type: 'category' },
      ],
      quality: {
        rowRules: [
          {
            id: 'age-vs-education',
            when: { column: 'sector', op: 'eq', value: 'a' },
            assert: { column: 'age', op: 'ge', value: { column: 'education' } },
          },
          {
            id: 'sector-known',
            assert: {
              any: [
                { column: 'sector', op: 'in', value: ['a'] },
                { not: { column: 'education', op: 'gt', value: 20 } },
              ],
            },
            severity: 'warning',
          },
        ],
      },
    });
    expect(rule(vs, 'row:age-vs-education')).toMatchObject({ count: 1, firstRows: [2] });
    expect(rule(vs, 'row:sector-known')).toMatchObject({ count: 1, firstRows: [4], severity: 'warning' });
  });
});
