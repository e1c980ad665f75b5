import type { EvaluationPolicy } from '../contracts/evaluationPolicy';
import type { RunDocument } from '../contracts/runDocument';
import type { HoldoutBasis, PolicyPower } from '../evaluation/power';
import { policyPower } from '../evaluation/power';

type EvaluationSummary = {
  primaryMetric?: unknown;
  rows?: unknown;
  difference?: { lower?: unknown; upper?: unknown; confidence?: unknown };
};

const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/**
 * What a pipeline's evaluation policy can show on the data it will see, checked when a definition
 * is stored: a warning (never a refusal) when the holdout is too small for the comparison to pass.
 * The row count is `rows` when given, else the last evaluated run's; the spread of the difference
 * is that run's measured interval when it judged the same metric, else an assumption the warning
 * states. No rows known (a new pipeline, no `rows`): nothing to say.
 */
export async function policyWarnings(
  policy: EvaluationPolicy,
  pipeline: string,
  options: { rows?: number; runs?: { list(f: { pipeline: string; limit: number }): Promise<RunDocument[]> } },
): Promise<PolicyPower[]> {
  const recent = options.runs ? await options.runs.list({ pipeline, limit: 20 }) : [];
  const last = recent
    .map((r) => ({ id: r.id, ev: r.metrics?.evaluation as EvaluationSummary | undefined }))
    .find((r) => num(r.ev?.rows) !== undefined);
  const lastRows = num(last?.ev?.rows);
  const rows = options.rows ?? lastRows;
  if (rows === undefined) return [];
  const d = last?.ev?.difference;
  const lower = num(d?.lower);
  const upper = num(d?.upper);
  const confidence = num(d?.confidence);
  const basis: HoldoutBasis = {
    rows,
    rowsFrom: options.rows !== undefined ? 'as given' : `as in run ${last!.id}`,
    ...(last &&
    lastRows &&
    last.ev?.primaryMetric === policy.primaryMetric &&
    lower !== undefined &&
    upper !== undefined &&
    confidence !== undefined
      ? { measured: { lower, upper, confidence, rows: lastRows, from: `run ${last.id}` } }
      : {}),
  };
  const warning = policyPower(policy, basis);
  return warning ? [warning] : [];
}
