import type { FieldBatch } from '../table';
import { decodeUtf8 } from '../table';
import { DataFormatError } from '../errors';
import type { IngestLimits } from '../limits';

/**
 * A streaming RFC 4180 reader that hands typed-column builders byte ranges, never row objects or
 * per-cell strings. It holds one read window (about `WINDOW_BYTES`) plus the unfinished row, and
 * checks the limits while it reads, so a hostile file fails at the first bad byte.
 *
 * Accepted beyond the RFC: LF as well as CRLF (mixed too), a missing final line break, quotes
 * inside an unquoted field (kept literally: `=HYPERLINK("x")` is data), blank lines (skipped
 * when there is more than one column). Refused with a specific code: see `errors.ts`.
 */

export interface CsvSink {
  header(names: string[]): void;
  batch(batch: FieldBatch): void;
  /** About how many rows the whole input has (when its size is known), to size columns once. */
  expectRows?(rows: number): void;
}

export interface CsvStats {
  rows: number;
  columns: number;
  lines: number;
  crlfRows: number;
  lfRows: number;
  blankLines: number;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
/** Bytes parsed per step: big enough to amortize the per-window work, small enough to bound memory. */
export const WINDOW_BYTES = 1 << 20;
const INCOMPLETE = -1;

export class CsvReader {
  private readonly delim: number;
  /** 1 for the bytes that end an unquoted field. */
  private readonly stop = new Uint8Array(256);
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private carryBytes = 0;
  private names: string[] | undefined;
  private ncols = 0;
  private starts = new Int32Array(0);
  private ends = new Int32Array(0);
  private escaped = new Uint8Array(0);
  private line = 1;
  private ended = false;
  readonly stats: CsvStats = { rows: 0, columns: 0, lines: 0, crlfRows: 0, lfRows: 0, blankLines: 0 };

  private consumed = 0;
  private hinted = false;

  /** `expectedBytes`: the input's size when known (file size, Content-Length), used only as a sizing hint. */
  constructor(
    private readonly sink: CsvSink,
    private readonly limits: IngestLimits,
    delimiter = ',',
    private readonly expectedBytes?: number,
  ) {
    if (delimiter.length !== 1 || delimiter.charCodeAt(0) > 0x7f || '"\r\n'.includes(delimiter)) {
      throw new Error(`unsupported delimiter ${JSON.stringify(delimiter)}`);
    }
    this.delim = delimiter.charCodeAt(0);
    this.stop[this.delim] = this.stop[LF] = this.stop[CR] = 1;
  }

  /** Feeds the next bytes (already checked for encoding, BOM removed). */
  write(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    // Every window is a Buffer, so byte reads in the hot loops see one array type.
    this.pending.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
    this.pendingBytes += chunk.length;
    // Only new bytes count towards a window, so a long unfinished row is not re-copied per chunk.
    if (this.pendingBytes - this.carryBytes >= WINDOW_BYTES) this.parsePending(false);
  }

  /** Signals the end of input and flushes the last row. */
  end(): CsvStats {
    if (this.ended) return this.stats;
    this.ended = true;
    this.parsePending(true);
    if (this.names === undefined) throw new DataFormatError('INPUT_EMPTY', '');
    if (this.stats.rows === 0)
      throw new DataFormatError('INPUT_HEADER_ONLY', `header: ${this.names.slice(0, 5).join(', ')}`);
    this.stats.lines = this.line - 1;
    return this.stats;
  }

  private parsePending(final: boolean): void {
    if (this.pendingBytes === 0 && !final) return;
    const data =
      this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.carryBytes = 0;
    let pos = 0;
    if (this.names === undefined) {
      pos = this.parseHeader(data, final);
      if (pos === INCOMPLETE) return this.keep(data, 0);
    }
    const stop = this.parseRows(data, pos, final);
    this.consumed += stop;
    if (!this.hinted && this.expectedBytes && this.stats.rows > 0 && this.sink.expectRows) {
      this.hinted = true;
      this.sink.expectRows(
        Math.min(this.limits.maxRows, (this.expectedBytes / this.consumed) * this.stats.rows * 1.02 + 64),
      );
    }
    if (stop < data.length) {
      if (final) throw new Error('csv reader: unconsumed input at end'); // unreachable: final parses to the end
      this.keep(data, stop);
    }
  }

  /** Keeps the unfinished row for the next window; a row can never outgrow the row limit. */
  private keep(data: Uint8Array, from: number): void {
    const rest = data.subarray(from);
    if (rest.length > this.limits.maxRowBytes) {
      throw new DataFormatError(
        'LIMIT_ROW_BYTES',
        `more than ${this.limits.maxRowBytes} bytes without the row ending`,
        {
          line: this.line,
          row: this.stats.rows + 1,
        },
      );
    }
    this.pending = [Buffer.from(rest)];
    this.pendingBytes = rest.length;
    this.carryBytes = rest.length;
  }

  private parseHeader(data: Uint8Array, final: boolean): number {
    const fields: string[] = [];
    let pos = 0;
    const n = data.length;
    for (;;) {
      if (fields.length >= this.limits.maxColumns) {
        throw new DataFormatError('LIMIT_COLUMNS', `more than ${this.limits.maxColumns} columns`, {
          line: 1,
        });
      }
      let text: string;
      if (data[pos] === QUOTE) {
        const close = this.findClosingQuote(data, pos + 1, n, final, 1);
        if (close === INCOMPLETE) return INCOMPLETE;
        text = decodeUtf8(data, pos + 1, close).replaceAll('""', '"');
        pos = close + 1;
      } else {
        let p = pos;
        while (p < n) {
          const c = data[p]!;
          if (c === this.delim || c === LF || c === CR) break;
          p++;
        }
        if (p - pos > this.limits.maxFieldBytes)
          throw new DataFormatError('LIMIT_FIELD_BYTES', '', { line: 1 });
        if (p === n && !final) return INCOMPLETE;
        text = decodeUtf8(data, pos, p);
        pos = p;
      }
      fields.push(text);
      if (pos >= n) {
        if (!final) return INCOMPLETE;
        break;
      }
      const c = data[pos]!;
      if (c === this.delim) {
        pos++;
        continue;
      }
      if (c === LF) {
        pos++;
        break;
      }
      if (c === CR) {
        if (pos + 1 >= n && !final) return INCOMPLETE;
        if (data[pos + 1] !== LF) throw new DataFormatError('CSV_BARE_CR', '', { line: 1 });
        pos += 2;
        break;
      }
      throw new DataFormatError('CSV_TEXT_AFTER_QUOTE', '', { line: 1, column: text });
    }
    if (fields.length === 1 && fields[0] === '' && pos >= n)
      throw new DataFormatError('INPUT_EMPTY', 'only a blank line');
    const seen = new Map<string, number>();
    fields.forEach((name, i) => {
      if (name.trim() === '')
        throw new DataFormatError('HEADER_EMPTY', `column ${i + 1} of ${fields.length}`, { line: 1 });
      const prev = seen.get(name);
      if (prev !== undefined) {
        throw new DataFormatError('HEADER_DUPLICATE', `columns ${prev + 1} and ${i + 1} are both "${name}"`, {
          line: 1,
          column: name,
        });
      }
      seen.set(name, i);
    });
    this.names = fields;
    this.ncols = fields.length;
    this.stats.columns = fields.length;
    this.line = 2;
    this.sink.header(fields);
    return pos;
  }

  /**
   * Index of the quote closing a quoted field whose content starts at `from`; INCOMPLETE when the
   * window ends first. Fails early when the field outgrows the field limit, which is how an
   * unterminated quote in a large file is caught without reading the rest of it.
   */
  private findClosingQuote(data: Uint8Array, from: number, n: number, final: boolean, line: number): number {
    let q = from;
    for (;;) {
      const k = data.indexOf(QUOTE, q);
      if (k === -1 || k >= n) {
        if (n - from > this.limits.maxFieldBytes) {
          throw new DataFormatError(
            'LIMIT_FIELD_BYTES',
            'a quoted field runs on: probably an unterminated quote',
            {
              line,
              row: this.stats.rows + 1,
            },
          );
        }
        if (final)
          throw new DataFormatError('CSV_UNTERMINATED_QUOTE', '', {
            line,
            row: this.names ? this.stats.rows + 1 : 0,
          });
        return INCOMPLETE;
      }
      if (k + 1 < n && data[k + 1] === QUOTE) {
        q = k + 2;
        continue;
      }
      if (k + 1 >= n && !final) return INCOMPLETE; // a doubled quote may straddle the window
      if (k - from > this.limits.maxFieldBytes)
        throw new DataFormatError('LIMIT_FIELD_BYTES', '', { line, row: this.stats.rows + 1 });
      return k;
    }
  }

  private ensureCapacity(fields: number): void {
    if (this.starts.length >= fields) return;
    const size = Math.max(fields, this.starts.length * 2, 4096);
    const s = new Int32Array(size);
    s.set(this.starts);
    const e = new Int32Array(size);
    e.set(this.ends);
    const x = new Uint8Array(size);
    x.set(this.escaped);
    this.starts = s;
    this.ends = e;
    this.escaped = x;
  }

  /** Parses complete rows from `pos`; returns where the first unfinished row starts (or the end). */
  private parseRows(data: Uint8Array, pos: number, final: boolean): number {
    const n = data.length;
    const ncols = this.ncols;
    const delim = this.delim;
    const stop = this.stop;
    const maxField = this.limits.maxFieldBytes;
    const maxRows = this.limits.maxRows;
    // Every field costs at least one byte, except a trailing empty one per row.
    this.ensureCapacity(n + ncols * 2 + 2);
    const starts = this.starts;
    const ends = this.ends;
    const escaped = this.escaped;
    const stats = this.stats;
    let rows = 0;
    let k = 0;
    let nextLf = -1;
    const firstRow = stats.rows + 1;

    rowLoop: while (pos < n) {
      const rowStart = pos;
      const rowK = k;
      let f = 0;
      let extraLines = 0;
      for (;;) {
        let s: number;
        let e: number;
        let esc = 0;
        if (data[pos] === QUOTE) {
          const close = this.findClosingQuote(data, pos + 1, n, final, this.line + extraLines);
          if (close === INCOMPLETE) return this.cut(rows, rowStart, firstRow, data);
          s = pos + 1;
          e = close;
          for (let p = data.indexOf(QUOTE, s); p !== -1 && p < e; p = data.indexOf(QUOTE, p + 2)) esc = 1;
          if (nextLf < s) nextLf = data.indexOf(LF, s) >>> 0; // -1 becomes "never": 2^32-1
          while (nextLf < e) {
            extraLines++;
            nextLf = data.indexOf(LF, nextLf + 1) >>> 0;
          }
          pos = close + 1;
        } else {
          s = pos;
          while (pos < n && stop[data[pos]!] === 0) pos++;
          e = pos;
          if (e - s > maxField) {
            throw new DataFormatError('LIMIT_FIELD_BYTES', '', {
              line: this.line,
              row: stats.rows + rows + 1,
              column: this.names?.[f],
            });
          }
        }
        if (f === ncols) {
          throw new DataFormatError('CSV_RAGGED_ROW', `more than the header's ${ncols} fields`, {
            line: this.line,
            row: stats.rows + rows + 1,
          });
        }
        starts[k] = s;
        ends[k] = e;
        escaped[k] = esc;
        k++;
        f++;
        if (pos >= n) {
          if (!final) return this.cut(rows, rowStart, firstRow, data);
          break; // the last row has no line break
        }
        const c = data[pos]!;
        if (c === delim) {
          pos++;
          if (pos >= n && !final) return this.cut(rows, rowStart, firstRow, data);
          if (pos >= n) {
            // "a,b,<EOF>": the last field is empty.
            starts[k] = ends[k] = pos;
            escaped[k] = 0;
            k++;
            f++;
            break;
          }
          continue;
        }
        if (c === LF) {
          pos++;
          stats.lfRows++;
          break;
        }
        if (c === CR) {
          if (pos + 1 >= n && !final) return this.cut(rows, rowStart, firstRow, data);
          if (data[pos + 1] !== LF)
            throw new DataFormatError('CSV_BARE_CR', '', {
              line: this.line + extraLines,
              row: stats.rows + rows + 1,
            });
          pos += 2;
          stats.crlfRows++;
          break;
        }
        throw new DataFormatError('CSV_TEXT_AFTER_QUOTE', decodeUtf8(data, pos, Math.min(n, pos + 20)), {
          line: this.line + extraLines,
          row: stats.rows + rows + 1,
          column: this.names?.[f - 1],
        });
      }
      this.line += 1 + extraLines;
      if (pos - rowStart > this.limits.maxRowBytes) {
        throw new DataFormatError('LIMIT_ROW_BYTES', `a row of ${pos - rowStart} bytes`, {
          line: this.line - 1 - extraLines,
          row: stats.rows + rows + 1,
        });
      }
      if (f !== ncols) {
        if (f === 1 && ends[rowK] === starts[rowK] && data[rowStart] !== QUOTE) {
          stats.blankLines++;
          k = rowK;
          continue rowLoop;
        }
        throw new DataFormatError('CSV_RAGGED_ROW', `${f} fields where the header has ${ncols}`, {
          line: this.line - 1 - extraLines,
          row: stats.rows + rows + 1,
        });
      }
      rows++;
      if (stats.rows + rows > maxRows)
        throw new DataFormatError('LIMIT_ROWS', `more than ${maxRows} rows`, { row: stats.rows + rows });
    }
    this.flush(rows, data, firstRow);
    return n;
  }

  /** Hands the complete rows so far to the sink and reports where the unfinished row starts. */
  private cut(rows: number, rowStart: number, firstRow: number, data: Uint8Array): number {
    this.flush(rows, data, firstRow);
    return rowStart;
  }

  private flush(rows: number, data: Uint8Array, firstRow: number): void {
    if (rows === 0) return;
    this.stats.rows += rows;
    this.sink.batch({
      buf: data,
      starts: this.starts,
      ends: this.ends,
      escaped: this.escaped,
      stride: this.ncols,
      rows,
      firstRow,
    });
  }
}
