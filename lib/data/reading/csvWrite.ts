import type { Table } from '../table';
import { valueAt } from '../table';

/**
 * Writing CSV. Cells are kept as data when read (`=HYPERLINK(...)` is a legitimate value), but
 * whenever Sluice writes CSV for a person to open, a text cell that a spreadsheet would evaluate —
 * starting with = + - @, a tab, a carriage return or NUL (OWASP ASVS 1.2.10, CWE-1236) — is
 * prefixed with a single quote, which spreadsheets show as text. Numbers stay numbers.
 */

const FORMULA_START = /^[=+\-@\t\r\0]/;
const NUMBER_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

/** A text cell made safe to open in a spreadsheet (a plain number like "-5" is left alone). */
export function neutralizeFormula(text: string): string {
  return FORMULA_START.test(text) && !NUMBER_TEXT.test(text) ? `'${text}` : text;
}

/** One CSV field (RFC 4180 quoting), formula-neutralized unless `raw`. */
export function formatCsvField(
  value: string | number | boolean | null | undefined,
  options: { delimiter?: string; raw?: boolean } = {},
): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  const text = options.raw ? value : neutralizeFormula(value);
  const delimiter = options.delimiter ?? ',';
  return NEEDS_QUOTES.test(text) || text.includes(delimiter) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A table as CSV text, in blocks of about 1 MB (LF line ends, header first). */
export function* encodeCsv(
  table: Table,
  options: { delimiter?: string; raw?: boolean } = {},
): Generator<string> {
  const d = options.delimiter ?? ',';
  let out = `${table.columns.map((c) => formatCsvField(c.name, options)).join(d)}\n`;
  for (let i = 0; i < table.rows; i++) {
    out += `${table.columns.map((c) => formatCsvField(valueAt(c, i), options)).join(d)}\n`;
    if (out.length > 1 << 20) {
      yield out;
      out = '';
    }
  }
  if (out) yield out;
}
