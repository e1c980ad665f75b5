import type { EvaluationPolicy, MetricName } from '../contracts/evaluationPolicy';

/**
 * Whether an evaluation policy can pass at all on a holdout of a given size: the paired bootstrap
 * interval of candidate − production is about ±z·σ/√n wide (σ the per-row standard deviation of the
 * difference), and a comparison whose margin is narrower than that blocks even a candidate exactly
 * as good as production. Pure: PUT of a pipeline and `sluice pipelines apply` show its warning.
 */

/** Standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return NaN;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lowTail = 0.02425;
  const tail = (q: number) =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < lowTail) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - lowTail) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

/**
 * The per-row standard deviation of the paired difference assumed when no run of the pipeline has
 * measured it: two classifiers that disagree on about 6% of the rows (√0.06 ≈ 0.245). Losses and
 * errors in the target's own units (log loss, RMSE, MAE) have no such default.
 */
export const ASSUMED_ROW_SD = 0.245;
const ASSUMED_DISAGREEMENT = '6%';
const UNSCALED: ReadonlySet<MetricName> = new Set<MetricName>(['log_loss', 'rmse', 'mae']);

/** Power used for "rows needed": an equally good candidate passes 4 times in 5. */
const POWER = 0.8;

/** A superiority policy whose smallest provable improvement is larger than this is flagged. */
export const SUPERIORITY_WARN_ABOVE = 0.05;

export interface HoldoutBasis {
  /** Evaluation rows (holdout plus golden set) the check assumes. */
  rows: number;
  /** Where `rows` comes from, said in the warning: "the last run", "--rows". */
  rowsFrom: string;
  /** A measured interval of the difference on the primary metric, from a previous run. */
  measured?: { lower: number; upper: number; confidence: number; rows: number; from: string };
}

export interface PolicyPower {
  code: 'policy_untestable';
  field: string;
  message: string;
  /** ± half-width of the interval of the difference at the policy's confidence. */
  halfWidth: number;
  /** Rows for an equally good (non-inferiority) or minImprovement + 0.01 better (superiority) candidate to pass 4 times in 5. */
  rowsNeeded: number;
  assumed: string;
}

const f2 = (x: number) => (x >= 0.01 ? x.toFixed(2) : x.toPrecision(2));

/**
 * The warning for a policy that (almost) never passes on this many rows, or undefined when it can,
 * when it needs no comparison, or when the spread cannot be estimated (an unscaled metric and no
 * measured run).
 */
export function policyPower(policy: EvaluationPolicy, basis: HoldoutBasis): PolicyPower | undefined {
  const pm = policy.primaryMetric;
  const n = basis.rows;
  if (!(n > 0)) return undefined;
  const m = basis.measured;
  let sd: number;
  let assumed: string;
  if (m && m.rows > 0 && m.upper > m.lower && m.confidence > 0 && m.confidence < 1) {
    sd = ((m.upper - m.lower) / (2 * normalQuantile((1 + m.confidence) / 2))) * Math.sqrt(m.rows);
    assumed = `${n} evaluation rows (${basis.rowsFrom}) and the spread of ${pm} measured by ${m.from}`;
  } else if (!UNSCALED.has(pm)) {
    sd = ASSUMED_ROW_SD;
    assumed = `${n} evaluation rows (${basis.rowsFrom}) and two models that disagree on about ${ASSUMED_DISAGREEMENT} of rows`;
  } else return undefined;
  const z = normalQuantile((1 + policy.confidence) / 2);
  const zPower = normalQuantile(POWER);
  const halfWidth = (z * sd) / Math.sqrt(n);
  const level = `${Math.round(policy.confidence * 100)}%`;
  const cmp = policy.comparison;
  if (cmp.mode === 'non_inferiority') {
    if (halfWidth < cmp.margin) return undefined;
    const rowsNeeded = cmp.margin > 0 ? Math.ceil((((z + zPower) * sd) / cmp.margin) ** 2) : Infinity;
    return {
      code: 'policy_untestable',
      field: 'evaluation.comparison.margin',
      message:
        `non-inferiority margin ${cmp.margin} on ${n} evaluation rows: the interval of the ${pm} difference is about ±${f2(halfWidth)} at ${level}, ` +
        `so even a candidate as good as production is blocked more often than not; the smallest difference these rows can detect is ${f2(halfWidth)}. ` +
        (Number.isFinite(rowsNeeded)
          ? `About ${rowsNeeded} evaluation rows would let an equally good candidate pass 4 times in 5. `
          : 'A margin of 0 can never be shown. ') +
        `Assumed: ${assumed}.`,
      halfWidth,
      rowsNeeded,
      assumed,
    };
  }
  if (!cmp.requireSignificance) return undefined;
  const smallest = cmp.minImprovement + halfWidth;
  if (UNSCALED.has(pm) || smallest <= SUPERIORITY_WARN_ABOVE) return undefined;
  const target = 0.01;
  const rowsNeeded = Math.ceil((((z + zPower) * sd) / target) ** 2);
  return {
    code: 'policy_untestable',
    field: 'evaluation.comparison',
    message:
      `superiority on ${n} evaluation rows: the interval of the ${pm} difference is about ±${f2(halfWidth)} at ${level}, ` +
      `so only a candidate better by more than ${f2(smallest)} can pass (minImprovement ${cmp.minImprovement} plus the interval); ` +
      `about ${rowsNeeded} evaluation rows would show an improvement of ${target} above minImprovement 4 times in 5. Assumed: ${assumed}.`,
    halfWidth,
    rowsNeeded,
    assumed,
  };
}
