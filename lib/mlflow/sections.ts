import type { RunDocument, StepName } from '../contracts/runDocument';
import { readStepOutputs } from '../contracts/run';
import type { TrainingSpec } from '../contracts/trainingSpec';
import { terminalRunStatuses } from '../runs/document';
import type { DatasetInput, RunStatus } from './client';
import type { KeyValue, LogBatch, Metric } from './limits';
import { cutBytes, MAX_DATASET_DIGEST_CHARS, MAX_DATASET_NAME_CHARS, MAX_TAG_VALUE_BYTES } from './limits';

/**
 * What of a Sluice run is logged to its MLflow run, as named sections: each is logged once, when
 * the run document has its data, and remembered in `mlflow.done` (docs/mlflow.md lists every key).
 * Pure and deterministic: timestamps come from the run document, never the clock, so a section
 * retried after a lost acknowledgement sends the same metrics (which MLflow's SQL store keeps once).
 */
export interface Section {
  name: string;
  batch?: LogBatch;
  inputs?: DatasetInput[];
  /** The final status update (the `end` section only). */
  end?: { status: RunStatus; end_time: number };
  /** The deployed version, for the MLflow model registry (the `deploy` section only). */
  register?: RegisterVersion;
}

/** A deployed Sluice version as an MLflow model version. */
export interface RegisterVersion {
  /** The registered model's name: Sluice's model name. */
  name: string;
  /** Sluice's version number (the MLflow registry numbers its own versions). */
  sluiceVersion: number;
  /** Where the model is: the Sluice model artifact's URI. */
  source: string;
  runLink: string;
  tags: KeyValue[];
}

export interface RunContext {
  run: RunDocument;
  /** The pinned training spec of the run's pipeline version (absent: the version is gone). */
  training?: TrainingSpec;
  publicBaseUrl: string;
}

const ms = (iso: string | undefined, fallback: string) => Date.parse(iso ?? fallback);
const str = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** Flattens a nested object into `prefix.key.sub` → string params (arrays joined as JSON). */
export function flatten(prefix: string, value: unknown, out: KeyValue[] = []): KeyValue[] {
  if (value === undefined || value === null) return out;
  if (typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a.localeCompare(b),
    ))
      flatten(prefix ? `${prefix}.${k}` : k, v, out);
    return out;
  }
  out.push({ key: prefix, value: str(value) });
  return out;
}

/** MLflow's run status for a Sluice run status (and stop reason). */
export function mlflowStatusOf(run: Pick<RunDocument, 'status' | 'stopReason'>): RunStatus {
  switch (run.status) {
    case 'succeeded':
      return 'FINISHED';
    case 'canceled':
      return 'KILLED';
    case 'failed':
      return 'FAILED';
    case 'stopped':
      // A gate that said no is a normal ending; a job that failed or a cancel is not.
      if (run.stopReason === 'canceled' || run.stopReason === 'approval_withdrawn') return 'KILLED';
      if (
        run.stopReason === 'training_failed' ||
        run.stopReason?.startsWith('orchestration_') ||
        run.stopReason === 'error'
      )
        return 'FAILED';
      return 'FINISHED';
    default:
      return 'RUNNING';
  }
}

export const runUrl = (publicBaseUrl: string, runId: string) =>
  `${publicBaseUrl}/api/runs/${encodeURIComponent(runId)}`;

/** The tags `runs/create` gets: `sluice.run_id` is how a retried create finds the run it made. */
export function createTags(c: RunContext): KeyValue[] {
  return [
    { key: 'sluice.run_id', value: c.run.id },
    { key: 'sluice.run_url', value: runUrl(c.publicBaseUrl, c.run.id) },
    { key: 'sluice.pipeline', value: c.run.pipeline },
    { key: 'mlflow.source.name', value: 'sluice' },
    { key: 'mlflow.source.type', value: 'JOB' },
  ];
}

function ended(run: RunDocument, step: StepName): { at: number } | undefined {
  const s = run.steps.find((x) => x.name === step);
  if (!s?.endedAt || !['succeeded', 'failed'].includes(s.status)) return undefined;
  return { at: Date.parse(s.endedAt) };
}

const metric = (key: string, value: unknown, timestamp: number, step = 0): Metric[] =>
  typeof value === 'number' && Number.isFinite(value) ? [{ key, value, timestamp, step }] : [];

/** Every section the run document has the data for, in logging order; `end` only once the run ended. */
export function availableSections(c: RunContext): Section[] {
  const { run } = c;
  const out: Section[] = [];

  // Params: write-once in MLflow, and pinned in Sluice (the version's spec never changes).
  const spec = c.training;
  const params: KeyValue[] = [
    { key: 'pipeline', value: run.pipeline },
    { key: 'pipeline_version', value: String(run.pipelineVersion) },
  ];
  if (spec) {
    const { hyperparameters, ...rest } = spec as TrainingSpec & { hyperparameters?: unknown };
    params.push({ key: 'backend', value: spec.backend });
    flatten('training', rest, params);
    flatten('hp', hyperparameters, params);
  }
  out.push({
    name: 'params',
    batch: {
      params,
      metrics: [],
      tags: [
        { key: 'sluice.pipeline_version', value: String(run.pipelineVersion) },
        { key: 'sluice.trigger', value: `${run.trigger.kind}:${run.trigger.by}` },
      ],
    },
  });

  const ingest = readStepOutputs(run.steps, 'ingest');
  const ingestEnd = ended(run, 'ingest');
  if (ingest && ingestEnd) {
    const source = ingest.rawUri;
    out.push({
      name: 'ingest',
      inputs: [
        {
          dataset: {
            name: run.pipeline.slice(0, MAX_DATASET_NAME_CHARS),
            // MLflow keeps at most 36 characters of a digest: the SHA-256's first 36 hex digits
            // (144 bits); the whole SHA-256 is the input tag below and the run tag.
            digest: ingest.sha256.slice(0, MAX_DATASET_DIGEST_CHARS),
            source_type: /^https?:/.test(source) ? 'http' : 'sluice_blob',
            source: JSON.stringify(/^https?:/.test(source) ? { url: source } : { uri: source }),
            profile: JSON.stringify({
              num_rows: ingest.rows,
              num_columns: ingest.columns,
              bytes: ingest.bytes,
            }),
          },
          tags: [
            { key: 'mlflow.data.context', value: 'training' },
            { key: 'sluice.sha256', value: ingest.sha256 },
          ],
        },
      ],
      batch: {
        params: [],
        tags: [
          { key: 'sluice.dataset_sha256', value: ingest.sha256 },
          { key: 'sluice.dataset_uri', value: source },
        ],
        metrics: [
          ...metric('dataset.rows', ingest.rows, ingestEnd.at),
          ...metric('dataset.columns', ingest.columns, ingestEnd.at),
        ],
      },
    });
  }

  const validate = readStepOutputs(run.steps, 'validate');
  const validateEnd = ended(run, 'validate');
  if (validate && validateEnd) {
    const at = validateEnd.at;
    out.push({
      name: 'validate',
      batch: {
        params: [],
        tags: [
          { key: 'sluice.validation.status', value: validate.status },
          { key: 'sluice.validation.drift', value: validate.drift },
          { key: 'sluice.validation.headline', value: validate.headline },
          { key: 'sluice.validation_report', value: validate.reportUri },
        ],
        metrics: [
          ...metric('validation.errors', validate.errors, at),
          ...metric('validation.warnings', validate.warnings, at),
          ...metric('validation.drifted_columns', validate.driftedColumns.length, at),
        ],
      },
    });
  }

  const train = readStepOutputs(run.steps, 'train');
  const trainEnd = ended(run, 'train');
  if (train && trainEnd) {
    const at = trainEnd.at;
    const metrics: Metric[] = [...metric('training.iterations', train.iterations, at)];
    const byPart = (run.metrics.training ?? {}) as Record<string, Record<string, unknown> | undefined>;
    for (const [part, values] of Object.entries(byPart).sort(([a], [b]) => a.localeCompare(b)))
      for (const [name, v] of Object.entries(values ?? {}).sort(([a], [b]) => a.localeCompare(b)))
        metrics.push(...metric(`${part}.${name}`, v, at));
    const tags: KeyValue[] = [
      ...('jobId' in train
        ? [{ key: 'sluice.training_job', value: `${train.backend}:${train.jobId}` }]
        : [
            // A promoted run: the model came from MLflow (its own run, when MLflow said which).
            { key: 'sluice.imported_from', value: train.mlflowUri },
            ...(train.mlflowRunId ? [{ key: 'sluice.imported_run_id', value: train.mlflowRunId }] : []),
          ]),
      ...(train.algorithm ? [{ key: 'sluice.algorithm', value: train.algorithm }] : []),
      ...(train.modelDigest ? [{ key: 'sluice.model_sha256', value: train.modelDigest }] : []),
      ...(train.modelUri ? [{ key: 'sluice.model_uri', value: train.modelUri }] : []),
      ...(train.converged !== undefined ? [{ key: 'sluice.converged', value: String(train.converged) }] : []),
    ];
    out.push({ name: 'train', batch: { params: [], tags, metrics } });
  }

  const evaluation = run.metrics.evaluation as
    | {
        primaryMetric?: string;
        candidate?: number | null;
        champion?: number | null;
        championVersion?: number;
        candidateInterval?: { lower: number | null; upper: number | null };
        championInterval?: { lower: number | null; upper: number | null };
        difference?: {
          estimate: number | null;
          lower: number | null;
          upper: number | null;
          confidence: number;
        };
        passed?: boolean;
        rows?: number;
      }
    | undefined;
  const evaluateEnd = ended(run, 'evaluate');
  if (evaluation?.primaryMetric && evaluateEnd) {
    const at = evaluateEnd.at;
    const m = evaluation.primaryMetric;
    const d = evaluation.difference;
    const report = readStepOutputs(run.steps, 'evaluate');
    out.push({
      name: 'evaluate',
      batch: {
        params: [],
        tags: [
          { key: 'sluice.evaluation.primary_metric', value: m },
          { key: 'sluice.evaluation.passed', value: String(Boolean(evaluation.passed)) },
          ...(evaluation.championVersion
            ? [{ key: 'sluice.champion_version', value: String(evaluation.championVersion) }]
            : []),
          ...(report?.reportUri ? [{ key: 'sluice.evaluation_report', value: report.reportUri }] : []),
          ...(report?.modelVersion
            ? [{ key: 'sluice.model_version', value: String(report.modelVersion) }]
            : []),
        ],
        metrics: [
          ...metric(`eval.candidate.${m}`, evaluation.candidate, at),
          ...metric(`eval.candidate.${m}.ci_low`, evaluation.candidateInterval?.lower, at),
          ...metric(`eval.candidate.${m}.ci_high`, evaluation.candidateInterval?.upper, at),
          ...metric(`eval.champion.${m}`, evaluation.champion, at),
          ...metric(`eval.champion.${m}.ci_low`, evaluation.championInterval?.lower, at),
          ...metric(`eval.champion.${m}.ci_high`, evaluation.championInterval?.upper, at),
          ...metric(`eval.diff.${m}`, d?.estimate, at),
          ...metric(`eval.diff.${m}.ci_low`, d?.lower, at),
          ...metric(`eval.diff.${m}.ci_high`, d?.upper, at),
          ...metric('eval.confidence', d?.confidence, at),
          ...metric('eval.rows', evaluation.rows, at),
        ],
      },
    });
  }

  const approve = readStepOutputs(run.steps, 'approve');
  if (approve && ended(run, 'approve')) {
    out.push({
      name: 'approve',
      batch: {
        params: [],
        metrics: [],
        tags: [
          { key: 'sluice.approval_id', value: approve.approvalId },
          { key: 'sluice.approval.outcome', value: approve.outcome },
          { key: 'sluice.approved_by', value: approve.approvedBy.join(', ') },
          ...(approve.rejectedBy.length
            ? [{ key: 'sluice.rejected_by', value: approve.rejectedBy.join(', ') }]
            : []),
        ],
      },
    });
  }

  const deploy = readStepOutputs(run.steps, 'deploy');
  if (deploy && ended(run, 'deploy')) {
    const digest = train?.modelDigest;
    out.push({
      register: {
        name: deploy.modelName,
        sluiceVersion: deploy.version,
        source: train?.modelUri ?? `sluice://models/${deploy.modelName}/versions/${deploy.version}`,
        runLink: runUrl(c.publicBaseUrl, run.id),
        tags: [
          { key: 'sluice.version', value: String(deploy.version) },
          { key: 'sluice.run_id', value: run.id },
          ...(digest ? [{ key: 'sluice.model_sha256', value: digest }] : []),
          ...(approve ? [{ key: 'sluice.approval_id', value: approve.approvalId }] : []),
          ...(approve
            ? [
                {
                  key: 'sluice.approved_by',
                  value: cutBytes(approve.approvedBy.join(', '), MAX_TAG_VALUE_BYTES),
                },
              ]
            : []),
        ],
      },
      name: 'deploy',
      batch: {
        params: [],
        metrics: [],
        tags: [
          { key: 'sluice.deployed_version', value: `${deploy.modelName}/${deploy.version}` },
          { key: 'sluice.deployed_at', value: deploy.deployedAt },
          ...(deploy.previous ? [{ key: 'sluice.previous_version', value: String(deploy.previous) }] : []),
        ],
      },
    });
  }

  if (terminalRunStatuses.has(run.status)) {
    out.push({
      name: 'end',
      batch: {
        params: [],
        metrics: [],
        tags: [
          { key: 'sluice.status', value: run.status },
          ...(run.stopReason ? [{ key: 'sluice.stop_reason', value: run.stopReason }] : []),
          ...(run.reason ? [{ key: 'sluice.stop_detail', value: run.reason }] : []),
        ],
      },
      end: { status: mlflowStatusOf(run), end_time: ms(run.endedAt, run.updatedAt) },
    });
  }
  return out;
}

/** One point of a training job's curve (the worker's metrics.json `history`). */
export interface CurvePoint {
  iteration: number;
  loss?: number | null;
  validationLoss?: number | null;
  at: string;
}

/**
 * The job whose training curve the run's MLflow run should carry: its train step ended with a job
 * (a promoted run imports a model and has none).
 */
export function curveJobOf(run: RunDocument): string | undefined {
  const train = readStepOutputs(run.steps, 'train');
  return train && 'jobId' in train && ended(run, 'train') ? train.jobId : undefined;
}

/**
 * A training curve as MLflow metrics with steps: `training.loss` and `training.validation_loss` at
 * step = iteration, timestamped when the job recorded the point (so a retry sends the same values).
 * Points without a finite value, a valid time or a whole non-negative iteration are left out.
 */
export function curveMetrics(history: readonly CurvePoint[]): Metric[] {
  const out: Metric[] = [];
  for (const p of history) {
    const at = Date.parse(p.at);
    if (!Number.isInteger(p.iteration) || p.iteration < 0 || !Number.isFinite(at)) continue;
    out.push(...metric('training.loss', p.loss, at, p.iteration));
    out.push(...metric('training.validation_loss', p.validationLoss, at, p.iteration));
  }
  return out;
}
