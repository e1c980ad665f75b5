import { ValidationError } from '../errors';

/**
 * Validates scoring rows against a model's feature schema. Compiled once per loaded model: a plain
 * loop, because it runs on every request (per-row zod costs more than the model itself).
 */

export interface FeatureSpec {
  name: string;
  type: 'numeric' | 'categorical';
}

export const MAX_ROWS_PER_REQUEST = 1000;

export type RowValidator = (body: unknown) => Record<string, unknown>[];

function bad(field: string, message: string): ValidationError {
  return new ValidationError('invalid_rows', `${field}: ${message}`, { field });
}

/**
 * Accepts `{ "rows": [ {feature: value, ...}, ... ] }` (or the bare array). Every feature must be
 * present: numeric ones as finite numbers, categorical ones as strings (numbers and booleans are
 * taken as their text); `null` means a missing value. Fields the model does not use are ignored.
 */
export function compileRowValidator(features: readonly FeatureSpec[]): RowValidator {
  const names = features.map((f) => f.name);
  const numeric = features.map((f) => f.type === 'numeric');
  return (body) => {
    const rows = Array.isArray(body) ? body : (body as { rows?: unknown } | null)?.rows;
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
        } else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
          throw bad(`rows[${i}].${name}`, 'must be a string or null');
        }
      }
    }
    return rows as Record<string, unknown>[];
  };
}
