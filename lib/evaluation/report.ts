import { z } from 'zod';
import { NonRetriableError } from '../errors';
import type { ColumnarDataset } from '../training/dataset';
import { getColumn, selectRows } from '../training/dataset';
import { encodeClassTarget, encodeRegressionTarget } from '../training/features';
import type { ModelScores, Scorer } from '../scoring/scorer';
import { evaluationBootstrap } from './bootstrap';
import type { WeightedMetrics } from './resample';
import { classificationWeightedMetrics, regressionWeightedMetrics } from './resample';
import type { MetricFn } from '../metrics/metrics';
import type { MetricName } from '../contracts/evaluationPolicy';
import {
  calibrationBins,
  classificationMetricFns,
  classScores,
  confusionMatrix,
  argmaxRows,
  isRegressionMetric,
  regressionMetricFns,
} from '../metrics/metrics';
import type { Evidence, SliceResult } from './policy';
import type { EvaluationPolicy } from '../contracts/evaluationPolicy';
import { decide } from './policy';
import { evaluationPolicySchema } from '../contracts/evaluationPolicy';

const metricValues = z.record(z.string(), z.number().nullable());
const modelRef = z.object({ digest: z.string(), version: z.number().int().optional() });
/** Bootstrap percentile intervals of each absolute metric (added after reportVersion 1 shipped: optional). */
const intervalsSchema = z.object({
  confidence: z.number(),
  resamples: z.number().int(),
  seed: z.number().int(),
  metrics: z.record(z.string(), z.object({ lower: z.number().nullable(), upper: z.number().nullable() })),
});
export type MetricIntervals = z.infer<typeof intervalsSchema>;
const classificationDetail = z.object({
  confusionMatrix: z.array(z.array(z.number())),
  perClass: z.object({
    precision: z.array(z.number()),
    recall: z.array(z.number()),
    f1: z.array(z.number()),
    support: z.array(z.number()),
  }),
  calibration: z.object({
    bins: z.array(
      z.object({
        lower: z.number(),
        upper: z.number(),
        count: z.number(),
        meanPredicted: z.number(),
        observedRate: z.number(),
      }),
    ),
    expectedCalibrationError: z.number(),
  }),
});

/** The evaluation report stored in Blob next to the run: evidence, policy and verdict. */
export const evaluationReportSchema = z.object({
  reportVersion: z.literal(1),
  task: z.enum(['classification', 'regression']),
  target: z.string(),
  classes: z.array(z.string()).optional(),
  rows: z.number().int(),
  /** Evaluation rows left out because their label is missing or unknown to the candidate. */
  rowsDropped: z.number().int(),
  primaryMetric: z.string(),
  policy: evaluationPolicySchema,
  candidate: modelRef.extend({
    metrics: metricValues,
    intervals: intervalsSchema.optional(),
    detail: classificationDetail.optional(),
  }),
  champion: modelRef
    .extend({
      metrics: metricValues,
      intervals: intervalsSchema.optional(),
      /** The champion's metrics recorded when it was registered (the registry version's). */
      recorded: metricValues.optional(),
      detail: classificationDetail.optional(),
    })
    .nullable(),
  comparison: z
    .object({
      metric: z.string(),
      /** Paired bootstrap of candidate − champion (raw metric difference). */
      difference: z.object({
        estimate: z.number().nullable(),
        lower: z.number().nullable(),
        upper: z.number().nullable(),
        confidence: z.number(),
        resamples: z.number().int(),
        skipped: z.number().int(),
        seed: z.number().int(),
        standardError: z.number().nullable(),
      }),
    })
    .nullable(),
  slices: z.array(
    z.object({
      column: z.string(),
      value: z.string(),
      metric: z.string(),
      rows: z.number().int(),
      candidate: z.number().nullable(),
      champion: z.number().nullable(),
    }),
  ),
  verdict: z.object({
    passed: z.boolean(),
    reasons: z.array(
      z.object({
        check: z.string(),
        passed: z.boolean(),
        message: z.string(),
        metric: z.string().optional(),
        value: z.number().nullable().optional(),
        limit: z.number().optional(),
        slice: z.object({ column: z.string(), value: z.string(), rows: z.number().int() }).optional(),
      }),
    ),
  }),
});
export type EvaluationReport = z.infer<typeof evaluationReportSchema>;

/**
 * One side of the comparison, already scored: whoever trained it and however it was scored (the
 * TS predict of a legacy JSON, onnxruntime, a `score` command), only its scores count.
 */
export interface ScoredModel {
  digest: string;
  version?: number;
  task: 'classification' | 'regression';
  /** The column the model predicts. */
  target: string;
  /** Classification: the labels of the probability columns, in their order. */
  classes?: readonly string[];
  /** The model's scores of every row of the evaluation dataset, in its row order. */
  scores: ModelScores;
  /**
   * The champion only: its metrics as recorded when it was registered (the registry version's
   * `metrics`), what `championCollapse` compares today's value with.
   */
  recorded?: Readonly<Record<string, number | null>>;
}

export interface EvaluateInput {
  /** The evaluation rows: the candidate's holdout plus the pipeline's pinned golden set. */
  dataset: ColumnarDataset;
  candidate: ScoredModel;
  /** The production model; omitted for a pipeline's first model. */
  champion?: ScoredModel;
  policy: EvaluationPolicy;
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Every metric on all rows (each row weighing once), finite or null. */
function valuesOf(m: WeightedMetrics): Record<string, number | null> {
  const out = new Float64Array(m.names.length);
  m.evaluate(undefined, out);
  return Object.fromEntries(m.names.map((k, j) => [k, finiteOrNull(out[j]!)]));
}

/**
 * The kept rows of a model's class probabilities, re-ordered into `to`'s class order by label
 * (absent classes get 0): two models may list the same classes in different orders.
 */
function alignProba(
  P: Float64Array,
  keep: Uint32Array,
  from: readonly string[],
  to: readonly string[],
): Float64Array {
  const K = to.length;
  const F = from.length;
  const out = new Float64Array(keep.length * K);
  const map = to.map((c) => from.indexOf(c));
  for (let j = 0; j < keep.length; j++) {
    const i = keep[j]!;
    for (let k = 0; k < K; k++) out[j * K + k] = map[k]! >= 0 ? P[i * F + map[k]!]! : 0;
  }
  return out;
}

/** Checks that a side's scores cover every evaluation row, and says which side is short. */
function checkScores(side: string, m: ScoredModel, rows: number): void {
  const width = m.classes?.length ?? 1;
  const got = m.classes ? m.scores.probabilities : m.scores.values;
  if (!got || got.length !== rows * width) {
    throw new NonRetriableError(
      'predictions_invalid',
      `the ${side} model gave ${got ? got.length / width : 'no'} ${m.classes ? 'probability rows' : 'values'} for ${rows} evaluation rows`,
    );
  }
}

/**
 * Scores the candidate and the champion on the same rows, bootstraps the difference of the primary
 * metric, computes per-slice metrics, and decides the verdict. Pure: the caller stores the report.
 */
export function evaluateCandidate(input: EvaluateInput): EvaluationReport {
  const { candidate, champion, policy } = input;
  const target = candidate.target;
  const task = candidate.task;
  const classes = task === 'classification' ? candidate.classes : undefined;
  if (task === 'classification' && !classes) {
    throw new NonRetriableError('invalid_model', 'the candidate is a classifier that names no classes');
  }
  if (champion && champion.task !== task) {
    throw new NonRetriableError(
      'task_mismatch',
      'the candidate and the production model solve different tasks',
    );
  }
  if (champion && champion.target !== target) {
    throw new NonRetriableError(
      'target_mismatch',
      `the candidate predicts "${target}" but the production model predicts "${champion.target}"`,
    );
  }
  checkScores('candidate', candidate, input.dataset.rowCount);
  if (champion) checkScores('production', champion, input.dataset.rowCount);
  if (isRegressionMetric(policy.primaryMetric) !== (task === 'regression')) {
    throw new NonRetriableError(
      'metric_task_mismatch',
      `primary metric ${policy.primaryMetric} does not fit a ${task} model`,
    );
  }

  // Keep rows with a usable label.
  const all = input.dataset;
  let keep: Uint32Array;
  let yClassAll: Int32Array | undefined;
  let yValueAll: Float64Array | undefined;
  if (classes) {
    yClassAll = encodeClassTarget(all, target, classes);
    keep = Uint32Array.from({ length: all.rowCount }, (_, i) => i).filter((i) => yClassAll![i]! >= 0);
  } else {
    yValueAll = encodeRegressionTarget(all, target);
    keep = Uint32Array.from({ length: all.rowCount }, (_, i) => i).filter(
      (i) => !Number.isNaN(yValueAll![i]!),
    );
  }
  const ds = keep.length === all.rowCount ? all : selectRows(all, keep);
  const n = ds.rowCount;
  const K = classes?.length ?? 0;

  type Scored = {
    metrics: WeightedMetrics;
    detail?: z.infer<typeof classificationDetail>;
    sliceFns: (rows: Uint32Array) => Record<string, MetricFn>;
  };
  let score: (m: ScoredModel) => Scored;
  if (classes) {
    const y = Int32Array.from(keep, (i) => yClassAll![i]!);
    score = (m) => {
      const P = alignProba(m.scores.probabilities!, keep, m.classes!, classes);
      const cm = confusionMatrix(y, argmaxRows(P, n, K), K);
      return {
        metrics: classificationWeightedMetrics(y, P, K),
        detail: { confusionMatrix: cm, perClass: classScores(cm), calibration: calibrationBins(y, P, K) },
        sliceFns: (rows) => {
          const Ps = new Float64Array(rows.length * K);
          rows.forEach((r, j) => Ps.set(P.subarray(r * K, r * K + K), j * K));
          return classificationMetricFns(
            Int32Array.from(rows, (r) => y[r]!),
            Ps,
            K,
          );
        },
      };
    };
  } else {
    const y = Float64Array.from(keep, (i) => yValueAll![i]!);
    score = (m) => {
      const all = m.scores.values!;
      const yhat = keep.length === all.length ? all : Float64Array.from(keep, (i) => all[i]!);
      return {
        metrics: regressionWeightedMetrics(y, yhat),
        sliceFns: (rows) =>
          regressionMetricFns(
            Float64Array.from(rows, (r) => y[r]!),
            Float64Array.from(rows, (r) => yhat[r]!),
          ),
      };
    };
  }

  const cand = score(candidate);
  const champ = champion ? score(champion) : undefined;
  const primary = policy.primaryMetric;
  const candidateMetrics = valuesOf(cand.metrics);
  const championMetrics = champ ? valuesOf(champ.metrics) : undefined;

  // An interval for every absolute number on the report, both sides on the same resampled rows,
  // and the paired bootstrap of candidate − champion on the primary metric: one set of draws.
  const intervalOptions = {
    resamples: policy.bootstrap.resamples,
    confidence: policy.confidence,
    seed: policy.bootstrap.seed,
  };
  // A metric that is not finite is null on the report, and its difference NaN (shown as null too).
  const onAll = (values: Record<string, number | null>): number => values[primary] ?? NaN;
  const boot = evaluationBootstrap(n, champ ? [cand.metrics, champ.metrics] : [cand.metrics], {
    ...intervalOptions,
    ...(champ && n > 0
      ? { paired: { metric: primary, estimate: onAll(candidateMetrics) - onAll(championMetrics!) } }
      : {}),
  });
  const comparison = boot.comparison;
  const [candIntervals, champIntervals] = boot.intervals.map((metrics) => ({ ...intervalOptions, metrics }));

  const slices: SliceResult[] = [];
  const missingSliceColumns: string[] = [];
  for (const guard of policy.sliceGuards) {
    const metric: MetricName = guard.metric ?? primary;
    if (!ds.columns.some((c) => c.name === guard.column)) {
      missingSliceColumns.push(guard.column);
      continue;
    }
    const col = getColumn(ds, guard.column);
    const groups = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const key =
        col.type === 'categorical'
          ? col.codes[i]! < 0
            ? '(missing)'
            : col.levels[col.codes[i]!]!
          : Number.isNaN(col.values[i]!)
            ? '(missing)'
            : String(col.values[i]!);
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(i);
    }
    for (const [value, idx] of [...groups.entries()].sort((a, b) =>
      a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
    )) {
      const rows = Uint32Array.from(idx);
      const c = cand.sliceFns(rows)[metric]!();
      const p = champ ? champ.sliceFns(rows)[metric]!() : NaN;
      slices.push({
        column: guard.column,
        value,
        metric,
        rows: rows.length,
        candidate: finiteOrNull(c),
        champion: finiteOrNull(p),
      });
    }
  }

  const evidence: Evidence = {
    rows: n,
    candidate: candidateMetrics,
    ...(championMetrics ? { champion: championMetrics } : {}),
    ...(comparison ? { comparison } : {}),
    ...(champIntervals ? { championInterval: champIntervals.metrics[primary] } : {}),
    ...(champion?.recorded ? { championRecorded: recordedValue(champion.recorded, primary) } : {}),
    slices,
    missingSliceColumns,
  };
  const verdict = decide(policy, evidence);
  const ref = (x: { digest: string; version?: number }) => ({
    digest: x.digest,
    ...(x.version !== undefined ? { version: x.version } : {}),
  });
  return {
    reportVersion: 1,
    task,
    target,
    ...(classes ? { classes: [...classes] } : {}),
    rows: n,
    rowsDropped: all.rowCount - n,
    primaryMetric: primary,
    policy,
    candidate: {
      ...ref(candidate),
      metrics: candidateMetrics,
      intervals: candIntervals!,
      ...(cand.detail ? { detail: cand.detail } : {}),
    },
    champion:
      champion && champ
        ? {
            ...ref(champion),
            metrics: championMetrics!,
            ...(champIntervals ? { intervals: champIntervals } : {}),
            ...(champion.recorded ? { recorded: { ...champion.recorded } } : {}),
            ...(champ.detail ? { detail: champ.detail } : {}),
          }
        : null,
    comparison: comparison
      ? {
          metric: primary,
          difference: {
            estimate: finiteOrNull(comparison.estimate),
            lower: finiteOrNull(comparison.lower),
            upper: finiteOrNull(comparison.upper),
            confidence: comparison.confidence,
            resamples: comparison.resamples,
            skipped: comparison.skipped,
            seed: comparison.seed,
            standardError: finiteOrNull(comparison.standardError),
          },
        }
      : null,
    slices,
    verdict,
  };
}

function recordedValue(recorded: Readonly<Record<string, number | null>>, metric: string): number | null {
  const v = recorded[metric];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Scores the evaluation rows with a scorer: one side of {@link evaluateCandidate}. */
export async function scoreForEvaluation(
  scorer: Scorer,
  dataset: ColumnarDataset,
  version?: number,
): Promise<ScoredModel> {
  return {
    digest: scorer.digest,
    ...(version !== undefined ? { version } : {}),
    task: scorer.task,
    target: scorer.target,
    ...(scorer.classes ? { classes: scorer.classes } : {}),
    scores: await scorer.scoreDataset(dataset),
  };
}
