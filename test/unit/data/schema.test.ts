import { decodeColumnar, encodeColumnar } from '../../../lib/data/reading/columnar';
import { datasetContractSchema, parseDatasetContract } from '../../../lib/contracts/datasetContract';
import { inferTypeFromTexts } from '../../../lib/data/checking/infer';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { diffDatasetContracts, diffDatasets } from '../../../lib/data/checking/schemaDiff';
import { column, parse, rowsOf } from './helpers';

const nulls = ['', 'NA'];

describe('type inference from a sample', () => {
  it.each([
    [['1', '2', 'NA', '-3'], 'integer'],
    [['1', '2.5', '1e3'], 'number'],
    [['yes', 'no', 'Yes'], 'boolean'],
    [['0', '1', '1'], 'integer'],
    [['2024-01-02', '2024-02-03T04:05:06Z'], 'datetime'],
    [['a', 'b', 'a', 'a', 'b', 'a', 'b', 'a', 'a', 'b', 'b'], 'category'],
    [['alice', 'bob', 'carol'], 'string'],
    [['NA', ''], 'string'],
  ])('%j → %s', (texts, type) => {
    expect(inferTypeFromTexts(texts, nulls)).toBe(type);
  });

  it('proposes a contract with types, ranges, nullability, category sets, unique ids and the task', async () => {
    const rows = Array.from(
      { length: 60 },
      (_, i) =>
        `${i + 1},${20 + (i % 30)},${['n', 's', 'e'][i % 3]},${i % 7 === 0 ? '' : (i * 1.5).toFixed(1)},${i % 2}`,
    );
    const { table } = await parse(`id,age,region,wage,union\n${rows.join('\n')}\n`);
    const c = inferDatasetContract(table, { target: 'union' });
    expect(c.columns).toEqual([
      { name: 'id', type: 'integer', nullable: false, min: 1, max: 60, unique: true },
      { name: 'age', type: 'integer', nullable: false, min: 20, max: 49, unique: false },
      { name: 'region', type: 'category', nullable: false, values: ['e', 'n', 's'], unique: false },
      { name: 'wage', type: 'number', nullable: true, min: 1.5, max: 88.5, unique: false },
      { name: 'union', type: 'integer', nullable: false, min: 0, max: 1, unique: false },
    ]);
    expect(c).toMatchObject({ target: 'union', task: 'binary' });
    expect(() => datasetContractSchema.parse(c)).not.toThrow();
  });
});

describe('schema diff', () => {
  const base = parseDatasetContract({
    columns: [
      { name: 'a', type: 'integer', min: 0, max: 10 },
      { name: 'b', type: 'category', values: ['x', 'y'] },
      { name: 'c', type: 'string' },
    ],
  });
  it('identical contracts', () => {
    expect(diffDatasetContracts(base, base)).toEqual({ identical: true, breaking: false, changes: [] });
  });
  it('added, removed, retyped, nullable, range and value changes, each marked breaking or not', () => {
    const next = parseDatasetContract({
      columns: [
        { name: 'a', type: 'number', min: 0, max: 20, nullable: true },
        { name: 'b', type: 'category', values: ['x', 'z'] },
        { name: 'd', type: 'boolean' },
      ],
    });
    const d = diffDatasetContracts(base, next);
    const kinds = d.changes.map((c) => [c.kind, c.column, c.breaking]);
    expect(kinds).toEqual([
      ['typeChanged', 'a', false],
      ['nullableChanged', 'a', true],
      ['valuesChanged', 'b', true],
      ['columnRemoved', 'c', true],
      ['columnAdded', 'd', false],
    ]);
    expect(d.breaking).toBe(true);
  });
  it('two datasets: a new category and values beyond the old range; shifts inside the range are left to drift', async () => {
    const before = await parse('n,k\n1,a\n5,b\n10,a\n');
    const after = await parse('n,k\n2,a\n12,c\n3,b\n');
    const d = diffDatasets(before.table, after.table);
    expect(d.changes.map((c) => c.kind)).toEqual(['rangeChanged', 'valuesChanged']);
    const inside = await parse('n,k\n2,a\n9,b\n3,b\n');
    expect(diffDatasets(before.table, inside.table).identical).toBe(true);
  });
});

describe('columnar form', () => {
  it('round-trips every column type, nulls and parse issues, and is deterministic', async () => {
    const contract = parseDatasetContract({
      columns: [
        { name: 'i', type: 'integer' },
        { name: 'x', type: 'number', nullable: true },
        { name: 'b', type: 'boolean', nullable: true },
        { name: 'c', type: 'category' },
        { name: 't', type: 'datetime' },
        { name: 's', type: 'string', nullable: true },
      ],
    });
    const { table } = await parse(
      'i,x,b,c,t,s\n1,1.5,true,α,2024-01-01,"q ""z"""\n2,,,β,2024-01-02T10:00:00Z,\n3,oops,no,α,2024-01-03,z\n',
      { contract },
    );
    const parts = encodeColumnar(table, { source: 'abc' });
    const bytes = Buffer.concat(parts);
    expect(bytes.length % 8).toBe(0);
    expect(Buffer.concat(encodeColumnar(table, { source: 'abc' })).equals(bytes)).toBe(true);
    const back = decodeColumnar(bytes);
    expect(rowsOf(back)).toEqual(rowsOf(table));
    expect(back.columns.map((c) => c.type)).toEqual([
      'integer',
      'number',
      'boolean',
      'category',
      'datetime',
      'string',
    ]);
    expect(column(back, 'x').issues).toEqual({ count: 1, firstRows: [3], examples: ['oops'] });
    expect(back.meta).toEqual({ source: 'abc' });
    // An unaligned copy (as from a pooled Buffer) decodes too.
    const unaligned = Buffer.alloc(bytes.length + 1).subarray(1);
    bytes.copy(unaligned);
    expect(rowsOf(decodeColumnar(unaligned))).toEqual(rowsOf(table));
  });

  it('refuses bytes that are not a columnar file', () => {
    expect(() => decodeColumnar(Buffer.from('id,name\n1,x\n'))).toThrow(/not a Sluice columnar file/);
  });

  it('refuses a damaged header naming the field, with COLUMNAR_INVALID', async () => {
    const { table } = await parse('a,b\n1,x\n2,y\n');
    const bytes = Buffer.concat(encodeColumnar(table));
    const len = bytes.readUInt32LE(8);
    const header = JSON.parse(bytes.toString('utf8', 12, 12 + len)) as Record<string, unknown>;
    const withHeader = (h: unknown): Buffer => {
      const json = Buffer.from(JSON.stringify(h));
      const prefix = Buffer.alloc(12);
      prefix.write('SLUICOL1', 0, 'latin1');
      prefix.writeUInt32LE(json.length, 8);
      return Buffer.concat([prefix, json]);
    };
    const cases: [unknown, RegExp][] = [
      [{ ...header, version: 2 }, /version: expected one of 1/],
      [{ ...header, rows: -1 }, /rows: expected an integer ≥ 0/],
      [{ ...header, columns: [{ ...(header.columns as object[])[0], type: 'blob' }] }, /columns\[0\]\.type/],
      [
        { ...header, columns: [{ ...(header.columns as object[])[0], data: { offset: 'x', bytes: 1 } }] },
        /columns\[0\]\.data\.offset/,
      ],
      [{ ...header, meta: { k: [1] } }, /meta\.k: expected a string or a number/],
      ['just a string', /header: expected an object/],
    ];
    for (const [h, message] of cases) {
      let error: (Error & { code?: string }) | undefined;
      try {
        decodeColumnar(withHeader(h));
      } catch (err) {
        error = err as Error & { code?: string };
      }
      expect(error?.code).toBe('COLUMNAR_INVALID');
      expect(error?.message).toMatch(message);
    }
    const notJson = withHeader({});
    notJson.write('!', 12);
    expect(() => decodeColumnar(notJson)).toThrow(/columnar header is not JSON/);
  });
});

describe('dataset contract schema', () => {
  it('fills defaults so a short contract is complete', () => {
    const c = parseDatasetContract({ columns: [{ name: 'a', type: 'number' }] });
    expect(c.drift.thresholds).toEqual({ psi: 0.2, jensenShannon: 0.1, wasserstein: 0.1, ks: 0.1 });
    expect(c.drift).toMatchObject({
      minSampleSize: 100,
      reference: { kind: 'production' },
      numeric: ['psi', 'wasserstein', 'ks'],
    });
    expect(c.quality).toMatchObject({ unexpectedColumns: 'warning', rowRules: [] });
  });
  it.each([
    [
      {
        columns: [
          { name: 'a', type: 'number' },
          { name: 'a', type: 'integer' },
        ],
      },
      'duplicate column',
    ],
    [{ columns: [{ name: 'a', type: 'number' }], target: 'b', task: 'regression' }, 'not a declared column'],
    [{ columns: [{ name: 'a', type: 'category' }], target: 'a', task: 'regression' }, 'regression target'],
    [{ columns: [{ name: 'a', type: 'number' }], target: 'a' }, 'target and task go together'],
    [{ columns: [{ name: 'a', type: 'string', pattern: '(' }] }, 'regular expression'],
    [{ columns: [{ name: 'a', type: 'number', min: 5, max: 1 }] }, 'min must not exceed max'],
    [
      { columns: [{ name: 'a', type: 'number' }], drift: { verdict: { critical: ['zz'] } } },
      'unknown column',
    ],
  ])('refuses %j', (input, message) => {
    const r = datasetContractSchema.safeParse(input);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain(message);
  });
});
