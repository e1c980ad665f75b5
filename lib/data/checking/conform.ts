import type { Column, ParseIssues, Table } from '../table';
import {
  BOOL_NULL,
  emptyIssues,
  MAX_ISSUE_ROWS,
  NULL_CODE,
  parseBooleanText,
  parseDatetimeText,
  parseNumberText,
} from '../table';
import type { ColumnType, DatasetContract } from '../../contracts/datasetContract';

/**
 * Makes a table's columns the types its contract declares: a dataset ingested before a contract
 * existed (types inferred), or a reference from an older contract, is read as the contract says.
 * Values that do not convert become nulls with a parse issue, exactly as if parsed with the contract.
 */
export function conformTable(table: Table, contract: Pick<DatasetContract, 'columns' | 'nullValues'>): Table {
  const declared = new Map(contract.columns.map((c) => [c.name, c.type]));
  return {
    rows: table.rows,
    columns: table.columns.map((col) => {
      const type = declared.get(col.name);
      return type === undefined ? col : conformColumn(col, type, contract.nullValues);
    }),
  };
}

function family(t: ColumnType): 'numeric' | 'text' | 'boolean' | 'datetime' {
  return t === 'number' || t === 'integer' ? 'numeric' : t === 'category' || t === 'string' ? 'text' : t;
}

function withIssue(issues: ParseIssues, row: number, example: string): void {
  issues.count++;
  if (issues.firstRows.length < MAX_ISSUE_ROWS) issues.firstRows.push(row);
  if (issues.examples.length < 5 && !issues.examples.includes(example)) issues.examples.push(example);
}

/** Text form of every row (null where null), for conversions out of any type. */
function texts(col: Column): (string | null)[] {
  const out: (string | null)[] = [];
  switch (col.type) {
    case 'category':
    case 'string':
      for (const c of col.codes) out.push(c === NULL_CODE ? null : col.dictionary[c]!);
      break;
    case 'boolean':
      for (const v of col.values) out.push(v === BOOL_NULL ? null : v === 1 ? 'true' : 'false');
      break;
    case 'datetime':
      for (const v of col.values) out.push(Number.isNaN(v) ? null : new Date(v).toISOString());
      break;
    default:
      for (const v of col.values) out.push(Number.isNaN(v) ? null : String(v));
  }
  return out;
}

export function conformColumn(col: Column, type: ColumnType, nullValues: readonly string[]): Column {
  if (col.type === type) return col;
  const from = family(col.type);
  const to = family(type);
  if (from === to) return { ...col, type } as Column; // number ↔ integer, category ↔ string: same storage
  const issues: ParseIssues = { ...emptyIssues(), ...structuredClone(col.issues) };
  if (to === 'text') {
    const dictionary: string[] = [];
    const index = new Map<string, number>();
    const all = texts(col);
    const codes = new Int32Array(all.length);
    all.forEach((t, i) => {
      if (t === null) codes[i] = NULL_CODE;
      else {
        let c = index.get(t);
        if (c === undefined) {
          c = dictionary.push(t) - 1;
          index.set(t, c);
        }
        codes[i] = c;
      }
    });
    return { name: col.name, type: type as 'category' | 'string', codes, dictionary, issues };
  }
  const source = texts(col);
  // Convert each distinct text once: columns have far fewer distinct values than rows.
  const memo = new Map<string, number>();
  const read = (t: string): number => {
    let v = memo.get(t);
    if (v === undefined) {
      if (nullValues.includes(t))
        v = Infinity; // marker: null, not invalid
      else if (to === 'numeric') v = from === 'boolean' ? (t === 'true' ? 1 : 0) : parseNumberText(t);
      else if (to === 'datetime') v = from === 'numeric' ? NaN : parseDatetimeText(t);
      else {
        const b = parseBooleanText(t);
        v = b === undefined ? NaN : b ? 1 : 0;
      }
      memo.set(t, v);
    }
    return v;
  };
  if (to === 'boolean') {
    const values = new Uint8Array(source.length);
    source.forEach((t, i) => {
      const v = t === null ? Infinity : read(t);
      if (Number.isNaN(v)) withIssue(issues, i + 1, t!);
      values[i] = v === 0 || v === 1 ? v : BOOL_NULL;
    });
    return { name: col.name, type: 'boolean', values, issues };
  }
  const values = new Float64Array(source.length);
  source.forEach((t, i) => {
    const v = t === null ? Infinity : read(t);
    if (Number.isNaN(v)) withIssue(issues, i + 1, t!);
    values[i] = v === Infinity ? NaN : v;
  });
  return { name: col.name, type: type as 'number' | 'integer' | 'datetime', values, issues };
}
