import { isDictionary } from '../table';
import { endianness } from 'node:os';
import type { Column, ParseIssues, Table } from '../table';
import type { ColumnType } from '../../contracts/datasetContract';
import { COLUMN_TYPES, HeaderCheck } from './headerCheck';

/**
 * The columnar form of a dataset, written next to the raw upload so validation and training read
 * typed arrays instead of re-parsing text:
 *
 *   "SLUICOL1" | u32 LE header length | header JSON (UTF-8) | zero padding to 8 | sections
 *
 * Each section is 8-byte aligned (offsets relative to the first section), so a reader maps it as
 * a Float64Array / Int32Array / Uint8Array without copying. Dictionaries are a Uint32 offset table
 * (count + 1 entries) and the UTF-8 bytes of the values. The encoding is deterministic: the same
 * table always gives the same bytes, so the form is content-addressed like the raw data.
 */

export const COLUMNAR_MAGIC = 'SLUICOL1';
export const COLUMNAR_CONTENT_TYPE = 'application/vnd.sluice.columnar';

interface Section {
  offset: number;
  bytes: number;
}

export interface ColumnarHeader {
  format: 'sluice-columnar';
  version: 1;
  endianness: 'LE';
  rows: number;
  columns: {
    name: string;
    type: ColumnType;
    data: Section;
    dictionary?: { count: number; offsets: Section; bytes: Section };
    issues: ParseIssues;
  }[];
  meta: Record<string, string | number>;
}

/** Checks a parsed header's shape (by hand: see headerCheck.ts), naming the first wrong field. */
function checkHeader(json: unknown): ColumnarHeader {
  const c = new HeaderCheck((message) => new ColumnarFormatError(`columnar header: ${message}`));
  const h = c.object(json, 'header');
  const section = (v: unknown, path: string): Section => {
    const o = c.object(v, path);
    return { offset: c.int(o.offset, `${path}.offset`, 0), bytes: c.int(o.bytes, `${path}.bytes`, 0) };
  };
  const meta: Record<string, string | number> = {};
  if (h.meta !== undefined) {
    for (const [k, v] of Object.entries(c.object(h.meta, 'meta'))) {
      if (typeof v !== 'string' && typeof v !== 'number') throw c.error(`meta.${k}`, 'a string or a number');
      meta[k] = v;
    }
  }
  return {
    format: c.oneOf(h.format, 'format', ['sluice-columnar'] as const),
    version: c.oneOf(h.version, 'version', [1] as const),
    endianness: c.oneOf(h.endianness, 'endianness', ['LE'] as const),
    rows: c.int(h.rows, 'rows', 0),
    columns: c.array(h.columns, 'columns').map((v, i) => {
      const p = `columns[${i}]`;
      const col = c.object(v, p);
      const out: ColumnarHeader['columns'][number] = {
        name: c.string(col.name, `${p}.name`),
        type: c.oneOf(col.type, `${p}.type`, COLUMN_TYPES),
        data: section(col.data, `${p}.data`),
        issues: c.issues(col.issues, `${p}.issues`),
      };
      if (col.dictionary !== undefined) {
        const d = c.object(col.dictionary, `${p}.dictionary`);
        out.dictionary = {
          count: c.int(d.count, `${p}.dictionary.count`, 0),
          offsets: section(d.offsets, `${p}.dictionary.offsets`),
          bytes: section(d.bytes, `${p}.dictionary.bytes`),
        };
      }
      return out;
    }),
    meta,
  };
}

function pad8(n: number): number {
  return (8 - (n % 8)) % 8;
}

/** The bytes of a table's columnar form as a list of parts (stream them; never concatenated here). */
export function encodeColumnar(table: Table, meta: Record<string, string | number> = {}): Uint8Array[] {
  if (endianness() !== 'LE') throw new Error('the columnar form is little-endian; this platform is not');
  const sections: Uint8Array[] = [];
  let offset = 0;
  const add = (bytes: Uint8Array): { offset: number; bytes: number } => {
    const at = { offset, bytes: bytes.byteLength };
    sections.push(bytes);
    const p = pad8(bytes.byteLength);
    if (p) sections.push(new Uint8Array(p));
    offset += bytes.byteLength + p;
    return at;
  };
  const asBytes = (a: Float64Array | Int32Array | Uint8Array | Uint32Array): Uint8Array =>
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const columns = table.columns.map((col) => {
    if (isDictionary(col)) {
      const data = add(asBytes(col.codes));
      const encoded = col.dictionary.map((t) => Buffer.from(t, 'utf8'));
      const offsets = new Uint32Array(encoded.length + 1);
      let total = 0;
      encoded.forEach((b, i) => {
        offsets[i] = total;
        total += b.length;
      });
      offsets[encoded.length] = total;
      const dictOffsets = add(asBytes(offsets));
      const dictBytes = add(Buffer.concat(encoded, total));
      return {
        name: col.name,
        type: col.type,
        data,
        dictionary: { count: encoded.length, offsets: dictOffsets, bytes: dictBytes },
        issues: col.issues,
      };
    }
    return { name: col.name, type: col.type, data: add(asBytes(col.values)), issues: col.issues };
  });
  const header: ColumnarHeader = {
    format: 'sluice-columnar',
    version: 1,
    endianness: 'LE',
    rows: table.rows,
    columns,
    meta,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(12);
  prefix.write(COLUMNAR_MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length, 8);
  const headPad = new Uint8Array(pad8(12 + json.length));
  return [prefix, json, headPad, ...sections];
}

/** Total size of the parts `encodeColumnar` returns. */
export function partsLength(parts: Uint8Array[]): number {
  return parts.reduce((n, p) => n + p.byteLength, 0);
}

export class ColumnarFormatError extends Error {
  readonly code = 'COLUMNAR_INVALID';
}

/** Reads the header alone (e.g. from the first bytes of a blob). */
export function readColumnarHeader(buf: Uint8Array): { header: ColumnarHeader; dataStart: number } {
  if (
    buf.byteLength < 12 ||
    Buffer.from(buf.buffer, buf.byteOffset, 8).toString('latin1') !== COLUMNAR_MAGIC
  ) {
    throw new ColumnarFormatError('not a Sluice columnar file');
  }
  const len = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readUInt32LE(8);
  if (12 + len > buf.byteLength) throw new ColumnarFormatError('columnar header is truncated');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 12, len).toString('utf8'));
  } catch {
    throw new ColumnarFormatError('columnar header is not JSON');
  }
  const header = checkHeader(json);
  return { header, dataStart: 12 + len + pad8(12 + len) };
}

/** Decodes a whole columnar file into typed columns, viewing `buf`'s memory when it is aligned. */
export function decodeColumnar(buf: Uint8Array): Table & { meta: Record<string, string | number> } {
  const { header, dataStart } = readColumnarHeader(buf);
  const section = (s: { offset: number; bytes: number }): Uint8Array => {
    const start = dataStart + s.offset;
    if (start + s.bytes > buf.byteLength) throw new ColumnarFormatError('columnar section out of range');
    return buf.subarray(start, start + s.bytes);
  };
  const view = <T>(
    bytes: Uint8Array,
    Ctor: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number },
  ): T => {
    const n = bytes.byteLength / Ctor.BYTES_PER_ELEMENT;
    if (!Number.isInteger(n)) throw new ColumnarFormatError('columnar section has a partial element');
    if (bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer, bytes.byteOffset, n);
    const copy = new Uint8Array(bytes); // unaligned (a pooled Buffer): copy once
    return new Ctor(copy.buffer, 0, n);
  };
  const columns: Column[] = header.columns.map((c) => {
    const data = section(c.data);
    if (c.type === 'category' || c.type === 'string') {
      if (!c.dictionary) throw new ColumnarFormatError(`column "${c.name}" has no dictionary`);
      const offsets = view(section(c.dictionary.offsets), Uint32Array);
      const bytes = section(c.dictionary.bytes);
      const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const dictionary: string[] = [];
      for (let i = 0; i < c.dictionary.count; i++)
        dictionary.push(text.toString('utf8', offsets[i]!, offsets[i + 1]!));
      const codes = view(data, Int32Array);
      if (codes.length !== header.rows)
        throw new ColumnarFormatError(`column "${c.name}" has ${codes.length} rows, not ${header.rows}`);
      return { name: c.name, type: c.type as 'category' | 'string', codes, dictionary, issues: c.issues };
    }
    if (c.type === 'boolean') {
      if (data.byteLength !== header.rows)
        throw new ColumnarFormatError(`column "${c.name}" has the wrong length`);
      return { name: c.name, type: 'boolean', values: data, issues: c.issues };
    }
    const values = view(data, Float64Array);
    if (values.length !== header.rows)
      throw new ColumnarFormatError(`column "${c.name}" has ${values.length} rows, not ${header.rows}`);
    return { name: c.name, type: c.type as 'number' | 'integer' | 'datetime', values, issues: c.issues };
  });
  return { rows: header.rows, columns, meta: header.meta };
}
