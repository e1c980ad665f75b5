import type { Table } from '../table';
import type { ColumnContract, DatasetContract } from '../../contracts/datasetContract';
import type { InferOptions } from './infer';
import { proposeDatasetContract } from './infer';
import type { ProposedDatasetContract } from './infer';
import type { TableProfile } from '../profiling/profile';

/**
 * What changed between two schemas: two contracts (a pipeline's old and new), or two datasets
 * (the reference and the current data, each inferred). A change is `breaking` when data shaped
 * like `after` can reach a model trained on `before` and surprise it: a missing column, a new
 * type, nulls where there were none, categories it never saw, values outside the ranges it saw.
 */

export type SchemaChangeKind =
  | 'columnAdded'
  | 'columnRemoved'
  | 'typeChanged'
  | 'nullableChanged'
  | 'rangeChanged'
  | 'valuesChanged'
  | 'patternChanged'
  | 'uniqueChanged'
  | 'targetChanged'
  | 'taskChanged';

export interface SchemaChange {
  kind: SchemaChangeKind;
  column?: string;
  before?: unknown;
  after?: unknown;
  breaking: boolean;
  message: string;
}

export interface SchemaDiff {
  identical: boolean;
  breaking: boolean;
  changes: SchemaChange[];
}

export interface DiffOptions {
  /** `any`: every bound change; `widened`: only when `after` reaches beyond `before`; `ignore`. */
  ranges?: 'any' | 'widened' | 'ignore';
  /**
   * With `widened`: how far beyond the old range (as a share of its width) new values must reach to
   * count. Samples of a continuous variable rarely repeat their extremes; a small overshoot is noise.
   */
  rangeTolerance?: number;
  /** Leave datetime ranges out (a new batch of data is later by design). */
  ignoreDatetimeRanges?: boolean;
}

function asNumber(v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'number' ? v : Date.parse(v);
}

function diffColumn(a: ColumnContract, b: ColumnContract, options: DiffOptions): SchemaChange[] {
  const ranges = a.type === 'datetime' && options.ignoreDatetimeRanges ? 'ignore' : (options.ranges ?? 'any');
  const out: SchemaChange[] = [];
  const col = a.name;
  if (a.type !== b.type) {
    const widening = a.type === 'integer' && b.type === 'number';
    out.push({
      kind: 'typeChanged',
      column: col,
      before: a.type,
      after: b.type,
      breaking: !widening,
      message: `"${col}" changed from ${a.type} to ${b.type}`,
    });
  }
  if (a.nullable !== b.nullable) {
    out.push({
      kind: 'nullableChanged',
      column: col,
      before: a.nullable,
      after: b.nullable,
      breaking: b.nullable,
      message: b.nullable ? `"${col}" now has nulls` : `"${col}" no longer has nulls`,
    });
  }
  if (ranges !== 'ignore' && a.type === b.type) {
    const [amin, amax, bmin, bmax] = [asNumber(a.min), asNumber(a.max), asNumber(b.min), asNumber(b.max)];
    const slack =
      amin !== undefined && amax !== undefined ? (amax - amin) * (options.rangeTolerance ?? 0) : 0;
    const below = bmin !== undefined && (amin === undefined ? false : bmin < amin - slack);
    const above = bmax !== undefined && (amax === undefined ? false : bmax > amax + slack);
    const changed = amin !== bmin || amax !== bmax;
    if (ranges === 'any' ? changed : below || above) {
      out.push({
        kind: 'rangeChanged',
        column: col,
        before: [a.min ?? null, a.max ?? null],
        after: [b.min ?? null, b.max ?? null],
        breaking: below || above,
        message: `"${col}" range [${String(a.min)}, ${String(a.max)}] → [${String(b.min)}, ${String(b.max)}]`,
      });
    }
  }
  const av = a.values?.map(String);
  const bv = b.values?.map(String);
  if (av || bv) {
    const added = (bv ?? []).filter((v) => !(av ?? []).includes(v));
    const removed = (av ?? []).filter((v) => !(bv ?? []).includes(v));
    if (added.length || removed.length || !av !== !bv) {
      out.push({
        kind: 'valuesChanged',
        column: col,
        before: av ?? null,
        after: bv ?? null,
        breaking: added.length > 0 || (av !== undefined && bv === undefined),
        message: `"${col}" values${added.length ? ` added ${added.slice(0, 10).join(', ')}` : ''}${removed.length ? ` removed ${removed.slice(0, 10).join(', ')}` : ''}`,
      });
    }
  }
  if (a.pattern !== b.pattern) {
    out.push({
      kind: 'patternChanged',
      column: col,
      before: a.pattern ?? null,
      after: b.pattern ?? null,
      breaking: b.pattern === undefined,
      message: `"${col}" pattern changed`,
    });
  }
  if (a.unique !== b.unique) {
    out.push({
      kind: 'uniqueChanged',
      column: col,
      before: a.unique,
      after: b.unique,
      breaking: a.unique,
      message: `"${col}" ${b.unique ? 'became' : 'is no longer'} unique`,
    });
  }
  return out;
}

/** Changes from contract `before` to contract `after`. */
export function diffDatasetContracts(
  before: DatasetContract | ProposedDatasetContract,
  after: DatasetContract | ProposedDatasetContract,
  options: DiffOptions = {},
): SchemaDiff {
  const changes: SchemaChange[] = [];
  const bmap = new Map(after.columns.map((c) => [c.name, c]));
  const amap = new Map(before.columns.map((c) => [c.name, c]));
  for (const a of before.columns) {
    const b = bmap.get(a.name);
    if (!b)
      changes.push({
        kind: 'columnRemoved',
        column: a.name,
        before: a.type,
        breaking: true,
        message: `"${a.name}" was removed`,
      });
    else changes.push(...diffColumn(a, b, options));
  }
  for (const b of after.columns) {
    if (!amap.has(b.name))
      changes.push({
        kind: 'columnAdded',
        column: b.name,
        after: b.type,
        breaking: false,
        message: `"${b.name}" was added (${b.type})`,
      });
  }
  if (before.target !== after.target) {
    changes.push({
      kind: 'targetChanged',
      before: before.target ?? null,
      after: after.target ?? null,
      breaking: true,
      message: `target ${String(before.target)} → ${String(after.target)}`,
    });
  }
  if (before.task !== after.task) {
    changes.push({
      kind: 'taskChanged',
      before: before.task ?? null,
      after: after.task ?? null,
      breaking: true,
      message: `task ${String(before.task)} → ${String(after.task)}`,
    });
  }
  return { identical: changes.length === 0, breaking: changes.some((c) => c.breaking), changes };
}

/** New data must reach this share of the old range's width beyond it before a dataset diff reports it. */
export const DATASET_RANGE_TOLERANCE = 0.1;

/**
 * Changes from dataset `before` (e.g. the reference) to dataset `after`, each inferred. Ranges count
 * only when the new data goes beyond the old (shifts inside the range are drift's business).
 */
export function diffDatasets(
  before: Table,
  after: Table,
  options: InferOptions & { beforeProfile?: TableProfile; afterProfile?: TableProfile } = {},
): SchemaDiff {
  const { beforeProfile, afterProfile, ...infer } = options;
  // Uniqueness is left out: the reference's profile may come from a sample, which cannot tell.
  const old = proposeDatasetContract(before, { ...infer, inferUnique: false }, beforeProfile);
  // Category or string is a judgement of cardinality; the new data is judged as the old was.
  const textTypes: Record<string, 'category' | 'string'> = {};
  for (const c of old.columns) if (c.type === 'category' || c.type === 'string') textTypes[c.name] = c.type;
  return diffDatasetContracts(
    old,
    proposeDatasetContract(after, { ...infer, textTypes, inferUnique: false }, afterProfile),
    {
      ranges: 'widened',
      rangeTolerance: DATASET_RANGE_TOLERANCE,
      ignoreDatetimeRanges: true,
    },
  );
}
