import type { Column, ColumnBuilder, FieldBatch, Table } from '../table';
import { createBuilder, decodeUtf8, isDictionary } from '../table';
import type { ColumnType } from '../../contracts/datasetContract';
import type { CsvSink } from './csv';
import { inferTypeFromTexts, isCategorical } from '../checking/infer';

/** What reading needs of a contract: the declared column types and the null tokens. */
export interface DeclaredTypes {
  columns: readonly { name: string; type: ColumnType }[];
  nullValues?: readonly string[];
}

/** Rows of the first batch that decide the type of a column the contract does not declare. */
export const INFER_SAMPLE_ROWS = 2000;
const DEFAULT_NULLS = ['', 'NA', 'N/A', 'null', 'NULL', 'NaN'];

/**
 * Builds typed columns from a parser. Columns the contract declares are read strictly as their
 * declared type (bad values become nulls with a parse issue, which validation reports); other
 * columns get a type inferred from the first rows and widen (integer → number → string) if a later
 * value does not fit.
 */
export class TableBuilder implements CsvSink {
  private names: string[] = [];
  private readonly index = new Map<string, number>();
  private builders: (ColumnBuilder | undefined)[] = [];
  private readonly strict: boolean[] = [];
  private rows = 0;
  private readonly nullValues: readonly string[];
  private readonly declared: Map<string, ColumnType>;

  constructor(contract?: DeclaredTypes) {
    this.nullValues = contract?.nullValues ?? DEFAULT_NULLS;
    this.declared = new Map((contract?.columns ?? []).map((c) => [c.name, c.type]));
  }

  header(names: string[]): void {
    this.names = names;
    names.forEach((n, i) => this.index.set(n, i));
    this.builders = names.map((name) => {
      const type = this.declared.get(name);
      this.strict.push(type !== undefined);
      return type === undefined
        ? undefined
        : createBuilder(type, { nullValues: this.nullValues, strict: true });
    });
  }

  batch(batch: FieldBatch): void {
    const builders = this.builders;
    for (let f = 0; f < builders.length; f++) {
      let b = builders[f];
      if (b === undefined) {
        const sample: string[] = [];
        const rows = Math.min(batch.rows, INFER_SAMPLE_ROWS);
        for (let r = 0; r < rows; r++) {
          const k = r * batch.stride + f;
          const text = decodeUtf8(batch.buf, batch.starts[k]!, batch.ends[k]!);
          sample.push(batch.escaped[k] === 1 ? text.replaceAll('""', '"') : text);
        }
        b = createBuilder(inferTypeFromTexts(sample, this.nullValues), {
          nullValues: this.nullValues,
          strict: false,
        });
      }
      let from = b.consumeBatch(batch, f, 0);
      while (from !== -1) {
        b = b.widen();
        from = b.consumeBatch(batch, f, from);
      }
      builders[f] = b;
    }
    this.rows += batch.rows;
  }

  /** Adds one JSON Lines record; keys not seen before become new columns (earlier rows null). */
  record(obj: Record<string, unknown>, row: number, onNewColumn: (name: string) => void): void {
    for (const key of Object.keys(obj)) {
      if (this.index.has(key)) continue;
      onNewColumn(key);
      this.index.set(key, this.names.push(key) - 1);
      const type = this.declared.get(key);
      this.strict.push(type !== undefined);
      // An undeclared column gets its builder from its first non-null value (JSON has types).
      const b =
        type === undefined ? undefined : createBuilder(type, { nullValues: this.nullValues, strict: true });
      for (let i = 0; b && i < this.rows; i++) b.pushNull();
      this.builders.push(b);
    }
    for (let f = 0; f < this.names.length; f++) {
      const v = obj[this.names[f]!];
      let b = this.builders[f];
      if (b === undefined) {
        if (v === null || v === undefined) continue; // still all nulls: rows are filled in when typed
        b = createBuilder(typeof v === 'number' ? 'integer' : typeof v === 'boolean' ? 'boolean' : 'string', {
          nullValues: this.nullValues,
          strict: false,
        });
        for (let i = 0; i < this.rows; i++) b.pushNull();
      }
      while (!b.pushValue(v, row)) b = b.widen();
      this.builders[f] = b;
    }
    this.rows++;
  }

  /** Sizes every column for about `rows` rows in total (from the input size), so columns do not regrow. */
  expectRows(rows: number): void {
    for (const b of this.builders) b?.reserveTotal(Math.ceil(rows));
  }

  get rowCount(): number {
    return this.rows;
  }

  get columnNames(): readonly string[] {
    return this.names;
  }

  finish(): Table {
    const columns: Column[] = this.names.map((name, f) => {
      let b = this.builders[f];
      if (!b) {
        // Never saw a non-null value: a column of nulls.
        b = createBuilder('string', { nullValues: this.nullValues, strict: false });
        for (let i = 0; i < this.rows; i++) b.pushNull();
      }
      const col = b.finish(name);
      if (this.strict[f]) return col;
      return settleInferredType(col);
    });
    return { rows: this.rows, columns };
  }
}

/** An inferred column's final type, from all its values: integer only if every value is whole, category only if few distinct values. */
function settleInferredType(col: Column): Column {
  if (col.type === 'integer') {
    for (let i = 0; i < col.values.length; i++) {
      const v = col.values[i]!;
      if (v === v && !Number.isInteger(v)) return { ...col, type: 'number' };
    }
    return col;
  }
  if (isDictionary(col)) {
    let nonNull = 0;
    for (let i = 0; i < col.codes.length; i++) if (col.codes[i] !== -1) nonNull++;
    return { ...col, type: isCategorical(col.dictionary.length, nonNull) ? 'category' : 'string' };
  }
  return col;
}
