import type { Column, Table } from '../table';
import { BOOL_NULL, isDictionary, MAX_ISSUE_ROWS, NULL_CODE, parseDatetimeText, valueAt } from '../table';
import type {
  ColumnContract,
  ComparisonPredicate,
  DatasetContract,
  RowPredicate,
  Severity,
} from '../../contracts/datasetContract';
import type { ColumnStats, TableProfile } from '../profiling/profile';
import { skipEqual } from '../profiling/sort';

/**
 * Contract and data-quality checks on typed columns. Every check is a linear pass (or one pass
 * over a dictionary: a pattern is tested once per distinct value, not once per row), and every
 * violation names its rule, its column and the first rows that break it.
 */

export interface Violation {
  rule: string;
  column?: string;
  severity: Severity;
  /** Rows (or, for dataset rules, units) that break the rule. */
  count: number;
  /** 1-based data row numbers (the header is row 0), at most MAX_ISSUE_ROWS. */
  firstRows: number[];
  examples?: (string | number | boolean | null)[];
  message: string;
}

const MAX_EXAMPLES = 5;

/** Collects the rows of one violation without keeping more than the first few. */
class RowCollector {
  count = 0;
  readonly rows: number[] = [];
  readonly examples: (string | number | boolean | null)[] = [];
  constructor(private readonly col?: Column) {}
  add(i: number): void {
    this.count++;
    if (this.rows.length < MAX_ISSUE_ROWS) this.rows.push(i + 1);
    if (this.col && this.examples.length < MAX_EXAMPLES) {
      const v = valueAt(this.col, i);
      if (!this.examples.includes(v)) this.examples.push(v);
    }
  }
  violation(
    rule: string,
    message: string,
    column?: string,
    severity: Severity = 'error',
  ): Violation | undefined {
    if (this.count === 0) return undefined;
    const v: Violation = { rule, severity, count: this.count, firstRows: this.rows, message };
    if (column !== undefined) v.column = column;
    if (this.examples.length) v.examples = this.examples;
    return v;
  }
}

function bound(col: ColumnContract, which: 'min' | 'max'): number | undefined {
  const b = col[which];
  if (b === undefined) return undefined;
  return typeof b === 'number' ? b : parseDatetimeText(b);
}

/** Checks one column against its contract. `col` already has the contract's type (see conform.ts). */
export function checkColumn(
  col: Column,
  spec: ColumnContract,
  rows: number,
  stats?: ColumnStats,
): Violation[] {
  const out: (Violation | undefined)[] = [];
  const name = col.name;
  if (col.issues.count > 0) {
    out.push({
      rule: 'type',
      column: name,
      severity: 'error',
      count: col.issues.count,
      firstRows: col.issues.firstRows,
      examples: col.issues.examples,
      message: `${col.issues.count} value(s) are not ${spec.type}`,
    });
  }
  if (stats && cannotViolate(col, spec, rows, stats)) {
    if (spec.unique) out.push(checkUnique(col, rows, stats));
    return out.filter((v): v is Violation => v !== undefined);
  }
  const invalidRows = new Set(col.issues.firstRows);
  const nulls = new RowCollector();
  const ints = new RowCollector(col);
  const low = new RowCollector(col);
  const high = new RowCollector(col);
  const notAllowed = new RowCollector(col);
  const pattern = new RowCollector(col);
  const min = bound(spec, 'min');
  const max = bound(spec, 'max');

  if (isDictionary(col)) {
    // Decide each distinct value once.
    const allowed = spec.values ? new Set(spec.values.map(String)) : undefined;
    const re = spec.pattern !== undefined ? new RegExp(`^(?:${spec.pattern})$`, 'u') : undefined;
    const badValue = col.dictionary.map((t) => (allowed ? !allowed.has(t) : false));
    const badPattern = col.dictionary.map((t) => (re ? !re.test(t) : false));
    for (let i = 0; i < rows; i++) {
      const c = col.codes[i]!;
      if (c === NULL_CODE) {
        if (!spec.nullable && !invalidRows.has(i + 1)) nulls.add(i);
        continue;
      }
      if (badValue[c]) notAllowed.add(i);
      if (badPattern[c]) pattern.add(i);
    }
  } else if (col.type === 'boolean') {
    const allowed = spec.values ? new Set(spec.values.map((v) => String(v).toLowerCase())) : undefined;
    for (let i = 0; i < rows; i++) {
      const v = col.values[i];
      if (v === BOOL_NULL) {
        if (!spec.nullable && !invalidRows.has(i + 1)) nulls.add(i);
      } else if (allowed && !allowed.has(v === 1 ? 'true' : 'false')) notAllowed.add(i);
    }
  } else {
    const values = col.values;
    const allowed = spec.values ? new Set(spec.values.map(Number)) : undefined;
    const checkInt = col.type === 'integer';
    const lo = min ?? -Infinity;
    const hi = max ?? Infinity;
    for (let i = 0; i < rows; i++) {
      const v = values[i]!;
      if (v !== v) {
        if (!spec.nullable && !invalidRows.has(i + 1)) nulls.add(i);
        continue;
      }
      if (checkInt && !Number.isInteger(v)) ints.add(i);
      if (v < lo) low.add(i);
      if (v > hi) high.add(i);
      if (allowed && !allowed.has(v)) notAllowed.add(i);
    }
  }
  out.push(
    nulls.violation('nullable', `${nulls.count} null value(s) in a column that is not nullable`, name),
  );
  out.push(ints.violation('integer', `${ints.count} value(s) are not whole numbers`, name));
  out.push(low.violation('min', `${low.count} value(s) below the minimum ${String(spec.min)}`, name));
  out.push(high.violation('max', `${high.count} value(s) above the maximum ${String(spec.max)}`, name));
  out.push(notAllowed.violation('values', `${notAllowed.count} value(s) outside the allowed values`, name));
  out.push(
    pattern.violation('pattern', `${pattern.count} value(s) do not match /${spec.pattern ?? ''}/`, name),
  );
  if (spec.unique) out.push(checkUnique(col, rows, stats));
  return out.filter((v): v is Violation => v !== undefined);
}

/**
 * Whether the profile's statistics already prove the row checks below would find nothing (no nulls
 * where none are allowed, range, whole numbers, allowed values, pattern): then the rows need not
 * be scanned, and the scan runs only to name the first offending rows when something is wrong.
 */
export function cannotViolate(col: Column, spec: ColumnContract, rows: number, stats: ColumnStats): boolean {
  if (isDictionary(col)) {
    const counts = stats.codeCounts;
    if (!counts || counts.length !== col.dictionary.length) return false;
    const allowed = spec.values ? new Set(spec.values.map(String)) : undefined;
    const re = spec.pattern !== undefined ? new RegExp(`^(?:${spec.pattern})$`, 'u') : undefined;
    let nonNull = 0;
    for (let c = 0; c < counts.length; c++) {
      const k = counts[c]!;
      if (k === 0) continue;
      nonNull += k;
      const t = col.dictionary[c]!;
      if ((allowed && !allowed.has(t)) || (re && !re.test(t))) return false;
    }
    return spec.nullable || nonNull === rows;
  }
  if (col.type === 'boolean') {
    const b = stats.booleanCounts;
    if (!b) return false;
    if (!spec.nullable && b.trueCount + b.falseCount !== rows) return false;
    if (!spec.values) return true;
    const allowed = new Set(spec.values.map((v) => String(v).toLowerCase()));
    return (b.trueCount === 0 || allowed.has('true')) && (b.falseCount === 0 || allowed.has('false'));
  }
  const sorted = stats.sorted;
  if (!sorted || stats.sampled !== undefined) return false;
  const n = sorted.length;
  if (!spec.nullable && n !== rows) return false;
  if (n === 0) return true;
  const min = bound(spec, 'min');
  const max = bound(spec, 'max');
  if ((min !== undefined && sorted[0]! < min) || (max !== undefined && sorted[n - 1]! > max)) return false;
  const checkInt = col.type === 'integer';
  const allowed = spec.values ? new Set(spec.values.map(Number)) : undefined;
  if (!checkInt && !allowed) return true;
  // Each distinct value once (the values are sorted).
  for (let i = 0; i < n;) {
    const v = sorted[i]!;
    i = i + 1 < n && sorted[i + 1] === v ? skipEqual(sorted, i + 1, v) : i + 1;
    if (checkInt && !Number.isInteger(v)) return false;
    if (allowed && !allowed.has(v)) return false;
  }
  return true;
}

/** Rows whose non-null value appeared in an earlier row. */
function checkUnique(col: Column, rows: number, stats?: ColumnStats): Violation | undefined {
  const dup = new RowCollector(col);
  if (isDictionary(col)) {
    const seen = new Uint8Array(col.dictionary.length);
    for (let i = 0; i < rows; i++) {
      const c = col.codes[i]!;
      if (c === NULL_CODE) continue;
      if (seen[c]) dup.add(i);
      else seen[c] = 1;
    }
  } else if (col.type === 'boolean') {
    let t = false;
    let f = false;
    for (let i = 0; i < rows; i++) {
      const v = col.values[i];
      if (v === 1) {
        if (t) dup.add(i);
        t = true;
      } else if (v === 0) {
        if (f) dup.add(i);
        f = true;
      }
    }
  } else {
    // The sorted values (from the profile) say whether anything repeats, and which values do.
    const sorted = stats?.sorted;
    let repeated: Set<number> | undefined;
    if (sorted) {
      for (let i = 1; i < sorted.length; i++) {
        if (sorted[i] === sorted[i - 1]) (repeated ??= new Set()).add(sorted[i]!);
      }
      if (!repeated) return undefined;
    }
    const seen = new Set<number>();
    for (let i = 0; i < rows; i++) {
      const v = col.values[i]!;
      if (v !== v || (repeated && !repeated.has(v))) continue;
      if (seen.has(v)) dup.add(i);
      else seen.add(v);
    }
  }
  return dup.violation('unique', `${dup.count} value(s) repeat an earlier row`, col.name);
}

/**
 * A column with a distinct non-null value in every row (an id, a timestamp) makes every row unique,
 * so the duplicate-row search can be skipped: the profile has counted distinct values already.
 * Sampled profiles count distinct values of a sample only and do not qualify.
 */
export function hasKeyColumn(table: Table, profile: TableProfile): boolean {
  return profile.columns.some(
    (p, i) => p.nulls === 0 && p.distinct === table.rows && profile.stats[i]?.sampled === undefined,
  );
}

/** Rows identical to an earlier row in every column (hash, then an exact comparison). */
export function duplicateRows(table: Table): { count: number; firstRows: number[] } {
  const n = table.rows;
  const hash = new Uint32Array(n).fill(0x811c9dc5);
  // One tight loop per column (no per-cell calls): FNV-style mixing of each cell's bits.
  for (const col of table.columns) {
    if (isDictionary(col) || col.type === 'boolean') {
      const cells = isDictionary(col) ? col.codes : col.values;
      for (let i = 0; i < n; i++) {
        const x = Math.imul(hash[i]! ^ cells[i]!, 0x01000193);
        hash[i] = x ^ (x >>> 15);
      }
    } else {
      const words = new Uint32Array(col.values.buffer, col.values.byteOffset, n * 2);
      for (let i = 0; i < n; i++) {
        const x = Math.imul(hash[i]! ^ words[2 * i]! ^ Math.imul(words[2 * i + 1]!, 0x9e3779b1), 0x01000193);
        hash[i] = x ^ (x >>> 15);
      }
    }
  }
  const same = (a: number, b: number): boolean =>
    table.columns.every((col) => {
      if (isDictionary(col)) return col.codes[a] === col.codes[b];
      if (col.type === 'boolean') return col.values[a] === col.values[b];
      const x = col.values[a]!;
      const y = col.values[b]!;
      return x === y || (x !== x && y !== y);
    });
  let size = 1;
  while (size < n * 2) size <<= 1;
  const slots = new Int32Array(size).fill(-1);
  const mask = size - 1;
  let count = 0;
  const firstRows: number[] = [];
  for (let i = 0; i < n; i++) {
    let s = hash[i]! & mask;
    for (;;) {
      const j = slots[s]!;
      if (j === -1) {
        slots[s] = i;
        break;
      }
      if (hash[j] === hash[i] && same(i, j)) {
        count++;
        if (firstRows.length < MAX_ISSUE_ROWS) firstRows.push(i + 1);
        break;
      }
      s = (s + 1) & mask;
    }
  }
  return { count, firstRows };
}

/** Kleene logic: 0 false, 1 true, 2 unknown (a null took part). */
type Truth = Uint8Array;
const F = 0;
const T = 1;
const U = 2;

function literalFor(col: Column, value: string | number | boolean): number | string | undefined {
  if (col.type === 'datetime')
    return typeof value === 'string' ? parseDatetimeText(value) : value === true ? undefined : Number(value);
  if (col.type === 'boolean')
    return value === true || value === 'true' ? 1 : value === false || value === 'false' ? 0 : undefined;
  if (isDictionary(col)) return String(value);
  return typeof value === 'number' ? value : Number(value);
}

/** Numeric view of a column for comparisons (dictionary columns compare as text). */
function evaluate(pred: RowPredicate, table: Table, byName: Map<string, Column>): Truth {
  const n = table.rows;
  if ('all' in pred || 'any' in pred) {
    const parts = ('all' in pred ? pred.all : pred.any).map((p) => evaluate(p, table, byName));
    const out = new Uint8Array(n);
    const isAll = 'all' in pred;
    for (let i = 0; i < n; i++) {
      let unknown = false;
      let decided = false;
      for (const p of parts) {
        const v = p[i]!;
        if (v === U) unknown = true;
        else if ((v === F && isAll) || (v === T && !isAll)) {
          decided = true;
          break;
        }
      }
      out[i] = decided ? (isAll ? F : T) : unknown ? U : isAll ? T : F;
    }
    return out;
  }
  if ('not' in pred) {
    const inner = evaluate(pred.not, table, byName);
    for (let i = 0; i < n; i++) inner[i] = inner[i] === U ? U : inner[i] === T ? F : T;
    return inner;
  }
  const col = byName.get(pred.column);
  const out = new Uint8Array(n);
  if (!col) return out.fill(U); // a missing column is reported as such, not as n rule failures
  const isText = isDictionary(col);
  const num = (i: number): number =>
    col.type === 'boolean'
      ? col.values[i] === BOOL_NULL
        ? NaN
        : col.values[i]!
      : isText
        ? NaN
        : (col as { values: Float64Array }).values[i]!;
  const text = (i: number): string | null =>
    isText ? (col.codes[i] === NULL_CODE ? null : col.dictionary[col.codes[i]!]!) : null;
  const isNull = (i: number): boolean => (isText ? col.codes[i] === NULL_CODE : Number.isNaN(num(i)));
  if (pred.op === 'isNull' || pred.op === 'notNull') {
    for (let i = 0; i < n; i++) out[i] = isNull(i) === (pred.op === 'isNull') ? T : F;
    return out;
  }
  if (pred.op === 'matches') {
    const re = new RegExp(`^(?:${pred.value})$`, 'u');
    for (let i = 0; i < n; i++) {
      if (isNull(i)) out[i] = U;
      else out[i] = re.test(isText ? text(i)! : String(valueAt(col, i))) ? T : F;
    }
    return out;
  }
  if (pred.op === 'in' || pred.op === 'notIn') {
    const set = new Set(pred.value.map((v) => literalFor(col, v)));
    for (let i = 0; i < n; i++) {
      if (isNull(i)) out[i] = U;
      else out[i] = set.has(isText ? text(i)! : num(i)) === (pred.op === 'in') ? T : F;
    }
    return out;
  }
  const comparison = pred as ComparisonPredicate;
  const op = comparison.op;
  const cmp = (a: number | string, b: number | string): number => (a < b ? -1 : a > b ? 1 : 0);
  const test = (c: number): boolean =>
    op === 'eq'
      ? c === 0
      : op === 'ne'
        ? c !== 0
        : op === 'lt'
          ? c < 0
          : op === 'le'
            ? c <= 0
            : op === 'gt'
              ? c > 0
              : c >= 0;
  if (typeof comparison.value === 'object') {
    const other = byName.get(comparison.value.column);
    if (!other) return out.fill(U);
    const otherText = isDictionary(other);
    for (let i = 0; i < n; i++) {
      const a = isText ? text(i) : num(i);
      const b = otherText
        ? other.codes[i] === NULL_CODE
          ? null
          : other.dictionary[other.codes[i]!]!
        : (valueNum(other, i) as number);
      if (
        a === null ||
        b === null ||
        (typeof a === 'number' && a !== a) ||
        (typeof b === 'number' && b !== b)
      )
        out[i] = U;
      else out[i] = test(cmp(a, b)) ? T : F;
    }
    return out;
  }
  const lit = literalFor(col, comparison.value);
  for (let i = 0; i < n; i++) {
    if (isNull(i) || lit === undefined || (typeof lit === 'number' && Number.isNaN(lit))) out[i] = U;
    else out[i] = test(cmp(isText ? text(i)! : num(i), lit)) ? T : F;
  }
  return out;
}

function valueNum(col: Column, i: number): number {
  if (col.type === 'boolean') return col.values[i] === BOOL_NULL ? NaN : col.values[i]!;
  if (isDictionary(col)) return NaN;
  return col.values[i]!;
}

/** Checks the whole table: contract columns, quality rules, row rules. */
export function checkTable(
  table: Table,
  contract: DatasetContract,
  profile: TableProfile,
  options: { columnViolations?: Map<string, Violation[]> } = {},
): Violation[] {
  const out: Violation[] = [];
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const q = contract.quality;
  for (const spec of contract.columns) {
    const col = byName.get(spec.name);
    if (!col) {
      out.push({
        rule: 'column.missing',
        column: spec.name,
        severity: 'error',
        count: 1,
        firstRows: [],
        message: `column "${spec.name}" is missing`,
      });
      continue;
    }
    out.push(
      ...(options.columnViolations?.get(spec.name) ??
        checkColumn(col, spec, table.rows, profile.stats[table.columns.indexOf(col)])),
    );
  }
  if (q.unexpectedColumns !== 'ignore') {
    const declared = new Set(contract.columns.map((c) => c.name));
    for (const col of table.columns) {
      if (!declared.has(col.name)) {
        out.push({
          rule: 'column.unexpected',
          column: col.name,
          severity: q.unexpectedColumns,
          count: 1,
          firstRows: [],
          message: `column "${col.name}" is not in the contract`,
        });
      }
    }
  }
  if (q.minRows !== undefined && table.rows < q.minRows) {
    out.push({
      rule: 'minRows',
      severity: 'error',
      count: table.rows,
      firstRows: [],
      message: `${table.rows} rows, fewer than ${q.minRows}`,
    });
  }
  if (q.maxRows !== undefined && table.rows > q.maxRows) {
    out.push({
      rule: 'maxRows',
      severity: 'error',
      count: table.rows,
      firstRows: [],
      message: `${table.rows} rows, more than ${q.maxRows}`,
    });
  }
  for (const p of profile.columns) {
    const limit = q.maxNullFractionByColumn?.[p.name] ?? q.maxNullFraction;
    if (limit === undefined || table.rows === 0) continue;
    const share = p.nulls / table.rows;
    if (share > limit) {
      const col = byName.get(p.name)!;
      const rows = new RowCollector();
      for (let i = 0; i < table.rows && rows.rows.length < MAX_ISSUE_ROWS; i++)
        if (valueAt(col, i) === null) rows.add(i);
      out.push({
        rule: 'maxNullFraction',
        column: p.name,
        severity: 'error',
        count: p.nulls,
        firstRows: rows.rows,
        message: `${(share * 100).toFixed(2)}% nulls, more than ${(limit * 100).toFixed(2)}%`,
      });
    }
  }
  if (q.maxDuplicateRowFraction !== undefined && table.rows > 0) {
    const d = hasKeyColumn(table, profile) ? { count: 0, firstRows: [] } : duplicateRows(table);
    const share = d.count / table.rows;
    if (share > q.maxDuplicateRowFraction) {
      out.push({
        rule: 'maxDuplicateRowFraction',
        severity: 'error',
        count: d.count,
        firstRows: d.firstRows,
        message: `${(share * 100).toFixed(2)}% of rows repeat an earlier row, more than ${(q.maxDuplicateRowFraction * 100).toFixed(2)}%`,
      });
    }
  }
  if (q.classBalance && contract.target !== undefined && byName.has(contract.target)) {
    const v = checkClassBalance(byName.get(contract.target)!, contract, q.classBalance);
    if (v) out.push(v);
  }
  for (const rule of q.rowRules) {
    const when = rule.when ? evaluate(rule.when, table, byName) : undefined;
    const ok = evaluate(rule.assert, table, byName);
    const rows = new RowCollector();
    for (let i = 0; i < table.rows; i++) if (ok[i] === F && (!when || when[i] === T)) rows.add(i);
    const v = rows.violation(
      `row:${rule.id}`,
      `${rows.count} row(s) break "${rule.description ?? rule.id}"`,
      undefined,
      rule.severity,
    );
    if (v) out.push(v);
  }
  return out;
}

/** Class shares of the target: the contract's allowed values count as classes even when absent. */
export function classShares(col: Column, allowed?: (string | number | boolean)[]): Map<string, number> {
  const counts = new Map<string, number>((allowed ?? []).map((v) => [String(v), 0]));
  let total = 0;
  const add = (key: string, c: number): void => {
    counts.set(key, (counts.get(key) ?? 0) + c);
    total += c;
  };
  if (isDictionary(col)) {
    const perCode = new Int32Array(col.dictionary.length);
    const codes = col.codes;
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i]!;
      if (c !== NULL_CODE) perCode[c]!++;
    }
    perCode.forEach((c, code) => c && add(col.dictionary[code]!, c));
  } else if (col.type === 'boolean') {
    let t = 0;
    let f = 0;
    const values = col.values;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v === 1) t++;
      else if (v === 0) f++;
    }
    if (t) add('true', t);
    if (f) add('false', f);
  } else {
    const perValue = new Map<number, number>();
    // Class labels are mostly small integers: count those in an array, anything else in the map.
    const small = new Int32Array(256);
    const values = col.values;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v !== v) continue;
      if (v >= 0 && v < 256 && v === Math.floor(v)) small[v]!++;
      else perValue.set(v, (perValue.get(v) ?? 0) + 1);
    }
    small.forEach((c, v) => c && perValue.set(v, (perValue.get(v) ?? 0) + c));
    for (const [v, c] of perValue) add(col.type === 'datetime' ? new Date(v).toISOString() : String(v), c);
  }
  const shares = new Map<string, number>();
  for (const [k, c] of counts) shares.set(k, total ? c / total : 0);
  return shares;
}

function checkClassBalance(
  col: Column,
  contract: DatasetContract,
  bounds: { minClassFraction?: number | undefined; maxClassFraction?: number | undefined },
): Violation | undefined {
  const spec = contract.columns.find((c) => c.name === col.name);
  const shares = classShares(col, spec?.values);
  const bad = [...shares].filter(
    ([, s]) =>
      (bounds.minClassFraction !== undefined && s < bounds.minClassFraction) ||
      (bounds.maxClassFraction !== undefined && s > bounds.maxClassFraction),
  );
  if (bad.length === 0) return undefined;
  return {
    rule: 'classBalance',
    column: col.name,
    severity: 'error',
    count: bad.length,
    firstRows: [],
    examples: bad.map(([k]) => k),
    message: `class shares out of bounds: ${bad.map(([k, s]) => `${k} ${(s * 100).toFixed(1)}%`).join(', ')}`,
  };
}
