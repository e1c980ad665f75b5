import type { ColumnType } from '../contracts/datasetContract';

/**
 * Typed columns: the one in-memory form of a dataset. Numbers, integers and datetimes are a
 * Float64Array (NaN = null; datetimes as epoch milliseconds), booleans a Uint8Array (0, 1,
 * BOOL_NULL), categories and strings dictionary codes (NULL_CODE = null) into `dictionary`.
 * Builders turn parser output (byte ranges, or JSON values) into these without materializing rows.
 */

export const BOOL_NULL = 2;
export const NULL_CODE = -1;

/** Values that could not be read as the column's type: stored as null, reported by validation. */
export interface ParseIssues {
  count: number;
  firstRows: number[];
  examples: string[];
}

interface ColumnBase {
  name: string;
  issues: ParseIssues;
}
export interface NumericColumn extends ColumnBase {
  type: 'number' | 'integer' | 'datetime';
  values: Float64Array;
}
export interface BooleanColumn extends ColumnBase {
  type: 'boolean';
  values: Uint8Array;
}
export interface DictionaryColumn extends ColumnBase {
  type: 'category' | 'string';
  codes: Int32Array;
  dictionary: string[];
}
export type Column = NumericColumn | BooleanColumn | DictionaryColumn;

/** Narrows to a dictionary column (TS cannot narrow on `type === 'category' || type === 'string'`). */
export function isDictionary(col: Column): col is DictionaryColumn {
  return col.type === 'category' || col.type === 'string';
}

/** A dataset as typed columns of equal length. */
export interface Table {
  rows: number;
  columns: Column[];
}

export const MAX_ISSUE_ROWS = 10;
const MAX_ISSUE_EXAMPLES = 5;
const MAX_EXAMPLE_CHARS = 80;

export function emptyIssues(): ParseIssues {
  return { count: 0, firstRows: [], examples: [] };
}

export function isNullAt(col: Column, i: number): boolean {
  switch (col.type) {
    case 'boolean':
      return col.values[i] === BOOL_NULL;
    case 'category':
    case 'string':
      return col.codes[i] === NULL_CODE;
    default:
      return Number.isNaN(col.values[i]);
  }
}

/** The value at row index `i` as JSON (datetimes as ISO strings), for reports and examples. */
export function valueAt(col: Column, i: number): string | number | boolean | null {
  switch (col.type) {
    case 'boolean': {
      const v = col.values[i];
      return v === BOOL_NULL ? null : v === 1;
    }
    case 'category':
    case 'string': {
      const c = col.codes[i] ?? NULL_CODE;
      return c === NULL_CODE ? null : (col.dictionary[c] ?? null);
    }
    case 'datetime': {
      const v = col.values[i] ?? NaN;
      return Number.isNaN(v) ? null : new Date(v).toISOString();
    }
    default: {
      const v = col.values[i] ?? NaN;
      return Number.isNaN(v) ? null : v;
    }
  }
}

const utf8 = new TextDecoder('utf-8');
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  return utf8.decode(buf.subarray(start, end));
}

/** Removes the doubled quotes of an RFC 4180 quoted field into `scratch`; returns the length. */
function unescapeQuotes(buf: Uint8Array, start: number, end: number, scratch: Uint8Array): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    scratch[n++] = c;
    if (c === 0x22) i++; // the second quote of a pair
  }
  return n;
}

/**
 * One batch of parsed CSV fields: field `f` of row `r` spans `[starts[k], ends[k])` of `buf` with
 * `k = r * stride + f`; `escaped[k]` is 1 when the span still holds doubled quotes.
 */
export interface FieldBatch {
  buf: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
  escaped: Uint8Array;
  stride: number;
  rows: number;
  /** 1-based data row number of the batch's first row. */
  firstRow: number;
}

/** Turns cell texts into one typed column. `strict` builders record bad values; others widen. */
export interface ColumnBuilder {
  readonly type: ColumnType;
  readonly length: number;
  /** Reads column `field` of every row in `batch` from row index `from`; returns -1, or the row index where the column must widen. */
  consumeBatch(batch: FieldBatch, field: number, from: number): number;
  /** One value from a JSON source. Returns false when a non-strict builder must widen first. */
  pushValue(value: unknown, row: number): boolean;
  pushNull(): void;
  /** Makes room for about this many rows in total (a hint that saves regrowing). */
  reserveTotal(rows: number): void;
  /** A builder of a wider type holding the same values (number → string, and so on). */
  widen(): ColumnBuilder;
  finish(name: string): Column;
}

/** Growable typed storage; hot loops `reserve` once per batch and write `arr` directly. */
class GrowF64 {
  arr = new Float64Array(64); // small: a 10,000-column file has 10,000 of these
  length = 0;
  reserve(extra: number): Float64Array {
    if (this.length + extra > this.arr.length) {
      const next = new Float64Array(Math.max(this.arr.length * 2, this.length + extra));
      next.set(this.arr.subarray(0, this.length));
      this.arr = next;
    }
    return this.arr;
  }
  push(v: number): void {
    this.reserve(1)[this.length++] = v;
  }
  get(i: number): number {
    return this.arr[i]!;
  }
  /** The values, without copying when little capacity would be wasted. */
  toArray(): Float64Array {
    return this.arr.length - this.length <= this.arr.length >> 3
      ? this.arr.subarray(0, this.length)
      : this.arr.slice(0, this.length);
  }
}

class GrowI32 {
  arr = new Int32Array(64);
  length = 0;
  reserve(extra: number): Int32Array {
    if (this.length + extra > this.arr.length) {
      const next = new Int32Array(Math.max(this.arr.length * 2, this.length + extra));
      next.set(this.arr.subarray(0, this.length));
      this.arr = next;
    }
    return this.arr;
  }
  push(v: number): void {
    this.reserve(1)[this.length++] = v;
  }
  toArray(): Int32Array {
    return this.arr.length - this.length <= this.arr.length >> 3
      ? this.arr.subarray(0, this.length)
      : this.arr.slice(0, this.length);
  }
}

/**
 * Distinct byte strings → dense ids, without making a JS string per cell: FNV-1a hash, open
 * addressing, bytes kept in one pool. A category column of 750k cells makes as many strings as it
 * has distinct values.
 */
export class ByteDictionary {
  private pool = new Uint8Array(256);
  private poolLen = 0;
  private offsets = new Int32Array(16);
  private lengths = new Int32Array(16);
  private table = new Int32Array(32).fill(-1);
  private mask = 31;
  size = 0;

  private static hash(buf: Uint8Array, start: number, end: number): number {
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    return h >>> 0;
  }

  /** Id of the bytes, adding them when new; `added` tells whether they were. */
  idOf(buf: Uint8Array, start: number, end: number): number {
    const len = end - start;
    let slot = ByteDictionary.hash(buf, start, end) & this.mask;
    for (;;) {
      const id = this.table[slot]!;
      if (id === -1) break;
      if (this.lengths[id] === len) {
        const off = this.offsets[id]!;
        let same = true;
        for (let k = 0; k < len; k++) {
          if (this.pool[off + k] !== buf[start + k]) {
            same = false;
            break;
          }
        }
        if (same) return id;
      }
      slot = (slot + 1) & this.mask;
    }
    const id = this.size++;
    if (id === this.offsets.length) {
      const o = new Int32Array(id * 2);
      o.set(this.offsets);
      this.offsets = o;
      const l = new Int32Array(id * 2);
      l.set(this.lengths);
      this.lengths = l;
    }
    if (this.poolLen + len > this.pool.length) {
      const p = new Uint8Array(Math.max(this.pool.length * 2, this.poolLen + len));
      p.set(this.pool.subarray(0, this.poolLen));
      this.pool = p;
    }
    this.pool.set(buf.subarray(start, end), this.poolLen);
    this.offsets[id] = this.poolLen;
    this.lengths[id] = len;
    this.poolLen += len;
    this.table[slot] = id;
    if (this.size * 2 > this.mask) this.rehash();
    return id;
  }

  private rehash(): void {
    const size = (this.mask + 1) * 2;
    this.table = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (let id = 0; id < this.size; id++) {
      const off = this.offsets[id]!;
      let slot = ByteDictionary.hash(this.pool, off, off + this.lengths[id]!) & this.mask;
      while (this.table[slot] !== -1) slot = (slot + 1) & this.mask;
      this.table[slot] = id;
    }
  }

  text(id: number): string {
    const off = this.offsets[id]!;
    return decodeUtf8(this.pool, off, off + this.lengths[id]!);
  }
}

const encoder = new TextEncoder();
const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
  1e20, 1e21, 1e22,
];
const NUMBER_TEXT = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Parses a decimal number from text; NaN when it is not one (hex, Infinity and blanks are not). */
export function parseNumberText(text: string): number {
  return NUMBER_TEXT.test(text) ? Number(text) : NaN;
}

/**
 * Parses a decimal number straight from bytes. The fast path is exact: up to 15 significant
 * digits and a power of ten up to 22 are both exact doubles, so one division rounds correctly.
 */
export function parseNumberBytes(buf: Uint8Array, start: number, end: number): number {
  let i = start;
  let c = buf[i];
  let neg = false;
  if (c === 0x2d) {
    neg = true;
    i++;
  } else if (c === 0x2b) i++;
  let mant = 0;
  let digits = 0;
  let scale = 0;
  while (i < end) {
    c = buf[i]!;
    if (c < 0x30 || c > 0x39) break;
    mant = mant * 10 + (c - 0x30);
    digits++;
    i++;
  }
  if (i < end && buf[i] === 0x2e) {
    i++;
    while (i < end) {
      c = buf[i]!;
      if (c < 0x30 || c > 0x39) break;
      mant = mant * 10 + (c - 0x30);
      digits++;
      scale++;
      i++;
    }
  }
  if (i === end && digits > 0 && digits <= 15) {
    const v = scale === 0 ? mant : mant / POW10[scale]!;
    return neg ? -v : v;
  }
  if (end - start > 400) return NaN;
  return parseNumberText(decodeUtf8(buf, start, end));
}

function nullTokenBytes(tokens: readonly string[]): Uint8Array[] {
  return tokens.filter((t) => t !== '').map((t) => encoder.encode(t));
}

function matchesAny(tokens: Uint8Array[], buf: Uint8Array, start: number, end: number): boolean {
  const len = end - start;
  outer: for (const t of tokens) {
    if (t.length !== len) continue;
    for (let k = 0; k < len; k++) if (t[k] !== buf[start + k]) continue outer;
    return true;
  }
  return false;
}

function record(issues: ParseIssues, row: number, text: string): void {
  issues.count++;
  if (issues.firstRows.length < MAX_ISSUE_ROWS) issues.firstRows.push(row);
  if (issues.examples.length < MAX_ISSUE_EXAMPLES) {
    const t = text.length > MAX_EXAMPLE_CHARS ? `${text.slice(0, MAX_EXAMPLE_CHARS)}…` : text;
    if (!issues.examples.includes(t)) issues.examples.push(t);
  }
}

export interface BuilderOptions {
  nullValues: readonly string[];
  /** Strict (a contract gave the type): bad values become nulls with an issue. Otherwise the column widens. */
  strict: boolean;
}

// A Buffer like the parser's windows, so byte reads in the hot loops stay monomorphic.
let scratch: Uint8Array = Buffer.allocUnsafe(1 << 16);
function scratchFor(len: number): Uint8Array {
  if (scratch.length < len) scratch = Buffer.allocUnsafe(len * 2);
  return scratch;
}

/** number and integer columns (integers are checked by validation, so "2.5" stays 2.5). */
export class NumberBuilder implements ColumnBuilder {
  readonly values = new GrowF64();
  readonly issues = emptyIssues();
  private readonly nulls: Uint8Array[];
  constructor(
    readonly type: 'number' | 'integer',
    private readonly opts: BuilderOptions,
  ) {
    this.nulls = nullTokenBytes(opts.nullValues);
  }
  get length(): number {
    return this.values.length;
  }
  consumeBatch(batch: FieldBatch, field: number, from: number): number {
    const { buf, starts, ends, escaped, stride, rows, firstRow } = batch;
    const store = this.values;
    const out = store.reserve(rows - from);
    let len = store.length;
    for (let r = from; r < rows; r++) {
      const k = r * stride + field;
      let src = buf;
      let s = starts[k]!;
      let e = ends[k]!;
      if (s === e) {
        out[len++] = NaN;
        continue;
      }
      if (escaped[k] === 1) {
        src = scratchFor(e - s);
        e = unescapeQuotes(buf, s, e, src);
        s = 0;
      }
      const v = parseNumberBytes(src, s, e);
      if (v === v) {
        out[len++] = v;
        continue;
      }
      if (matchesAny(this.nulls, src, s, e)) {
        out[len++] = NaN;
        continue;
      }
      if (!this.opts.strict) {
        store.length = len;
        return r;
      }
      record(this.issues, firstRow + r, decodeUtf8(src, s, e));
      out[len++] = NaN;
    }
    store.length = len;
    return -1;
  }
  pushValue(value: unknown, row: number): boolean {
    if (value === null || value === undefined) this.values.push(NaN);
    else if (typeof value === 'number' && Number.isFinite(value)) this.values.push(value);
    else if (typeof value === 'string' && this.opts.nullValues.includes(value)) this.values.push(NaN);
    else if (!this.opts.strict) return false;
    else {
      record(this.issues, row, typeof value === 'string' ? value : JSON.stringify(value));
      this.values.push(NaN);
    }
    return true;
  }
  pushNull(): void {
    this.values.push(NaN);
  }
  reserveTotal(rows: number): void {
    if (rows > this.values.length) this.values.reserve(rows - this.values.length);
  }
  widen(): ColumnBuilder {
    const next = new DictionaryBuilder('string', this.opts);
    for (let i = 0; i < this.values.length; i++) {
      const v = this.values.get(i);
      if (Number.isNaN(v)) next.pushNull();
      else next.pushText(String(v));
    }
    return next;
  }
  finish(name: string): NumericColumn {
    return { name, type: this.type, values: this.values.toArray(), issues: this.issues };
  }
}

/** category and string columns, dictionary-encoded. */
export class DictionaryBuilder implements ColumnBuilder {
  readonly codes = new GrowI32();
  readonly issues = emptyIssues();
  private readonly dict = new ByteDictionary();
  /** Dictionary id → code in the finished column (NULL_CODE for null tokens). */
  private idToCode = new Int32Array(16);
  private texts: string[] = [];
  constructor(
    readonly type: 'category' | 'string',
    private readonly opts: BuilderOptions,
  ) {}
  get length(): number {
    return this.codes.length;
  }
  private codeOf(buf: Uint8Array, s: number, e: number): number {
    const before = this.dict.size;
    const id = this.dict.idOf(buf, s, e);
    if (id < before) return this.idToCode[id]!;
    if (id === this.idToCode.length) {
      const m = new Int32Array(id * 2);
      m.set(this.idToCode);
      this.idToCode = m;
    }
    const text = this.dict.text(id);
    const code = this.opts.nullValues.includes(text) ? NULL_CODE : this.texts.push(text) - 1;
    this.idToCode[id] = code;
    return code;
  }
  consumeBatch(batch: FieldBatch, field: number, from: number): number {
    const { buf, starts, ends, escaped, stride, rows } = batch;
    const store = this.codes;
    const out = store.reserve(rows - from);
    let len = store.length;
    for (let r = from; r < rows; r++) {
      const k = r * stride + field;
      const s = starts[k]!;
      const e = ends[k]!;
      if (escaped[k] === 1) {
        const tmp = scratchFor(e - s);
        out[len++] = this.codeOf(tmp, 0, unescapeQuotes(buf, s, e, tmp));
      } else out[len++] = this.codeOf(buf, s, e);
    }
    store.length = len;
    return -1;
  }
  pushText(text: string): void {
    const bytes = encoder.encode(text);
    this.codes.push(this.codeOf(bytes, 0, bytes.length));
  }
  pushValue(value: unknown): boolean {
    if (value === null || value === undefined) this.codes.push(NULL_CODE);
    else this.pushText(typeof value === 'string' ? value : String(value));
    return true;
  }
  pushNull(): void {
    this.codes.push(NULL_CODE);
  }
  reserveTotal(rows: number): void {
    if (rows > this.codes.length) this.codes.reserve(rows - this.codes.length);
  }
  widen(): ColumnBuilder {
    if (this.type === 'string') return this;
    const next = new DictionaryBuilder('string', this.opts);
    const codes = this.codes.toArray();
    for (const c of codes) {
      if (c === NULL_CODE) next.pushNull();
      else next.pushText(this.texts[c]!);
    }
    return next;
  }
  finish(name: string): DictionaryColumn {
    return {
      name,
      type: this.type,
      codes: this.codes.toArray(),
      dictionary: this.texts,
      issues: this.issues,
    };
  }
}

const TRUE_TEXT = new Set(['true', 'yes', 't', 'y', '1']);
const FALSE_TEXT = new Set(['false', 'no', 'f', 'n', '0']);

/** Reads a boolean from text (case-insensitive true/false, yes/no, t/f, y/n, 1/0); undefined if not one. */
export function parseBooleanText(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  return TRUE_TEXT.has(t) ? true : FALSE_TEXT.has(t) ? false : undefined;
}

/** Values through a text → value function, memoized per distinct text (booleans, datetimes). */
abstract class TextMappedBuilder implements ColumnBuilder {
  abstract readonly type: 'boolean' | 'datetime';
  readonly issues = emptyIssues();
  protected readonly dict = new ByteDictionary();
  protected mapped: number[] = [];
  constructor(protected readonly opts: BuilderOptions) {}
  abstract get length(): number;
  protected abstract push(v: number): void;
  /** The stored value for a text; NaN when the text is not of the type. */
  protected abstract read(text: string): number;
  protected abstract readonly nullValue: number;
  abstract reserveTotal(rows: number): void;
  abstract widen(): ColumnBuilder;
  abstract finish(name: string): Column;

  private valueOf(buf: Uint8Array, s: number, e: number): number {
    const before = this.dict.size;
    const id = this.dict.idOf(buf, s, e);
    if (id < before) return this.mapped[id]!;
    const text = this.dict.text(id);
    const v = this.opts.nullValues.includes(text) ? this.nullValue : this.read(text);
    // Cache only low-cardinality texts; timestamps are mostly distinct.
    if (this.mapped.length < 4096) this.mapped[id] = v;
    return v;
  }
  consumeBatch(batch: FieldBatch, field: number, from: number): number {
    const { buf, starts, ends, escaped, stride, rows, firstRow } = batch;
    for (let r = from; r < rows; r++) {
      const k = r * stride + field;
      let src = buf;
      let s = starts[k]!;
      let e = ends[k]!;
      if (escaped[k] === 1) {
        src = scratchFor(e - s);
        e = unescapeQuotes(buf, s, e, src);
        s = 0;
      }
      let v: number;
      if (s === e) v = this.nullValue;
      else if (this.mapped.length < 4096 || this.type === 'boolean') v = this.valueOf(src, s, e);
      else {
        const text = decodeUtf8(src, s, e);
        v = this.opts.nullValues.includes(text) ? this.nullValue : this.read(text);
      }
      if (Number.isNaN(v)) {
        if (!this.opts.strict) return r;
        record(this.issues, firstRow + r, decodeUtf8(src, s, e));
        v = this.nullValue;
      }
      this.push(v);
    }
    return -1;
  }
  pushValue(value: unknown, row: number): boolean {
    if (value === null || value === undefined) {
      this.push(this.nullValue);
      return true;
    }
    let v: number;
    if (typeof value === 'boolean' && this.type === 'boolean') v = value ? 1 : 0;
    else if (typeof value === 'string')
      v = this.opts.nullValues.includes(value) ? this.nullValue : this.read(value);
    else v = NaN;
    if (Number.isNaN(v)) {
      if (!this.opts.strict) return false;
      record(this.issues, row, typeof value === 'string' ? value : JSON.stringify(value));
      v = this.nullValue;
    }
    this.push(v);
    return true;
  }
  pushNull(): void {
    this.push(this.nullValue);
  }
}

export class BooleanBuilder extends TextMappedBuilder {
  readonly type = 'boolean' as const;
  protected readonly nullValue = BOOL_NULL;
  private values = new Uint8Array(64);
  private len = 0;
  get length(): number {
    return this.len;
  }
  protected push(v: number): void {
    if (this.len === this.values.length) {
      const next = new Uint8Array(this.len * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[this.len++] = v;
  }
  reserveTotal(rows: number): void {
    if (rows > this.values.length) {
      const next = new Uint8Array(rows);
      next.set(this.values.subarray(0, this.len));
      this.values = next;
    }
  }
  protected read(text: string): number {
    const b = parseBooleanText(text);
    return b === undefined ? NaN : b ? 1 : 0;
  }
  widen(): ColumnBuilder {
    const next = new DictionaryBuilder('category', this.opts);
    for (let i = 0; i < this.len; i++) {
      const v = this.values[i];
      if (v === BOOL_NULL) next.pushNull();
      else next.pushText(v === 1 ? 'true' : 'false');
    }
    return next;
  }
  finish(name: string): BooleanColumn {
    return { name, type: 'boolean', values: this.values.slice(0, this.len), issues: this.issues };
  }
}

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Parses an ISO 8601 date or date-time (no zone = UTC) to epoch ms; NaN if it is not one or not a real date. */
export function parseDatetimeText(text: string): number {
  const m = ISO_DATE.exec(text.trim());
  if (!m) return NaN;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac, zone] = m;
  const ms = frac ? Math.round(Number(`0${frac}`) * 1000) : 0;
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  const check = new Date(t);
  if (
    check.getUTCDate() !== Number(d) ||
    check.getUTCMonth() !== Number(mo) - 1 ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 60
  ) {
    return NaN;
  }
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    t -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * 60_000;
  }
  return t;
}

export class DatetimeBuilder extends TextMappedBuilder {
  readonly type = 'datetime' as const;
  protected readonly nullValue = NaN;
  private readonly values = new GrowF64();
  get length(): number {
    return this.values.length;
  }
  protected push(v: number): void {
    this.values.push(v);
  }
  protected read(text: string): number {
    return parseDatetimeText(text);
  }
  reserveTotal(rows: number): void {
    if (rows > this.values.length) this.values.reserve(rows - this.values.length);
  }
  override consumeBatch(batch: FieldBatch, field: number, from: number): number {
    // NaN is both "null" and "not a date" here, so nulls are told apart before the shared path.
    const { buf, starts, ends, escaped, stride, rows, firstRow } = batch;
    for (let r = from; r < rows; r++) {
      const k = r * stride + field;
      const s = starts[k]!;
      let e = ends[k]!;
      let src = buf;
      let start = s;
      if (escaped[k] === 1) {
        src = scratchFor(e - s);
        e = unescapeQuotes(buf, s, e, src);
        start = 0;
      }
      const text = decodeUtf8(src, start, e);
      if (text === '' || this.opts.nullValues.includes(text)) {
        this.values.push(NaN);
        continue;
      }
      const v = parseDatetimeText(text);
      if (Number.isNaN(v)) {
        if (!this.opts.strict) return r;
        record(this.issues, firstRow + r, text);
      }
      this.values.push(v);
    }
    return -1;
  }
  override pushValue(value: unknown, row: number): boolean {
    if (
      value === null ||
      value === undefined ||
      (typeof value === 'string' && this.opts.nullValues.includes(value))
    ) {
      this.values.push(NaN);
      return true;
    }
    const v = typeof value === 'string' ? parseDatetimeText(value) : NaN;
    if (Number.isNaN(v)) {
      if (!this.opts.strict) return false;
      record(this.issues, row, typeof value === 'string' ? value : JSON.stringify(value));
    }
    this.values.push(v);
    return true;
  }
  /** Widens to string; the values read so far are re-rendered as ISO 8601. */
  widen(): ColumnBuilder {
    const next = new DictionaryBuilder('string', this.opts);
    for (let i = 0; i < this.values.length; i++) {
      const v = this.values.get(i);
      if (Number.isNaN(v)) next.pushNull();
      else next.pushText(new Date(v).toISOString());
    }
    return next;
  }
  finish(name: string): NumericColumn {
    return { name, type: 'datetime', values: this.values.toArray(), issues: this.issues };
  }
}

export function createBuilder(type: ColumnType, opts: BuilderOptions): ColumnBuilder {
  switch (type) {
    case 'number':
    case 'integer':
      return new NumberBuilder(type, opts);
    case 'category':
    case 'string':
      return new DictionaryBuilder(type, opts);
    case 'boolean':
      return new BooleanBuilder(opts);
    case 'datetime':
      return new DatetimeBuilder(opts);
  }
}
