import { DataFormatError } from '../errors';
import type { IngestLimits } from '../limits';
import type { TableBuilder } from './tableBuilder';

/**
 * A streaming JSON Lines reader: one flat object per line (LF or CRLF), blank lines skipped. Keys
 * become columns in order of first appearance; a key missing from a line is null. It holds one
 * unfinished line at most, bounded by the row limit.
 */

export interface JsonlStats {
  rows: number;
  columns: number;
  lines: number;
  blankLines: number;
}

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder('utf-8');

export class JsonlReader {
  private carry: Uint8Array[] = [];
  private carryBytes = 0;
  private line = 0;
  private ended = false;
  readonly stats: JsonlStats = { rows: 0, columns: 0, lines: 0, blankLines: 0 };

  constructor(
    private readonly table: TableBuilder,
    private readonly limits: IngestLimits,
  ) {}

  write(chunk: Uint8Array): void {
    let pos = 0;
    for (;;) {
      const lf = chunk.indexOf(LF, pos);
      if (lf === -1) break;
      let bytes = chunk.subarray(pos, lf);
      if (this.carryBytes > 0) {
        this.carry.push(bytes);
        bytes = Buffer.concat(this.carry, this.carryBytes + bytes.length);
        this.carry = [];
        this.carryBytes = 0;
      }
      this.lineOf(bytes);
      pos = lf + 1;
    }
    if (pos < chunk.length) {
      const rest = chunk.subarray(pos);
      this.carryBytes += rest.length;
      if (this.carryBytes > this.limits.maxRowBytes) {
        throw new DataFormatError(
          'LIMIT_ROW_BYTES',
          `more than ${this.limits.maxRowBytes} bytes without a line break`,
          { line: this.line + 1 },
        );
      }
      this.carry.push(Buffer.from(rest));
    }
  }

  end(): JsonlStats {
    if (this.ended) return this.stats;
    this.ended = true;
    if (this.carryBytes > 0) this.lineOf(Buffer.concat(this.carry, this.carryBytes));
    this.stats.lines = this.line;
    this.stats.columns = this.table.columnNames.length;
    if (this.stats.rows === 0) throw new DataFormatError('INPUT_EMPTY', 'no JSON objects');
    return this.stats;
  }

  private lineOf(raw: Uint8Array): void {
    this.line++;
    if (raw.length > this.limits.maxRowBytes)
      throw new DataFormatError('LIMIT_ROW_BYTES', '', { line: this.line });
    const bytes = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
    const text = decoder.decode(bytes);
    if (text.trim() === '') {
      this.stats.blankLines++;
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new DataFormatError('JSONL_INVALID', (err as Error).message, {
        line: this.line,
        row: this.stats.rows + 1,
      });
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new DataFormatError(
        'JSONL_NOT_OBJECT',
        `found ${Array.isArray(value) ? 'an array' : typeof value}`,
        { line: this.line },
      );
    }
    const obj = value as Record<string, unknown>;
    const row = this.stats.rows + 1;
    for (const [key, v] of Object.entries(obj)) {
      if (key.trim() === '')
        throw new DataFormatError('HEADER_EMPTY', 'an empty key', { line: this.line, row });
      if (v !== null && typeof v === 'object')
        throw new DataFormatError('JSONL_NESTED_VALUE', '', { line: this.line, row, column: key });
      if (typeof v === 'string' && v.length > this.limits.maxFieldBytes) {
        throw new DataFormatError('LIMIT_FIELD_BYTES', '', { line: this.line, row, column: key });
      }
    }
    this.table.record(obj, row, () => {
      if (this.table.columnNames.length >= this.limits.maxColumns) {
        throw new DataFormatError('LIMIT_COLUMNS', `more than ${this.limits.maxColumns} distinct keys`, {
          line: this.line,
          row,
        });
      }
    });
    this.stats.rows = row;
    if (row > this.limits.maxRows)
      throw new DataFormatError('LIMIT_ROWS', `more than ${this.limits.maxRows} rows`, { row });
  }
}
