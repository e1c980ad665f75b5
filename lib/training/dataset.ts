import type { Table } from '../data/table';
import { BOOL_NULL } from '../data/table';
import { NonRetriableError } from '../errors';

/**
 * The in-memory, columnar form of a dataset that training and evaluation read. Numeric columns are
 * Float64Arrays (NaN = missing); categorical columns are integer codes into `levels` (-1 = missing).
 * `lib/data` produces datasets in its own columnar format; an adapter turns those into this shape
 * without copying the typed arrays.
 */
export interface NumericColumn {
  readonly name: string;
  readonly type: 'numeric';
  readonly values: Float64Array;
}

export interface CategoricalColumn {
  readonly name: string;
  readonly type: 'categorical';
  readonly codes: Int32Array;
  readonly levels: readonly string[];
}

export type Column = NumericColumn | CategoricalColumn;

export interface ColumnarDataset {
  readonly rowCount: number;
  readonly columns: readonly Column[];
}

/** The column called `name`, or a NonRetriableError naming what is missing. */
export function getColumn(ds: ColumnarDataset, name: string): Column {
  const col = ds.columns.find((c) => c.name === name);
  if (!col) {
    throw new NonRetriableError(
      'missing_column',
      `dataset has no column "${name}" (columns: ${ds.columns.map((c) => c.name).join(', ')})`,
    );
  }
  return col;
}

/** A new dataset holding only `rows` (in that order). */
export function selectRows(ds: ColumnarDataset, rows: ArrayLike<number>): ColumnarDataset {
  const n = rows.length;
  const columns = ds.columns.map((c): Column => {
    if (c.type === 'numeric') {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = c.values[rows[i]!]!;
      return { name: c.name, type: 'numeric', values };
    }
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++) codes[i] = c.codes[rows[i]!]!;
    return { name: c.name, type: 'categorical', codes, levels: c.levels };
  });
  return { rowCount: n, columns };
}

export type ColumnTypes = Record<string, 'numeric' | 'categorical'>;

/**
 * Builds a dataset from plain records (scoring requests, tests). Numeric cells that are null,
 * undefined, '' or not finite become NaN; categorical cells are stringified, null/undefined/'' are
 * missing.
 */
export function datasetFromRecords(
  records: readonly Record<string, unknown>[],
  types: ColumnTypes,
): ColumnarDataset {
  const n = records.length;
  const columns = Object.entries(types).map(([name, type]): Column => {
    if (type === 'numeric') {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = toNumber(records[i]![name]);
      return { name, type, values };
    }
    const levels: string[] = [];
    const index = new Map<string, number>();
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = records[i]![name];
      if (v === null || v === undefined || v === '') {
        codes[i] = -1;
        continue;
      }
      const s = String(v);
      let code = index.get(s);
      if (code === undefined) {
        code = levels.length;
        levels.push(s);
        index.set(s, code);
      }
      codes[i] = code;
    }
    return { name, type, codes, levels };
  });
  return { rowCount: n, columns };
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : NaN;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '') {
    const x = Number(v);
    return Number.isFinite(x) ? x : NaN;
  }
  return NaN;
}

/**
 * Adapts a lib/data table (typed columns decoded from the columnar form) without copying the typed
 * arrays: numbers, integers and datetimes (epoch ms) are numeric; categories and strings are
 * categorical with their dictionary as levels; booleans are categorical with levels false/true.
 */
export function datasetFromTable(table: Table): ColumnarDataset {
  const columns = table.columns.map((c): Column => {
    switch (c.type) {
      case 'number':
      case 'integer':
      case 'datetime':
        return { name: c.name, type: 'numeric', values: c.values };
      case 'category':
      case 'string':
        return { name: c.name, type: 'categorical', codes: c.codes, levels: c.dictionary };
      case 'boolean': {
        const codes = new Int32Array(c.values.length);
        for (let i = 0; i < codes.length; i++) codes[i] = c.values[i] === BOOL_NULL ? -1 : c.values[i]!;
        return { name: c.name, type: 'categorical', codes, levels: ['false', 'true'] };
      }
    }
  });
  return { rowCount: table.rows, columns };
}

/**
 * Stacks datasets with the same column names (the candidate's holdout and a pinned golden set).
 * Categorical levels are merged by value, so the same category keeps one meaning across parts;
 * a column missing from a part is missing in its rows.
 */
export function concatDatasets(parts: readonly ColumnarDataset[]): ColumnarDataset {
  const first = parts[0];
  if (!first) return { rowCount: 0, columns: [] };
  if (parts.length === 1) return first;
  const n = parts.reduce((s, p) => s + p.rowCount, 0);
  const columns = first.columns.map((c): Column => {
    if (c.type === 'numeric') {
      const values = new Float64Array(n).fill(NaN);
      let offset = 0;
      for (const p of parts) {
        const col = p.columns.find((x) => x.name === c.name);
        if (col?.type === 'numeric') values.set(col.values, offset);
        offset += p.rowCount;
      }
      return { name: c.name, type: 'numeric', values };
    }
    const levels: string[] = [];
    const index = new Map<string, number>();
    const codes = new Int32Array(n).fill(-1);
    let offset = 0;
    for (const p of parts) {
      const col = p.columns.find((x) => x.name === c.name);
      if (col?.type === 'categorical') {
        const map = col.levels.map((l) => {
          let k = index.get(l);
          if (k === undefined) {
            k = levels.length;
            levels.push(l);
            index.set(l, k);
          }
          return k;
        });
        for (let i = 0; i < p.rowCount; i++) {
          const code = col.codes[i]!;
          codes[offset + i] = code < 0 ? -1 : map[code]!;
        }
      }
      offset += p.rowCount;
    }
    return { name: c.name, type: 'categorical', codes, levels };
  });
  return { rowCount: n, columns };
}
