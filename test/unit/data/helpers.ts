import type { Column, Table } from '../../../lib/data/table';
import { valueAt } from '../../../lib/data/table';
import type { ReadDatasetOptions, ReadDatasetResult } from '../../../lib/data/reading/readDataset';
import { readDataset } from '../../../lib/data/reading/readDataset';

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

/**
 * Row `k` of a table with a column of every type (n, i, b, c, s, t: number with nulls, integer,
 * boolean with nulls, category, string with nulls, datetime); `shift` moves the distributions.
 */
export function everyTypeRow(k: number, shift: number): (string | number | boolean)[] {
  return [
    k % 13 === 0 ? '' : ((k * 37) % 1000) / 10 + shift,
    (k % 50) + shift,
    k % 7 === 0 ? '' : k % 3 === 0,
    ['x', 'y', 'z'][(k + shift) % 3]!,
    k % 11 === 0 ? '' : `id-${k % 400}`,
    new Date(Date.UTC(2025, 0, 1) + k * 3_600_000 * (shift + 1)).toISOString(),
  ];
}
