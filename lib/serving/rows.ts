import { ValidationError } from '../errors';

/**
 * Validates scoring rows against a model's feature schema. Compiled once per loaded model: a plain
 * loop, because it runs on every request (per-row zod costs more than the model itself).
 */

export interface FeatureSpec {
  name: string;
  type: 'numeric' | 'categorical';
  /** The categories seen in training (categorical features). */
  categories?: readonly string[];
}

export const MAX_ROWS_PER_REQUEST = 1000;

/** A row the model scored, but with a value it knows nothing about. */
export interface RowWarning {
  row: number;
  field: string;
  code: 'unseen_category';
  message: string;
}

/** Checks a body and returns its rows; unseen categories are added to `warnings` when given. */
export type RowValidator = (body: unknown, warnings?: RowWarning[]) => Record<string, unknown>[];

function bad(field: string, message: string): ValidationError {
  return new ValidationError('invalid_rows', `${field}: ${message}`, { field });
}

/**
 * Accepts `{ "rows": [ {feature: value, ...}, ... ] }` only (a bare array is refused, naming that
 * shape). Every feature must be present: numeric ones as finite numbers, categorical ones as strings
 * (a number or boolean for a categorical feature is refused: `1` and `"1"` are different answers to
 * "which category?"); `null` means a missing value. Fields the model does not use are ignored. A
 * category the model never saw in training is scored (like a missing value) and reported back as
 * a warning on its row.
 */
export function compileRowValidator(features: readonly FeatureSpec[]): RowValidator {
  const names = features.map((f) => f.name);
  const numeric = features.map((f) => f.type === 'numeric');
  const known = features.map((f) => (f.categories ? new Set(f.categories) : undefined));
  return (body, warnings) => {
    if (Array.isArray(body))
      throw bad('(body)', 'send an object {"rows": [ {feature: value, ...} ]}, not a bare array');
    const rows = (body as { rows?: unknown } | null)?.rows;
    if (!Array.isArray(rows)) throw bad('rows', 'send {"rows": [ {feature: value, ...} ]}');
    if (rows.length === 0) throw bad('rows', 'at least one row is needed');
    if (rows.length > MAX_ROWS_PER_REQUEST)
      throw bad('rows', `at most ${MAX_ROWS_PER_REQUEST} rows per request`);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Record<string, unknown> | null;
      if (typeof row !== 'object' || row === null || Array.isArray(row))
        throw bad(`rows[${i}]`, 'must be an object');
      for (let j = 0; j < names.length; j++) {
        const name = names[j]!;
        const v = row[name];
        if (v === null) continue;
        if (v === undefined) throw bad(`rows[${i}].${name}`, 'is required (use null for a missing value)');
        if (numeric[j]) {
          if (typeof v !== 'number' || !Number.isFinite(v))
            throw bad(`rows[${i}].${name}`, 'must be a finite number or null');
        } else if (typeof v !== 'string') {
          throw bad(
            `rows[${i}].${name}`,
            `is categorical: send its category as a string (e.g. ${JSON.stringify(String(v))}) or null, not ${typeof v}`,
          );
        } else if (warnings && known[j]?.has(v) === false) {
          warnings.push({
            row: i,
            field: name,
            code: 'unseen_category',
            message: `category ${JSON.stringify(v)} of ${name} was not seen in training; the row was scored as if ${name} were missing`,
          });
        }
      }
    }
    return rows as Record<string, unknown>[];
  };
}
