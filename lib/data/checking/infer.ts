import type { Column, Table } from '../table';
import { parseBooleanText, parseDatetimeText, parseNumberText } from '../table';
import type { ColumnContract, ColumnType, Task } from '../../contracts/datasetContract';
import type { ColumnProfile, TableProfile } from '../profiling/profile';
import { profileTable } from '../profiling/profile';

/**
 * Schema inference: a contract proposed from real data, so a user edits something true instead of
 * typing one from nothing (TFX SchemaGen, Deequ's constraint suggestion). Inference is a starting
 * point: ranges are the observed ones, and every category seen becomes an allowed value.
 */

/** At most this many distinct values, and at most this share of the non-null values, make a category. */
export const CATEGORY_MAX_DISTINCT = 50;
export const CATEGORY_MAX_SHARE = 0.2;

const INTEGER_TEXT = /^\s*[+-]?\d+\s*$/;
const BOOLEAN_WORDS = new Set(['true', 'false', 'yes', 'no']);

/** The narrowest type that reads every non-null text of a sample. */
export function inferTypeFromTexts(texts: readonly string[], nullValues: readonly string[]): ColumnType {
  const values = texts.filter((t) => !nullValues.includes(t));
  if (values.length === 0) return 'string';
  if (values.every((t) => INTEGER_TEXT.test(t) && Number.isSafeInteger(Number(t)))) return 'integer';
  if (values.every((t) => !Number.isNaN(parseNumberText(t)))) return 'number';
  // 0/1 read as integers above; a boolean column needs words.
  if (
    values.every((t) => parseBooleanText(t) !== undefined) &&
    values.some((t) => BOOLEAN_WORDS.has(t.trim().toLowerCase()))
  ) {
    return 'boolean';
  }
  if (values.every((t) => !Number.isNaN(parseDatetimeText(t)))) return 'datetime';
  const distinct = new Set(values).size;
  return isCategorical(distinct, values.length) ? 'category' : 'string';
}

export function isCategorical(distinct: number, nonNull: number): boolean {
  return (
    distinct <= CATEGORY_MAX_DISTINCT &&
    (distinct <= 2 || distinct <= Math.max(2, CATEGORY_MAX_SHARE * nonNull))
  );
}

export interface InferOptions {
  target?: string;
  task?: Task;
  nullValues?: string[];
  /** Widen observed numeric ranges by this share of the range (0 = exactly the observed min/max). */
  rangeSlack?: number;
  /** Text columns to treat as category or string regardless of their cardinality (e.g. as in a reference). */
  textTypes?: Record<string, 'category' | 'string'>;
  /** Propose `unique` for identifier-like columns (default true; a profile from a sample cannot tell). */
  inferUnique?: boolean;
}

function inferColumn(
  col: Column,
  p: ColumnProfile,
  rangeSlack: number,
  textType?: 'category' | 'string',
): ColumnContract {
  const nullable = p.nulls > 0;
  const base = { name: col.name, nullable, unique: false } as const;
  switch (col.type) {
    case 'number':
    case 'integer': {
      const integral = p.numeric !== undefined && p.numeric.integral;
      const type = col.type === 'integer' || integral ? 'integer' : 'number';
      if (!p.numeric || p.numeric.count === 0) return { ...base, type };
      const slack = (p.numeric.max - p.numeric.min) * rangeSlack;
      const round = (v: number): number => (type === 'integer' ? Math.round(v) : v);
      return {
        ...base,
        type,
        min: round(p.numeric.min - slack),
        max: round(p.numeric.max + slack),
        unique:
          type === 'integer' && p.distinct === p.count - p.nulls && p.count - p.nulls > CATEGORY_MAX_DISTINCT,
      };
    }
    case 'datetime': {
      if (!p.numeric || p.numeric.count === 0) return { ...base, type: 'datetime' };
      return {
        ...base,
        type: 'datetime',
        min: new Date(p.numeric.min).toISOString(),
        max: new Date(p.numeric.max).toISOString(),
      };
    }
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'category':
    case 'string': {
      const nonNull = p.count - p.nulls;
      if (textType === 'category' || (textType === undefined && isCategorical(p.distinct, nonNull))) {
        return {
          ...base,
          type: 'category',
          values: col.dictionary.filter((_, i) => (p.codeCounts?.[i] ?? 0) > 0).sort(),
        };
      }
      return { ...base, type: 'string', unique: p.distinct === nonNull && nonNull > CATEGORY_MAX_DISTINCT };
    }
  }
}

function guessTask(col: ColumnContract, p: ColumnProfile): Task {
  if (col.type === 'boolean') return 'binary';
  if (col.type === 'category' || col.type === 'string') return p.distinct <= 2 ? 'binary' : 'multiclass';
  if (col.type === 'integer' && p.distinct <= 2) return 'binary';
  if (col.type === 'integer' && p.distinct <= 20) return 'multiclass';
  return 'regression';
}

/** A contract proposed from data, before the contract schema fills its defaults (see inferDatasetContract.ts). */
export interface ProposedDatasetContract {
  columns: ColumnContract[];
  nullValues?: string[];
  target?: string;
  task?: Task;
}

/**
 * Proposes a contract from a table (parsed without one, so every column has its inferred type).
 * Free of the zod schema, so the schema diff in the validation worker does not load it.
 */
export function proposeDatasetContract(
  table: Table,
  options: InferOptions = {},
  profile: TableProfile = profileTable(table),
): ProposedDatasetContract {
  const columns = table.columns.map((col, i) =>
    options.inferUnique === false
      ? {
          ...inferColumn(col, profile.columns[i]!, options.rangeSlack ?? 0, options.textTypes?.[col.name]),
          unique: false,
        }
      : inferColumn(col, profile.columns[i]!, options.rangeSlack ?? 0, options.textTypes?.[col.name]),
  );
  const input: ProposedDatasetContract = { columns };
  if (options.nullValues) input.nullValues = options.nullValues;
  if (options.target !== undefined) {
    const i = columns.findIndex((c) => c.name === options.target);
    if (i === -1) throw new Error(`target "${options.target}" is not a column`);
    input.target = options.target;
    input.task = options.task ?? guessTask(columns[i]!, profile.columns[i]!);
    if (input.task === 'regression' && columns[i]!.type !== 'integer' && columns[i]!.type !== 'number') {
      throw new Error(
        `target "${options.target}" is ${columns[i]!.type}: a regression target must be numeric`,
      );
    }
  }
  return input;
}
