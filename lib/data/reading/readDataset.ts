import type { Table } from '../table';
import type { CsvStats } from './csv';
import { CsvReader } from './csv';
import { DataFormatError } from '../errors';
import type { ByteSource, InputSummary } from './input';
import { readInput } from './input';
import type { JsonlStats } from './jsonl';
import type { ParquetStats } from './parquet';
import { isParquetMagic, readParquet } from './parquet';
import { JsonlReader } from './jsonl';
import type { IngestLimits } from '../limits';
import { defaultLimits } from '../limits';
import type { DeclaredTypes } from './tableBuilder';
import { TableBuilder } from './tableBuilder';

/**
 * Bytes → typed columns: the input checks (size, gzip, encoding), then the CSV or JSON Lines
 * reader, then the column builders — one pass, one bounded window. Parquet (recognized by its
 * `PAR1` magic) goes to the Parquet reader instead. Storage-free, so the activity, the HTTP check
 * and the benchmark share it.
 */

export type DatasetFormat = 'csv' | 'jsonl' | 'parquet';

export interface ReadDatasetOptions {
  /** Default: Parquet when the bytes start with `PAR1`, JSON Lines when the first non-blank byte is `{`, else CSV. */
  format?: DatasetFormat;
  delimiter?: string;
  /** Columns the contract declares are read as their declared types; others are inferred. */
  contract?: DeclaredTypes;
  limits?: IngestLimits;
  /** Size of the input when known (file size, Content-Length): only a hint for sizing columns. */
  expectedBytes?: number;
}

export interface ReadDatasetResult {
  table: Table;
  format: DatasetFormat;
  input: InputSummary;
  stats: CsvStats | JsonlStats | ParquetStats;
  lineEndings: 'lf' | 'crlf' | 'mixed' | 'none';
}

export async function readDataset(
  source: ByteSource,
  options: ReadDatasetOptions = {},
): Promise<ReadDatasetResult> {
  const limits = options.limits ?? defaultLimits;
  const { head, rest } = await peek(source);
  const parquet = head !== undefined && isParquetMagic(head);
  if (options.format === 'parquet' && !parquet && head !== undefined)
    throw new DataFormatError(
      'INPUT_UNSUPPORTED_FORMAT',
      'Parquet was requested but the data does not start with PAR1',
    );
  if (parquet && options.format !== undefined && options.format !== 'parquet')
    throw new DataFormatError(
      'INPUT_UNSUPPORTED_FORMAT',
      `${options.format} was requested but the data is Parquet`,
    );
  if (parquet) {
    const read = await readParquet(rest, { limits, contract: options.contract });
    return { ...read, format: 'parquet', lineEndings: 'none' };
  }
  source = rest;
  const builder = new TableBuilder(options.contract);
  let reader: CsvReader | JsonlReader | undefined;
  let format = options.format;
  const input = await readInput(source, limits, (chunk) => {
    if (!reader) {
      if (!format) {
        let i = 0;
        while (
          i < chunk.length &&
          (chunk[i] === 0x20 || chunk[i] === 0x09 || chunk[i] === 0x0a || chunk[i] === 0x0d)
        )
          i++;
        if (i === chunk.length && i > 0) return; // only blank so far: decide on the next chunk
        format = chunk[i] === 0x7b ? 'jsonl' : 'csv';
        if (chunk[i] === 0x5b)
          throw new DataFormatError(
            'INPUT_UNSUPPORTED_FORMAT',
            'a JSON array: send JSON Lines (one object per line)',
          );
      }
      reader =
        format === 'jsonl'
          ? new JsonlReader(builder, limits)
          : new CsvReader(builder, limits, options.delimiter, options.expectedBytes);
    }
    reader.write(chunk);
  });
  if (!reader) throw new DataFormatError('INPUT_EMPTY', 'only blank lines');
  const stats = reader.end();
  const table = builder.finish();
  let lineEndings: ReadDatasetResult['lineEndings'] = 'none';
  if (reader instanceof CsvReader) {
    const stats = reader.stats;
    lineEndings =
      stats.crlfRows && stats.lfRows ? 'mixed' : stats.crlfRows ? 'crlf' : stats.lfRows ? 'lf' : 'none';
  }
  return { table, format: format ?? 'csv', input, stats, lineEndings };
}

/** The first non-empty chunk (for the format's magic bytes) and the whole source again, that chunk included. */
async function peek(
  source: ByteSource,
): Promise<{ head: Uint8Array | undefined; rest: AsyncIterable<Uint8Array> }> {
  if (source instanceof Uint8Array) {
    const whole = source;
    return {
      head: whole.length ? whole : undefined,
      rest: (async function* () {
        yield whole;
      })(),
    };
  }
  const it = source[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  const head = first.done ? undefined : first.value;
  async function* rest(): AsyncGenerator<Uint8Array> {
    try {
      if (head) yield head;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    } finally {
      await it.return?.();
    }
  }
  return { head, rest: rest() };
}
