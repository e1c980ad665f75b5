import type { Table } from './column';
import type { CsvStats } from './csv';
import { CsvReader } from './csv';
import { DataFormatError } from './errors';
import type { ByteSource, InputSummary } from './input';
import { readInput } from './input';
import type { JsonlStats } from './jsonl';
import { JsonlReader } from './jsonl';
import type { IngestLimits } from './limits';
import { defaultLimits } from './limits';
import type { DeclaredTypes } from './tableBuilder';
import { TableBuilder } from './tableBuilder';

/**
 * Bytes → typed columns: the input checks (size, gzip, encoding), then the CSV or JSON Lines
 * reader, then the column builders — one pass, one bounded window. Storage-free, so the
 * activity, the HTTP check and the benchmark share it.
 */

export type DatasetFormat = 'csv' | 'jsonl';

export interface ReadDatasetOptions {
  /** Default: JSON Lines when the first non-blank byte is `{`, else CSV. */
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
  stats: CsvStats | JsonlStats;
  lineEndings: 'lf' | 'crlf' | 'mixed' | 'none';
}

export async function readDataset(
  source: ByteSource,
  options: ReadDatasetOptions = {},
): Promise<ReadDatasetResult> {
  const limits = options.limits ?? defaultLimits;
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
