import type { Column, Table } from '../../../lib/data/column';
import { valueAt } from '../../../lib/data/column';
import type { ReadDatasetOptions, ReadDatasetResult } from '../../../lib/data/ingest';
import { readDataset } from '../../../lib/data/ingest';

/** Parses text (or bytes) as a dataset, optionally delivered in chunks of `chunk` bytes. */
export async function parse(
  input: string | Uint8Array,
  options: ReadDatasetOptions & { chunk?: number } = {},
): Promise<ReadDatasetResult> {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const { chunk, ...rest } = options;
  if (!chunk) return readDataset(bytes, rest);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < bytes.length; i += chunk!) yield bytes.subarray(i, i + chunk!);
  }
  return readDataset(chunks(), rest);
}

/** Rows of a table as plain values (datetimes as ISO strings). */
export function rowsOf(table: Table): unknown[][] {
  const out: unknown[][] = [];
  for (let i = 0; i < table.rows; i++) out.push(table.columns.map((c) => valueAt(c, i)));
  return out;
}

export function column(table: Table, name: string): Column {
  const c = table.columns.find((x) => x.name === name);
  if (!c) throw new Error(`no column ${name}`);
  return c;
}

/** The error code a promise rejects with. */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}
