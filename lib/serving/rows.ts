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
/** At most this many bad fields are listed in one error. */
export const MAX_LISTED_ERRORS = 100;

/**
 * What the pipeline's dataset contract says a feature's values may be: numeric bounds (inclusive)
 * and the allowed categories. `refuse`: a value outside them is an error (400) instead of a warning.
 */
export interface ContractLimits {
  columns: Readonly<Record<string, { min?: number; max?: number; values?: readonly string[] }>>;
  refuse: boolean;
}

/** A row the model scored, but with a value it knows nothing about or the contract does not allow. */
export interface RowWarning {
  row: number;
  field: string;
  code: 'unseen_category' | 'out_of_range' | 'value_not_in_contract';
  message: string;
}

/** Checks a body and returns its rows; unseen categories are added to `warnings` when given. */
export type RowValidator = (body: unknown, warnings?: RowWarning[]) => Record<string, unknown>[];

/** One bad field of a request. */
export interface RowError {
  field: string;
  code: string;
  message: string;
}

/** A request with bad rows: every bad field (up to {@link MAX_LISTED_ERRORS}) in `errors`. */
export class RowsError extends ValidationError {
  constructor(
    readonly errors: readonly RowError[],
    readonly more: number,
  ) {
    const shown = errors.slice(0, 5).map((e) => `${e.field}: ${e.message}`);
    const total = errors.length + more;
    const rest = total - shown.length;
    super(
      'invalid_rows',
      total === 1
        ? shown[0]!
        : `${total} bad fields: ${shown.join('; ')}${rest > 0 ? `; and ${rest} more (see errors)` : ''}`,
      { field: errors[0]!.field },
    );
  }
}

function bad(field: string, message: string): ValidationError {
  return new RowsError([{ field, code: 'invalid_rows', message }], 0);
}

/**
 * Accepts `{ "rows": [ {feature: value, ...}, ... ] }` only (a bare array is refused, naming that
 * shape). Every feature must be present: numeric ones as finite numbers, categorical ones as strings
 * (a number or boolean for a categorical feature is refused: `1` and `"1"` are different answers to
 * "which category?"); `null` means a missing value. Fields the model does not use are ignored. A
 * category the model never saw in training is scored (like a missing value) and reported back as
 * a warning on its row.
 */
export function compileRowValidator(
  features: readonly FeatureSpec[],
  contract?: ContractLimits,
): RowValidator {
  const names = features.map((f) => f.name);
  const numeric = features.map((f) => f.type === 'numeric');
  const known = features.map((f) => (f.categories ? new Set(f.categories) : undefined));
  const limits = features.map((f) => contract?.columns[f.name]);
  const allowed = limits.map((l) => (l?.values ? new Set(l.values) : undefined));
  const refuse = contract?.refuse === true;
  return (body, warnings) => {
    if (Array.isArray(body))
      throw bad('(body)', 'send an object {"rows": [ {feature: value, ...} ]}, not a bare array');
    const rows = (body as { rows?: unknown } | null)?.rows;
    if (!Array.isArray(rows)) throw bad('rows', 'send {"rows": [ {feature: value, ...} ]}');
    if (rows.length === 0) throw bad('rows', 'at least one row is needed');
    if (rows.length > MAX_ROWS_PER_REQUEST)
      throw bad('rows', `at most ${MAX_ROWS_PER_REQUEST} rows per request`);
    // Every bad field of every row, not just the first: a client fixes its rows in one round.
    const errors: RowError[] = [];
    let more = 0;
    const fail = (field: string, code: string, message: string) => {
      if (errors.length < MAX_LISTED_ERRORS) errors.push({ field, code, message });
      else more++;
    };
    // Out of the contract: a warning on the row, or an error when the pipeline refuses such rows.
    const outside = (i: number, name: string, code: RowWarning['code'], message: string) => {
      if (refuse) fail(`rows[${i}].${name}`, code, message);
      else warnings?.push({ row: i, field: name, code, message });
    };
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as Record<string, unknown> | null;
      if (typeof row !== 'object' || row === null || Array.isArray(row)) {
        fail(`rows[${i}]`, 'invalid_rows', 'must be an object');
        continue;
      }
      for (let j = 0; j < names.length; j++) {
        const name = names[j]!;
        const v = row[name];
        if (v === null) continue;
        if (v === undefined) {
          fail(`rows[${i}].${name}`, 'invalid_rows', 'is required (use null for a missing value)');
          continue;
        }
        if (numeric[j]) {
          if (typeof v !== 'number' || !Number.isFinite(v)) {
            fail(`rows[${i}].${name}`, 'invalid_rows', 'must be a finite number or null');
            continue;
          }
          const l = limits[j];
          if (l && ((l.min !== undefined && v < l.min) || (l.max !== undefined && v > l.max))) {
            outside(
              i,
              name,
              'out_of_range',
              `${name} = ${v} is outside the contract's range [${l.min ?? '-∞'}, ${l.max ?? '∞'}]`,
            );
          }
        } else if (typeof v !== 'string') {
          fail(
            `rows[${i}].${name}`,
            'invalid_rows',
            `is categorical: send its category as a string (e.g. ${JSON.stringify(String(v))}) or null, not ${typeof v}`,
          );
        } else if (allowed[j]?.has(v) === false) {
          outside(
            i,
            name,
            'value_not_in_contract',
            `${name} = ${JSON.stringify(v)} is not one of the contract's values`,
          );
        } else if (known[j]?.has(v) === false) {
          if (refuse) {
            fail(
              `rows[${i}].${name}`,
              'unseen_category',
              `category ${JSON.stringify(v)} of ${name} was not seen in training`,
            );
          } else {
            warnings?.push({
              row: i,
              field: name,
              code: 'unseen_category',
              message: `category ${JSON.stringify(v)} of ${name} was not seen in training; the row was scored as if ${name} were missing`,
            });
          }
        }
      }
    }
    if (errors.length > 0) throw new RowsError(errors, more);
    return rows as Record<string, unknown>[];
  };
}
