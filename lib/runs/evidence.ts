import type { EvidenceInput } from '../contracts/approvalRecord';
import type { ValidationReport } from '../data/checking/report';
import { driftPhrase } from '../data/checking/report';
import type { SchemaChangeKind } from '../data/checking/schemaDiff';
import type { EvaluationReport } from '../evaluation/report';
import type { MetricName } from '../contracts/evaluationPolicy';
import { higherIsBetter } from '../metrics/metrics';
import { metricNames } from '../contracts/evaluationPolicy';
import type { RunDocument } from '../contracts/runDocument';

type EvidenceSchemaChange = NonNullable<EvidenceInput['schemaDiff']>[number]['change'];

const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const finite = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);
const isMetric = (m: string): m is MetricName => (metricNames as readonly string[]).includes(m);

const schemaChangeKinds: Record<SchemaChangeKind, EvidenceSchemaChange> = {
  columnAdded: 'added',
  columnRemoved: 'removed',
  typeChanged: 'type_changed',
  nullableChanged: 'nullable_changed',
  rangeChanged: 'range_changed',
  valuesChanged: 'values_changed',
  patternChanged: 'pattern_changed',
  uniqueChanged: 'unique_changed',
  targetChanged: 'target_changed',
  taskChanged: 'task_changed',
};

/** An interval as a pair, when both ends are numbers. */
const pair = (i: { lower: number | null; upper: number | null } | undefined): [number, number] | undefined =>
  i && finite(i.lower) && finite(i.upper) ? [i.lower, i.upper] : undefined;

const show = (v: unknown) => cut(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''), 120);

/**
 * The evidence reviewers see on the approval page, summarised from the full validation and
 * evaluation reports (which stay in Blob and are linked). Bounded to the approval record's limits.
 */
export function buildEvidence(input: {
  run: RunDocument;
  validation?: ValidationReport;
  evaluation: EvaluationReport;
  reports: Record<string, string>;
}): EvidenceInput {
  const { evaluation: ev, validation } = input;
  const champion = ev.champion;
  const diff = ev.comparison?.difference;
  const metrics = Object.entries(ev.candidate.metrics)
    .filter((entry): entry is [string, number] => finite(entry[1]))
    .slice(0, 30)
    .map(([name, value]) => {
      const production = champion?.metrics[name];
      const primary = name === ev.primaryMetric;
      const candidateCi = pair(ev.candidate.intervals?.metrics[name]);
      const productionCi = pair(champion?.intervals?.metrics[name]);
      const level = ev.candidate.intervals?.confidence;
      return {
        name,
        candidate: value,
        production: finite(production) ? production : null,
        ci:
          primary && diff && finite(diff.lower) && finite(diff.upper)
            ? ([diff.lower, diff.upper] as [number, number])
            : null,
        ...(primary && diff ? { ciLevel: diff.confidence } : {}),
        ...(candidateCi ? { candidateCi } : {}),
        ...(productionCi ? { productionCi } : {}),
        ...((candidateCi || productionCi) && level && level > 0 && level < 1
          ? { absoluteCiLevel: level }
          : {}),
        higherIsBetter: isMetric(name) ? higherIsBetter(name) : true,
      };
    });

  const sliceColumn = ev.slices[0]?.column;
  const slices = sliceColumn
    ? {
        column: cut(sliceColumn, 64),
        metric: cut(ev.slices[0]!.metric, 64),
        rows: ev.slices
          .filter((s) => s.column === sliceColumn)
          .slice(0, 40)
          .map((s) => {
            const failed = ev.verdict.reasons.some(
              (r) => !r.passed && r.slice?.column === s.column && r.slice.value === s.value,
            );
            return {
              value: cut(s.value, 64),
              count: s.rows,
              candidate: finite(s.candidate) ? s.candidate : null,
              production: finite(s.champion) ? s.champion : null,
              ok: !failed,
            };
          }),
      }
    : undefined;

  const evidence: EvidenceInput = {
    production: champion?.version ? { modelVersion: champion.version, modelDigest: champion.digest } : null,
    primaryMetric: cut(ev.primaryMetric, 64),
    verdict: {
      passed: ev.verdict.passed,
      reasons: ev.verdict.reasons.slice(0, 20).map((r) => cut(r.message, 300)),
    },
    metrics,
    ...(slices ? { slices } : {}),
    timeline: input.run.steps.map((s) => ({
      step: s.name,
      status: s.status,
      ...(s.startedAt ? { startedAt: s.startedAt } : {}),
      ...(s.endedAt ? { endedAt: s.endedAt } : {}),
    })),
    reports: Object.fromEntries(Object.entries(input.reports).map(([k, v]) => [cut(k, 64), cut(v, 600)])),
  };

  if (validation) {
    evidence.validation = {
      passed: validation.summary.status !== 'failed',
      ...(validation.summary.status === 'warning' ? { warning: cut(validation.summary.headline, 300) } : {}),
      rows: validation.dataset.rows,
      checks: validation.columns.length,
      issues: validation.violations.slice(0, 20).map((v) => ({
        severity: v.severity,
        code: cut(v.column ? `${v.rule}:${v.column}` : v.rule, 64),
        message: cut(v.message, 300),
      })),
    };
    const drift = validation.drift;
    // Drifted columns first, so the 40 rows kept always show every column the header names.
    evidence.drift =
      'columns' in drift
        ? {
            drifted: drift.status === 'drifted',
            summary: cut(
              drift.driftedColumns.length > 0
                ? `${driftPhrase(drift.driftedColumns, drift.testedColumns)} (dataset verdict: ${drift.status}; ${drift.rule})`
                : `${drift.status}: ${drift.rule}`,
              300,
            ),
            columns: drift.driftedColumns.slice(0, 20).map((c) => cut(c, 64)),
            driftedCount: drift.driftedColumns.length,
            tested: drift.testedColumns,
            features: drift.columns
              .flatMap((c) =>
                Object.entries(c.metrics).map(([statistic, m]) => ({
                  feature: cut(c.column, 64),
                  statistic: cut(statistic, 32),
                  value: m!.value,
                  threshold: m!.threshold,
                  drifted: m!.drifted,
                })),
              )
              .filter((f) => Number.isFinite(f.value))
              .sort((a, b) => Number(b.drifted) - Number(a.drifted))
              .slice(0, 40),
          }
        : { drifted: false, summary: cut(`drift not checked: ${drift.reason}`, 300), features: [] };
    evidence.schemaDiff = (validation.schemaDiff?.changes ?? []).slice(0, 40).map((c) => ({
      change: schemaChangeKinds[c.kind] ?? 'other',
      breaking: c.breaking,
      column: cut(c.column ?? '(dataset)', 64),
      ...(c.before !== undefined ? { from: show(c.before) } : {}),
      ...(c.after !== undefined ? { to: show(c.after) } : {}),
    }));
  }
  return evidence;
}
