import type { DatasetContract } from '../contracts/datasetContract';
import type { ColumnDrift, DriftSide } from '../data/profiling/drift';
import { driftColumn, finishDrift } from '../data/profiling/drift';
import { profileColumn } from '../data/profiling/profile';
import type { ReferenceProfile } from '../data/profiling/referenceProfile';
import type { Column } from '../data/table';
import { BOOL_NULL, NULL_CODE, emptyIssues } from '../data/table';
import type { PredictionReference } from '../rollout/records';
import { binOf, predictionPsi } from '../rollout/figures';
import type { FeatureDriftSummary } from './records';

/**
 * Drift of live inputs against the training data: the sampled rows become typed columns and go
 * through the same per-column drift and dataset verdict as validation (lib/data/profiling/drift.ts),
 * against the reference profile of the data the production model was trained on, with the pipeline
 * contract's metrics, thresholds and verdict. Hashed and dropped features are not compared (said per
 * column), nor is the target.
 */

/** Typed column of one contract column's values in the sampled rows. */
export function liveColumn(
  spec: DatasetContract['columns'][number],
  rows: readonly Record<string, unknown>[],
): Column {
  const n = rows.length;
  const issues = emptyIssues();
  if (spec.type === 'number' || spec.type === 'integer' || spec.type === 'datetime') {
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = rows[i]![spec.name];
      const x = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      values[i] = Number.isFinite(x) ? x : NaN;
    }
    return { name: spec.name, type: spec.type, values, issues };
  }
  if (spec.type === 'boolean') {
    const values = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = rows[i]![spec.name];
      values[i] =
        v === true || v === 'true' || v === 1 ? 1 : v === false || v === 'false' || v === 0 ? 0 : BOOL_NULL;
    }
    return { name: spec.name, type: 'boolean', values, issues };
  }
  const dictionary: string[] = [];
  const index = new Map<string, number>();
  const codes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = rows[i]![spec.name];
    if (v === null || v === undefined || v === '') {
      codes[i] = NULL_CODE;
      continue;
    }
    const s = String(v);
    let c = index.get(s);
    if (c === undefined) {
      c = dictionary.length;
      dictionary.push(s);
      index.set(s, c);
    }
    codes[i] = c;
  }
  return { name: spec.name, type: spec.type, codes, dictionary, issues };
}

export function liveFeatureDrift(
  contract: DatasetContract,
  reference: ReferenceProfile,
  rows: readonly Record<string, unknown>[],
  options: { target: string; hashed: readonly string[]; dropped: readonly string[] },
): FeatureDriftSummary {
  const refIndex = new Map(reference.table.columns.map((c, i) => [c.name, i]));
  const hashed = new Set(options.hashed);
  const dropped = new Set(options.dropped);
  const results: ColumnDrift[] = [];
  for (const spec of contract.columns) {
    const skipped = (reason: string): ColumnDrift => ({
      column: spec.name,
      type: spec.type,
      status: 'skipped',
      reason,
      weight: 1,
      referenceCount: 0,
      currentCount: 0,
      metrics: {},
    });
    if (spec.name === options.target) continue;
    if (hashed.has(spec.name)) {
      results.push(skipped('hashed by the monitoring section'));
      continue;
    }
    if (dropped.has(spec.name)) {
      results.push(skipped('left out by the monitoring section'));
      continue;
    }
    const i = refIndex.get(spec.name);
    const ref: DriftSide | undefined =
      i === undefined
        ? undefined
        : {
            col: reference.table.columns[i]!,
            stats: reference.profile.stats[i]!,
            profile: reference.profile.columns[i]!,
          };
    if (!rows.some((r) => spec.name in r)) {
      results.push(driftColumn(spec, contract.drift, ref, undefined));
      continue;
    }
    const col = liveColumn(spec, rows);
    const { stats } = profileColumn(col, rows.length, {});
    results.push(driftColumn(spec, contract.drift, ref, { col, stats }));
  }
  const d = finishDrift(results, contract.drift);
  return {
    status: d.status,
    driftedShare: d.driftedShare,
    driftedColumns: d.driftedColumns,
    criticalDrifted: d.criticalDrifted,
    rule: d.rule,
    columns: d.columns.map((c) => ({
      column: c.column,
      status: c.status,
      ...(c.reason ? { reason: c.reason } : {}),
      referenceCount: c.referenceCount,
      currentCount: c.currentCount,
      metrics: Object.fromEntries(
        Object.entries(c.metrics).map(([k, m]) => [
          k,
          { value: m.value, threshold: m.threshold, drifted: m.drifted },
        ]),
      ),
    })),
  };
}

/**
 * PSI of the sampled predictions against the holdout predictions' reference, smoothed as the
 * rollout's guard smooths it (an observed bin empty by chance adds what it is worth, not ≈ 0.69),
 * with the rows it counted (finite numbers against bins; every prediction against classes).
 */
export function livePredictionPsi(
  reference: PredictionReference,
  predictions: readonly (string | number)[],
): { psi: number | null; rows: number } {
  if (reference.kind === 'bins') {
    const bins = new Array<number>(reference.edges.length + 1).fill(0);
    let rows = 0;
    for (const p of predictions)
      if (typeof p === 'number' && Number.isFinite(p)) {
        bins[binOf(reference.edges, p)]!++;
        rows++;
      }
    return { psi: predictionPsi(reference, { bins }, { smoothed: true }), rows };
  }
  const classes: Record<string, number> = {};
  for (const p of predictions) classes[String(p)] = (classes[String(p)] ?? 0) + 1;
  return { psi: predictionPsi(reference, { classes }, { smoothed: true }), rows: predictions.length };
}
