import { z } from 'zod';
import { ValidationError } from '../errors';
import type { EvaluationPolicy, MetricName } from '../contracts/evaluationPolicy';
import { evaluationPolicySchema } from '../contracts/evaluationPolicy';
import type { PairedBootstrapResult } from './bootstrap';
import { higherIsBetter } from '../metrics/metrics';

/**
 * The evaluation policy of a pipeline (schema: lib/contracts/evaluationPolicy.ts) applied: what a
 * candidate model must show, on its own and against the production model (the champion) scored on
 * the same rows, before it may go to approval.
 *
 * Conventions: a metric is "at least as good as" a threshold when it is ≥ it for higher-is-better
 * metrics (accuracy, AUC, R²) and ≤ it for losses and errors (log loss, Brier, RMSE, MAE).
 * "Improvement" is candidate − champion for higher-is-better metrics and champion − candidate
 * otherwise, so a positive improvement is always better; "degradation" is −improvement.
 */
export function parseEvaluationPolicy(input: unknown): EvaluationPolicy {
  const parsed = evaluationPolicySchema.safeParse(input);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ValidationError(
      'invalid_evaluation_policy',
      `invalid evaluation policy:\n${z.prettifyError(parsed.error)}`,
      {
        field: first && first.path.length > 0 ? first.path.join('.') : undefined,
      },
    );
  }
  return parsed.data;
}

/** Per-slice values of one metric for the candidate and, when there is one, the champion. */
export interface SliceResult {
  column: string;
  value: string;
  metric: MetricName;
  rows: number;
  candidate: number | null;
  champion: number | null;
}

/** What the verdict is decided on; everything here also goes into the evaluation report. */
export interface Evidence {
  rows: number;
  candidate: Partial<Record<MetricName, number | null>>;
  champion?: Partial<Record<MetricName, number | null>>;
  /** Paired bootstrap of candidate − champion on the primary metric (raw difference, not improvement). */
  comparison?: PairedBootstrapResult;
  slices: SliceResult[];
  /** The champion's bootstrap interval of the primary metric on these rows. */
  championInterval?: { lower: number | null; upper: number | null };
  /** The champion's primary metric recorded when it was registered; null when none was. */
  championRecorded?: number | null;
  /** Slice columns of the policy that the evaluation data does not have. */
  missingSliceColumns?: string[];
}

export type CheckName =
  | 'min_rows'
  | 'primary_threshold'
  | 'no_champion'
  | 'champion_collapsed'
  | 'superiority'
  | 'non_inferiority'
  | 'guardrail_threshold'
  | 'guardrail_degradation'
  | 'slice';

/** One judged condition. Every check of the policy is listed, passed or not. */
export interface Check {
  check: CheckName;
  passed: boolean;
  message: string;
  metric?: MetricName;
  value?: number | null;
  limit?: number;
  slice?: { column: string; value: string; rows: number };
}

export interface Verdict {
  passed: boolean;
  reasons: Check[];
}

const fmt = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(4);

/** True when `value` is at least as good as `limit` for this metric. */
function atLeastAsGood(metric: MetricName, value: number, limit: number): boolean {
  return higherIsBetter(metric) ? value >= limit : value <= limit;
}

/** Improvement of the candidate over the champion (positive = better), from raw values. */
export function improvement(metric: MetricName, candidate: number, champion: number): number {
  return higherIsBetter(metric) ? candidate - champion : champion - candidate;
}

/** Decides pass or fail and lists every check with its reason. */
export function decide(policy: EvaluationPolicy, e: Evidence): Verdict {
  const reasons: Check[] = [];
  const pm = policy.primaryMetric;
  const word = (m: MetricName) => (higherIsBetter(m) ? '>=' : '<=');

  reasons.push({
    check: 'min_rows',
    passed: e.rows >= policy.minRows,
    message: `${e.rows} evaluation rows (minimum ${policy.minRows})`,
    value: e.rows,
    limit: policy.minRows,
  });

  const primary = e.candidate[pm];
  if (policy.threshold !== undefined) {
    const ok =
      primary !== null &&
      primary !== undefined &&
      Number.isFinite(primary) &&
      atLeastAsGood(pm, primary, policy.threshold);
    reasons.push({
      check: 'primary_threshold',
      passed: ok,
      message: `${pm} = ${fmt(primary)}, required ${word(pm)} ${policy.threshold}`,
      metric: pm,
      value: primary ?? null,
      limit: policy.threshold,
    });
  }

  for (const g of policy.guardrails) {
    const v = e.candidate[g.metric];
    if (g.threshold !== undefined) {
      const ok =
        v !== null && v !== undefined && Number.isFinite(v) && atLeastAsGood(g.metric, v, g.threshold);
      reasons.push({
        check: 'guardrail_threshold',
        passed: ok,
        message: `guardrail ${g.metric} = ${fmt(v)}, required ${word(g.metric)} ${g.threshold}`,
        metric: g.metric,
        value: v ?? null,
        limit: g.threshold,
      });
    }
  }

  if (!e.champion) {
    const mode = policy.noChampion;
    reasons.push({
      check: 'no_champion',
      passed: mode !== 'fail',
      message:
        mode === 'fail'
          ? 'no production model to compare with, and the policy refuses a first model (noChampion: fail)'
          : 'no production model to compare with: only absolute thresholds apply (noChampion: thresholds_only)',
    });
    return { passed: reasons.every((r) => r.passed), reasons };
  }

  const collapse = championCollapse(policy, e);
  if (collapse) reasons.push(collapse);

  const c = e.comparison;
  const sign = higherIsBetter(pm) ? 1 : -1;
  const imp = c
    ? {
        estimate: sign * c.estimate,
        lower: sign > 0 ? c.lower : -c.upper,
        upper: sign > 0 ? c.upper : -c.lower,
      }
    : undefined;
  const ci = imp
    ? `improvement ${fmt(imp.estimate)} [${fmt(imp.lower)}, ${fmt(imp.upper)}] at ${Math.round(policy.confidence * 100)}%`
    : 'no comparison';
  const cmp = policy.comparison;
  if (cmp.mode === 'superiority') {
    const value = imp ? (cmp.requireSignificance ? imp.lower : imp.estimate) : NaN;
    const ok =
      Number.isFinite(value) &&
      (cmp.requireSignificance ? value > cmp.minImprovement : value >= cmp.minImprovement);
    reasons.push({
      check: 'superiority',
      passed: ok,
      message: cmp.requireSignificance
        ? `${pm} vs production: ${ci}; the lower bound must exceed ${cmp.minImprovement}`
        : `${pm} vs production: ${ci}; the estimate must reach ${cmp.minImprovement}`,
      metric: pm,
      value: Number.isFinite(value) ? value : null,
      limit: cmp.minImprovement,
    });
  } else {
    const value = imp ? imp.lower : NaN;
    const ok = Number.isFinite(value) && value > -cmp.margin;
    reasons.push({
      check: 'non_inferiority',
      passed: ok,
      message: `${pm} vs production: ${ci}; the lower bound must be above -${cmp.margin}`,
      metric: pm,
      value: Number.isFinite(value) ? value : null,
      limit: -cmp.margin,
    });
  }

  for (const g of policy.guardrails) {
    if (g.maxDegradation === undefined) continue;
    const a = e.candidate[g.metric];
    const b = e.champion[g.metric];
    const ok = isNum(a) && isNum(b) && -improvement(g.metric, a, b) <= g.maxDegradation + 1e-12;
    const deg = isNum(a) && isNum(b) ? -improvement(g.metric, a, b) : null;
    reasons.push({
      check: 'guardrail_degradation',
      passed: ok,
      message: `guardrail ${g.metric}: candidate ${fmt(a)} vs production ${fmt(b)}, ${deg === null ? 'not comparable' : deg > 0 ? `worse by ${fmt(deg)}` : deg < 0 ? `better by ${fmt(-deg)}` : 'no change'} (allowed to be worse by ${g.maxDegradation})`,
      metric: g.metric,
      value: deg,
      limit: g.maxDegradation,
    });
  }

  for (const missing of e.missingSliceColumns ?? []) {
    reasons.push({
      check: 'slice',
      passed: false,
      message: `slice column "${missing}" is not in the evaluation data`,
    });
  }
  for (const guard of policy.sliceGuards) {
    const metric = guard.metric ?? pm;
    for (const s of e.slices.filter((x) => x.column === guard.column && x.metric === metric)) {
      const slice = { column: s.column, value: s.value, rows: s.rows };
      if (s.rows < guard.minRows) {
        reasons.push({
          check: 'slice',
          passed: true,
          message: `slice ${s.column}=${s.value}: ${s.rows} rows, fewer than ${guard.minRows}, not judged`,
          metric,
          slice,
        });
        continue;
      }
      if (!isNum(s.candidate) || !isNum(s.champion)) {
        reasons.push({
          check: 'slice',
          passed: true,
          message: `slice ${s.column}=${s.value}: ${metric} undefined on this slice (e.g. one class only), not judged`,
          metric,
          slice,
        });
        continue;
      }
      const deg = -improvement(metric, s.candidate, s.champion);
      reasons.push({
        check: 'slice',
        passed: deg <= guard.maxDegradation + 1e-12,
        message: `slice ${s.column}=${s.value} (${s.rows} rows): ${metric} ${fmt(s.candidate)} vs production ${fmt(s.champion)}, worse by ${fmt(deg)} (allowed ${guard.maxDegradation})`,
        metric,
        value: deg,
        limit: guard.maxDegradation,
        slice,
      });
    }
  }
  return { passed: reasons.every((r) => r.passed), reasons };
}

/** Metrics whose scale is the target's: their collapse margin is a fraction of the recorded value. */
const RELATIVE_MARGIN: ReadonlySet<MetricName> = new Set<MetricName>(['rmse', 'mae']);

/** A number as people read it in a sentence: two decimals, or whole when large. */
const plain = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2));

/**
 * The production model against its own record: when even the best end of its interval on today's
 * rows is worse than the value recorded at registration by more than the margin, the data or its
 * labels changed under it, and comparing the candidate with it proves nothing (both are judged on
 * the same corrupted rows). Undefined when the policy turns it off or nothing was recorded.
 */
export function championCollapse(policy: EvaluationPolicy, e: Evidence): Check | undefined {
  const { action, margin } = policy.championCollapse;
  const pm = policy.primaryMetric;
  const recorded = e.championRecorded;
  const today = e.champion?.[pm];
  if (action === 'off' || !isNum(recorded) || !isNum(today)) return undefined;
  // The end of today's interval most favourable to the champion (the point value if none).
  const best = higherIsBetter(pm)
    ? (e.championInterval?.upper ?? today)
    : (e.championInterval?.lower ?? today);
  const limit = RELATIVE_MARGIN.has(pm) ? margin * Math.abs(recorded) : margin;
  const shortfall = -improvement(pm, best, recorded);
  const collapsed = shortfall > limit + 1e-12;
  const detail = `${pm} ${fmt(today)} on these rows (interval up to ${fmt(best)}) vs ${fmt(recorded)} recorded; allowed shortfall ${RELATIVE_MARGIN.has(pm) ? `${margin} × recorded = ${fmt(limit)}` : margin}`;
  return {
    check: 'champion_collapsed',
    passed: !collapsed || action === 'warn',
    message: collapsed
      ? `the production model scores ${plain(today)} on this data against ${plain(recorded)} when it was approved: check the labels and the data (${detail}${action === 'warn' ? '; championCollapse.action: warn' : ''})`
      : `the production model holds its recorded ${pm}: ${detail}`,
    metric: pm,
    value: shortfall,
    limit,
  };
}

function isNum(x: number | null | undefined): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}
