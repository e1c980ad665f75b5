import { createHash } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import type * as Hyparquet from 'hyparquet' with { 'resolution-mode': 'import' };
import type {
  AsyncBuffer,
  ColumnData,
  CompressionCodec,
  Compressors,
  FileMetaData,
  SchemaElement,
  SchemaTree,
} from 'hyparquet' with { 'resolution-mode': 'import' };
import type { Column, ColumnBuilder, Table } from '../table';
import { createBuilder, isDictionary, NULL_CODE, parseNumberText } from '../table';
import type { ColumnType } from '../../contracts/datasetContract';
import { DataFormatError } from '../errors';
import { isCategorical } from '../checking/infer';
import type { InputSummary } from './input';
import type { IngestLimits } from '../limits';
import type { DeclaredTypes } from './tableBuilder';

/**
 * Parquet, read-only, through hyparquet (pure JavaScript, no dependencies). Parquet keeps its
 * schema and row-group index in a footer at the end of the file, so it cannot be parsed as a
 * forward stream: the bytes are first spooled to a temporary file (hashed and size-checked as they
 * arrive, one chunk in memory), then the footer is checked — size, magic, schema, codecs, column
 * and row counts — before any data is read, and the data is read back one row group at a time
 * (one column chunk at a time for row groups over GROUP_READ_BYTES) with ranged file reads.
 * Values go into the same typed columns CSV and JSON Lines produce.
 */

// hyparquet ships only ES modules: Node 22 loads them with require(), TypeScript (node16) cannot type that import.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const hyparquet = (): typeof Hyparquet => require('hyparquet') as typeof Hyparquet;

export const PARQUET_CONTENT_TYPE = 'application/vnd.apache.parquet';

/** `PAR1` at the start of the bytes. */
export function isParquetMagic(head: Uint8Array): boolean {
  return head[0] === 0x50 && head[1] === 0x41 && head[2] === 0x52 && head[3] === 0x31;
}

export interface ParquetStats {
  rows: number;
  columns: number;
  /** Always 0 (no text lines), so code reading the stats of any format finds the same fields. */
  lines: 0;
  blankLines: 0;
  rowGroups: number;
  /** Compression codecs of the column chunks, e.g. ['SNAPPY']. */
  codecs: string[];
}

/** Codecs read here: snappy by hyparquet itself, gzip, brotli and zstd by node:zlib. LZO, LZ4 and LZ4_RAW are refused. */
const SUPPORTED_CODECS: ReadonlySet<string> = new Set(['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI', 'ZSTD']);
/** A footer (schema + row-group index) larger than this is refused before it is read. */
export const MAX_FOOTER_BYTES = 64 * 1024 * 1024;
/** Row groups up to this size (compressed) are read whole; larger ones one column chunk at a time. */
const GROUP_READ_BYTES = 64 * 1024 * 1024;
/** A page is judged for its compression ratio only past this output size. */
const RATIO_GRACE_BYTES = 1 << 20;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const DEFAULT_NULLS = ['', 'NA', 'N/A', 'null', 'NULL', 'NaN'];

/** Random access to the spooled file, as hyparquet's AsyncBuffer. */
function fileBuffer(fh: FileHandle, byteLength: number): AsyncBuffer {
  return {
    byteLength,
    async slice(start: number, end = byteLength): Promise<ArrayBuffer> {
      const from = Math.max(0, Math.min(start, byteLength));
      const to = Math.max(from, Math.min(end, byteLength));
      const out = new ArrayBuffer(to - from);
      let done = 0;
      while (done < out.byteLength) {
        const { bytesRead } = await fh.read(new Uint8Array(out, done), 0, out.byteLength - done, from + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return out;
    },
  };
}

/**
 * Reads a Parquet upload: spools `source` (whose first chunk is `head`) to a temporary file, then
 * reads it as a table. The file is removed whatever happens.
 */
export async function readParquet(
  source: AsyncIterable<Uint8Array>,
  options: { limits: IngestLimits; contract?: DeclaredTypes | undefined },
): Promise<{ table: Table; input: InputSummary; stats: ParquetStats }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-parquet-'));
  let fh: FileHandle | undefined;
  try {
    fh = await open(path.join(dir, 'data.parquet'), 'w+');
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of source) {
      bytes += chunk.length;
      if (bytes > options.limits.maxBytes)
        throw new DataFormatError('INPUT_TOO_LARGE', `more than ${options.limits.maxBytes} bytes`);
      hash.update(chunk);
      let written = 0;
      while (written < chunk.length) {
        written += (await fh.write(chunk, written, chunk.length - written)).bytesWritten;
      }
    }
    const sha256 = hash.digest('hex');
    const { table, stats } = await readParquetBuffer(fileBuffer(fh, bytes), options);
    return { table, stats, input: { sha256, bytes, decodedBytes: bytes, gzip: false, bom: false } };
  } finally {
    await fh?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The footer, checked byte by byte so each way it can be broken gets its own code. */
async function readFooter(file: AsyncBuffer): Promise<FileMetaData> {
  const size = file.byteLength;
  if (size < 12)
    throw new DataFormatError('PARQUET_TRUNCATED', `${size} bytes; the smallest Parquet file has 12`);
  const tail = new Uint8Array(await file.slice(size - 8, size));
  if (!isParquetMagic(tail.subarray(4)))
    throw new DataFormatError('PARQUET_BAD_MAGIC', 'the last 4 bytes are not PAR1');
  const length = new DataView(tail.buffer, tail.byteOffset, 8).getUint32(0, true);
  if (length > size - 12)
    throw new DataFormatError(
      'PARQUET_FOOTER_LENGTH',
      `the footer claims ${length} bytes, the file has ${size - 12} between its magic numbers`,
    );
  if (length > MAX_FOOTER_BYTES)
    throw new DataFormatError(
      'PARQUET_METADATA_TOO_LARGE',
      `${length} bytes of metadata (at most ${MAX_FOOTER_BYTES})`,
    );
  const footer = await file.slice(size - 8 - length, size);
  try {
    return hyparquet().parquetMetadata(footer, { geoparquet: false });
  } catch (err) {
    throw new DataFormatError('PARQUET_METADATA_CORRUPT', (err as Error).message, {}, { cause: err });
  }
}

function nestedKind(node: SchemaTree): string {
  const e = node.element;
  const t = e.logical_type?.type ?? e.converted_type;
  if (t === 'LIST') return 'a list';
  if (t === 'MAP' || t === 'MAP_KEY_VALUE') return 'a map';
  if (e.repetition_type === 'REPEATED') return 'a repeated field';
  return 'a struct';
}

/** The Sluice type a Parquet column reads as, or why it cannot be read. */
export function parquetColumnType(e: SchemaElement): ColumnType | { unsupported: string } {
  const logical = e.logical_type?.type;
  const converted = e.converted_type;
  if (logical === 'TIMESTAMP' || logical === 'DATE' || e.type === 'INT96') return 'datetime';
  if (converted === 'DATE' || converted === 'TIMESTAMP_MILLIS' || converted === 'TIMESTAMP_MICROS')
    return 'datetime';
  if (logical === 'DECIMAL' || converted === 'DECIMAL' || logical === 'FLOAT16') return 'number';
  if (logical === 'UUID' || logical === 'JSON' || converted === 'JSON') return 'string';
  const refused = [logical, converted].find(
    (t) =>
      t !== undefined &&
      ['TIME', 'TIME_MILLIS', 'TIME_MICROS', 'INTERVAL', 'BSON', 'VARIANT', 'GEOMETRY', 'GEOGRAPHY'].includes(
        t,
      ),
  );
  if (refused) return { unsupported: refused };
  switch (e.type) {
    case 'BOOLEAN':
      return 'boolean';
    case 'INT32':
    case 'INT64':
      return 'integer';
    case 'FLOAT':
    case 'DOUBLE':
      return 'number';
    case 'BYTE_ARRAY':
      return 'string'; // category or string once the distinct values are counted
    default:
      return { unsupported: e.type === 'FIXED_LEN_BYTE_ARRAY' ? 'fixed-length binary' : String(e.type) };
  }
}

interface Plan {
  names: string[];
  types: ColumnType[];
  rows: number;
  codecs: string[];
}

/** Everything that can be judged from the footer, before a byte of data is read. */
function planRead(metadata: FileMetaData, fileSize: number, limits: IngestLimits): Plan {
  let tree: SchemaTree;
  try {
    tree = hyparquet().parquetSchema(metadata);
  } catch (err) {
    throw new DataFormatError('PARQUET_METADATA_CORRUPT', (err as Error).message, {}, { cause: err });
  }
  const top = tree.children;
  if (top.length > limits.maxColumns)
    throw new DataFormatError('LIMIT_COLUMNS', `${top.length} columns (at most ${limits.maxColumns})`);
  const seen = new Set<string>();
  const types: ColumnType[] = [];
  for (const node of top) {
    const name = node.element.name;
    if (name === '' || name === undefined) throw new DataFormatError('HEADER_EMPTY', '');
    if (seen.has(name)) throw new DataFormatError('HEADER_DUPLICATE', '', { column: name });
    seen.add(name);
    if (node.children.length > 0 || node.element.repetition_type === 'REPEATED')
      throw new DataFormatError('PARQUET_NESTED_COLUMN', `${nestedKind(node)}: flatten it first`, {
        column: name,
      });
    const t = parquetColumnType(node.element);
    if (typeof t !== 'string')
      throw new DataFormatError('PARQUET_UNSUPPORTED_TYPE', t.unsupported, { column: name });
    types.push(t);
  }
  const names = top.map((n) => n.element.name);
  const corrupt = (detail: string, column?: string): DataFormatError =>
    new DataFormatError('PARQUET_METADATA_CORRUPT', detail, column === undefined ? {} : { column });
  const total = Number(metadata.num_rows);
  if (!Number.isSafeInteger(total) || total < 0) throw corrupt(`row count ${String(metadata.num_rows)}`);
  if (total > limits.maxRows)
    throw new DataFormatError('LIMIT_ROWS', `${total} rows (at most ${limits.maxRows})`);
  const dataEnd = fileSize - 8 - metadata.metadata_length;
  const codecs = new Set<string>();
  let rows = 0;
  let uncompressed = 0;
  metadata.row_groups.forEach((group, g) => {
    const groupRows = Number(group.num_rows);
    if (!Number.isSafeInteger(groupRows) || groupRows < 0)
      throw corrupt(`row group ${g} has ${groupRows} rows`);
    rows += groupRows;
    if (group.columns.length !== names.length)
      throw corrupt(`row group ${g} has ${group.columns.length} column chunks for ${names.length} columns`);
    group.columns.forEach((chunk, c) => {
      const column = names[c];
      const meta = chunk.meta_data;
      if (!meta || chunk.file_path)
        throw corrupt(`row group ${g}: column data is missing or in another file`, column);
      const codec: CompressionCodec | undefined = meta.codec;
      if (!codec || !SUPPORTED_CODECS.has(codec))
        throw new DataFormatError(
          'PARQUET_UNSUPPORTED_CODEC',
          `${codec ?? 'an unknown codec'} (readable: ${[...SUPPORTED_CODECS].join(', ')})`,
          column === undefined ? {} : { column },
        );
      codecs.add(codec);
      const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
      const end = start + Number(meta.total_compressed_size);
      if (!(start >= 4 && end >= start && end <= dataEnd))
        throw corrupt(
          `row group ${g}: column data at bytes ${start}–${end} is outside the data section`,
          column,
        );
      uncompressed += Number(meta.total_uncompressed_size);
    });
  });
  if (rows !== total) throw corrupt(`the row groups hold ${rows} rows, the footer says ${total}`);
  if (uncompressed > limits.maxBytes)
    throw new DataFormatError(
      'PARQUET_DECOMPRESSED_TOO_LARGE',
      `${uncompressed} bytes uncompressed (at most ${limits.maxBytes})`,
    );
  if (names.length === 0) throw new DataFormatError('INPUT_EMPTY', 'a Parquet file without columns');
  if (rows === 0) throw new DataFormatError('INPUT_HEADER_ONLY', `columns: ${names.slice(0, 5).join(', ')}`);
  return { names, types, rows, codecs: [...codecs].sort() };
}

/** Decompressors with a budget: a page header cannot make us allocate more than the dataset limit. */
function boundedCompressors(limits: IngestLimits): Compressors {
  let total = 0;
  const guard = (codec: string, input: Uint8Array, outputLength: number): number => {
    total += outputLength;
    if (outputLength < 0 || total > limits.maxBytes)
      throw new DataFormatError(
        'PARQUET_DECOMPRESSED_TOO_LARGE',
        `${codec} pages decompress to more than ${limits.maxBytes} bytes`,
      );
    if (outputLength > RATIO_GRACE_BYTES && outputLength / Math.max(input.length, 1) > limits.maxGzipRatio)
      throw new DataFormatError('PARQUET_COMPRESSION_RATIO', `a ${codec} page over ${limits.maxGzipRatio}:1`);
    return Math.max(outputLength, 1);
  };
  return {
    SNAPPY: (input, n) => {
      guard('SNAPPY', input, n);
      const out = new Uint8Array(n);
      hyparquet().snappyUncompress(input, out);
      return out;
    },
    GZIP: (input, n) => gunzipSync(input, { maxOutputLength: guard('GZIP', input, n) }),
    BROTLI: (input, n) => brotliDecompressSync(input, { maxOutputLength: guard('BROTLI', input, n) }),
    ZSTD: (input, n) => zstdDecompressSync(input, { maxOutputLength: guard('ZSTD', input, n) }),
  };
}

/** A Parquet value in the form the builder of `target` reads (as JSON Lines values are read). */
function normalize(v: unknown, target: ColumnType): unknown {
  switch (typeof v) {
    case 'bigint':
      // Beyond 2^53 a double is not exact: the exact digits go on as text, which a number column reports
      // as unreadable (rule `type`) and an inferred column keeps by widening to string.
      if ((target === 'number' || target === 'integer') && v >= -MAX_SAFE && v <= MAX_SAFE) return Number(v);
      return target === 'boolean' && (v === 0n || v === 1n) ? v === 1n : v.toString();
    case 'number':
      if (target === 'boolean') return v === 1 ? true : v === 0 ? false : String(v);
      return target === 'datetime' ? String(v) : v;
    case 'string':
      if (target === 'number' || target === 'integer') {
        const n = parseNumberText(v);
        return Number.isNaN(n) ? v : n;
      }
      return v;
    case 'boolean':
      return target === 'category' || target === 'string' ? String(v) : v;
    case 'object':
      if (v === null) return null;
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'invalid date' : v.toISOString();
      return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
    default:
      return null;
  }
}

interface ColumnState {
  name: string;
  builder: ColumnBuilder;
  target: ColumnType;
  strict: boolean;
}

/**
 * Reads a Parquet file as a table. Declared columns are read as their contract types (values that do
 * not fit become nulls with a parse issue, as for CSV); the others take the type of their Parquet
 * column, with text columns settled as category or string by the CSV inference rule.
 */
export async function readParquetBuffer(
  file: AsyncBuffer,
  options: { limits: IngestLimits; contract?: DeclaredTypes | undefined },
): Promise<{ table: Table; stats: ParquetStats }> {
  const { limits } = options;
  const metadata = await readFooter(file);
  const plan = planRead(metadata, file.byteLength, limits);
  const nullValues = options.contract?.nullValues ?? DEFAULT_NULLS;
  const declared = new Map((options.contract?.columns ?? []).map((c) => [c.name, c.type]));
  const columns: ColumnState[] = plan.names.map((name, i) => {
    const type = declared.get(name);
    const target = type ?? plan.types[i]!;
    return {
      name,
      target,
      strict: type !== undefined,
      builder: createBuilder(target, { nullValues, strict: type !== undefined }),
    };
  });
  const byName = new Map(columns.map((c) => [c.name, c]));
  const maxChars = Math.floor(limits.maxFieldBytes / 3); // no string this long in UTF-16 units can exceed the limit in UTF-8
  let failure: unknown;
  const onChunk = (chunk: ColumnData): void => {
    if (failure) return;
    try {
      const col = byName.get(chunk.columnName);
      if (!col || col.builder.length !== chunk.rowStart)
        throw new DataFormatError('PARQUET_CORRUPT', 'column chunks out of step', {
          column: chunk.columnName,
        });
      const data = chunk.columnData;
      let b = col.builder;
      for (let i = 0; i < data.length; i++) {
        const raw: unknown = data[i];
        const row = chunk.rowStart + i + 1;
        if (typeof raw === 'string' && raw.length > maxChars && Buffer.byteLength(raw) > limits.maxFieldBytes)
          throw new DataFormatError('LIMIT_FIELD_BYTES', `${Buffer.byteLength(raw)} bytes`, {
            row,
            column: col.name,
          });
        const v = raw === null || raw === undefined ? null : normalize(raw, b.type);
        while (!b.pushValue(v, row)) b = b.widen();
      }
      col.builder = b;
    } catch (err) {
      failure = err;
    }
  };
  const compressors = boundedCompressors(limits);
  const parsers = { jsonFromBytes: (bytes: Uint8Array): string => new TextDecoder().decode(bytes) };
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    const groupRows = Number(group.num_rows);
    const groupEnd = groupStart + groupRows;
    if (groupRows > 0) {
      const compressed = group.columns.reduce(
        (n, c) => n + Number(c.meta_data?.total_compressed_size ?? 0),
        0,
      );
      const reads = compressed > GROUP_READ_BYTES ? plan.names.map((n) => [n]) : [undefined];
      for (const only of reads) {
        try {
          await hyparquet().parquetRead({
            file,
            metadata,
            rowStart: groupStart,
            rowEnd: groupEnd,
            ...(only ? { columns: only } : {}),
            onChunk,
            compressors,
            parsers,
            geoparquet: false,
          });
        } catch (err) {
          if (err instanceof DataFormatError) throw err;
          throw new DataFormatError('PARQUET_CORRUPT', (err as Error).message, {}, { cause: err });
        }
        if (failure) throw failure;
      }
      for (const col of columns) {
        if (col.builder.length !== groupEnd)
          throw new DataFormatError(
            'PARQUET_CORRUPT',
            `${col.builder.length} values where the row groups hold ${groupEnd} rows`,
            { column: col.name },
          );
      }
    }
    groupStart = groupEnd;
  }
  const table: Table = {
    rows: plan.rows,
    columns: columns.map((c) => settle(c.builder.finish(c.name), c.strict)),
  };
  return {
    table,
    stats: {
      rows: plan.rows,
      lines: 0,
      blankLines: 0,
      columns: plan.names.length,
      rowGroups: metadata.row_groups.length,
      codecs: plan.codecs,
    },
  };
}

/** An undeclared text column becomes a category when it has few distinct values (the CSV rule). */
function settle(col: Column, strict: boolean): Column {
  if (strict || !isDictionary(col)) return col;
  let nonNull = 0;
  for (let i = 0; i < col.codes.length; i++) if (col.codes[i] !== NULL_CODE) nonNull++;
  return { ...col, type: isCategorical(col.dictionary.length, nonNull) ? 'category' : 'string' };
}
