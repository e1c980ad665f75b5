#!/usr/bin/env node
/**
 * `sluice`: a small client of the Sluice HTTP API. Every command is one or a few HTTP calls, so
 * what the CLI can do the API can do. Settings: --url / SLUICE_URL (default http://localhost:7071),
 * --key / SLUICE_KEY (function key, sent as x-functions-key).
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parseErrorMessage } from './args';
import type { ApprovalLink } from './approvalLinks';
import { pipelinesAsCode } from './pipelinesAsCode';
import { AUDIT_COMMAND, AuditUsageError, auditCommand } from './audit';
import type { JobTestArgs } from './jobTest';
import { PROMOTE_COMMAND, promoteRequest } from './promote';
import { DEPLOY_COMMAND, DeployUsageError, deployRequest, describeOverride } from './deploy';
import type { StopReason } from '../lib/contracts/runDocument';

/**
 * `sluice run --wait`'s exit code per outcome. Stable: CI steps gate on these numbers, so a code is
 * never reused for another outcome; a new stop reason gets a new number.
 */
export const RUN_EXIT_CODES = {
  succeeded: 0,
  error: 1,
  usage: 2,
  validation_failed: 10,
  evaluation_failed: 11,
  champion_collapsed: 12,
  approval_rejected: 13,
  approval_timed_out: 14,
  approval_withdrawn: 15,
  training_failed: 16,
  superseded: 17,
  duplicate_execution: 18,
  stopped_other: 19,
  failed: 20,
  canceled: 21,
  // Past 21 because 10–19 were full: a rollout that rolled itself back is not "another reason".
  rollout_rolled_back: 22,
  rollout_aborted: 23,
} as const;

/**
 * The stop reasons that share a code on purpose (docs/delivery.md, "Exit codes"): `canceled` is the
 * canceled outcome whatever the status says, and the reasons only reconciliation or an internal error
 * give have nothing a CI step could act on apart. Every other stop reason has a code of its own.
 */
export const STOP_REASONS_SHARING_A_CODE = {
  canceled: 'canceled',
  error: 'stopped_other',
  orchestration_terminated: 'stopped_other',
  orchestration_failed: 'stopped_other',
  orchestration_ended: 'stopped_other',
  orchestration_missing: 'stopped_other',
} as const satisfies Partial<Record<StopReason, keyof typeof RUN_EXIT_CODES>>;

const RUN_EXIT_MEANINGS: Record<keyof typeof RUN_EXIT_CODES, string> = {
  succeeded: 'the run succeeded',
  error: 'the CLI could not follow the run (Sluice unreachable, an HTTP error)',
  usage: 'wrong command line',
  validation_failed: 'stopped: the data failed validation',
  evaluation_failed: 'stopped: the candidate did not pass the evaluation policy',
  champion_collapsed: 'stopped: the production model collapsed on new labels',
  approval_rejected: 'stopped: a reviewer rejected it',
  approval_timed_out: 'stopped: nobody decided before the approval timeout',
  approval_withdrawn: 'stopped: the approval was withdrawn',
  training_failed: 'stopped: training failed',
  superseded: 'stopped: production moved or another run holds the approval slot',
  duplicate_execution: 'stopped: a duplicate execution of a run that already has one',
  stopped_other: 'stopped for another reason (error, orchestration_* from reconciliation, a newer one)',
  failed: 'the run failed',
  canceled: 'the run was canceled',
  rollout_rolled_back:
    'stopped: the progressive rollout rolled back (a guard tripped, or a step passed its deadline)',
  rollout_aborted: 'stopped: the progressive rollout was aborted',
};

/** Keys of RUN_EXIT_CODES that name an outcome, not a stop reason (a server reason never maps to them). */
const NOT_STOP_REASONS = new Set<string>([
  'succeeded',
  'error',
  'usage',
  'stopped_other',
  'failed',
  'canceled',
]);

/** The exit code of a finished run: by status, and a stopped run by its stop reason. */
export function runExitCode(run: Pick<RunView, 'status' | 'stopReason'>): number {
  if (run.status === 'succeeded') return RUN_EXIT_CODES.succeeded;
  if (run.status === 'canceled') return RUN_EXIT_CODES.canceled;
  if (run.status === 'failed') return RUN_EXIT_CODES.failed;
  if (run.status === 'stopped') {
    const reason = run.stopReason;
    if (reason && Object.hasOwn(STOP_REASONS_SHARING_A_CODE, reason))
      return RUN_EXIT_CODES[STOP_REASONS_SHARING_A_CODE[reason as keyof typeof STOP_REASONS_SHARING_A_CODE]];
    const r = reason as keyof typeof RUN_EXIT_CODES | undefined;
    if (r && Object.hasOwn(RUN_EXIT_CODES, r) && !NOT_STOP_REASONS.has(r)) return RUN_EXIT_CODES[r];
    return RUN_EXIT_CODES.stopped_other;
  }
  return RUN_EXIT_CODES.error; // not a finished run: watchRun only returns finished ones
}

function runExitCodeTable(): string {
  return (Object.keys(RUN_EXIT_CODES) as (keyof typeof RUN_EXIT_CODES)[])
    .map((k) => `  ${String(RUN_EXIT_CODES[k]).padStart(2)}  ${RUN_EXIT_MEANINGS[k]}`)
    .join('\n');
}

const USAGE = `Usage: sluice <command> [options]

Commands:
  pipelines validate DIR          check a folder of pipeline definitions (JSON/YAML) offline
  pipelines plan DIR [--detailed-exitcode]
                                  show what applying DIR would change on the server, per field
  pipelines apply DIR|FILE        create or update the pipelines of DIR (or one JSON file)
  pipelines list                  list pipelines
  pipelines show NAME             show a pipeline definition
  run PIPELINE [--data FILE | --blob CONTAINER/PATH] [--wait]
                                  start a run on a CSV / JSON Lines / Parquet file or a blob; --wait shows the steps live
                                  and exits with the run's outcome (sluice run --help lists the codes)
  promote PIPELINE --mlflow URI [--data FILE | --blob CONTAINER/PATH] [--wait]
                                  put a model trained elsewhere (MLflow) through the pipeline's gate
  deploy MODEL --version N --override --reason "…"
                                  emergency override: deploy without the quorum (Sluice.BreakGlass / master key)
  datasets upload FILE [--name N] put a CSV / JSON Lines / Parquet file in the datasets container (again: replace it)
                                  and print the blob name for schedule.source.blob, goldenSet.blob or run --blob
  runs [--pipeline P] [--status S]
                                  list runs
  status RUN                      show one run: steps, metrics, approval, deployment
  cancel RUN                      cancel a run (stops its training job)
  models [NAME]                   list models, or show versions, aliases and alias history of one
  predict NAME FILE               score rows (JSON array of objects, or CSV) with the production model
  audit [verify]                  the audit trail, newest first; verify: check the chain and its anchors
  job test FOLDER --data FILE --target COL [--features a,b] [--command "…"] [--rows N]
                  [--task classification|regression] [--seed N] [--hyperparameters JSON]
                  [--time-limit SECONDS] [--work DIR]
                                  run your own training code locally under sluice.job/v1 on a sample
                                  of FILE and check the model folder it writes (no server needed);
                                  the command defaults to FOLDER/job.json's "command"

Options:
  --url URL      API origin (env SLUICE_URL, default http://localhost:7071)
  --key KEY      function key (env SLUICE_KEY)
  --json         print raw JSON
  -h, --help     this text; \`sluice <command> --help\` shows a command's own options and examples`;

const GLOBAL_HELP = `Options of every command:
  --url URL      API origin (env SLUICE_URL, default http://localhost:7071)
  --key KEY      function key (env SLUICE_KEY)
  --json         print raw JSON
  -h, --help     this text`;

type OptionSpec = { type: 'string' | 'boolean'; short?: string; default?: boolean };

/** One command: its usage, what it does, its own options (beyond the global ones) and examples. */
interface CommandSpec {
  usage: string;
  about: string;
  options: Record<string, OptionSpec>;
  optionHelp?: string;
  examples: string[];
}

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

export const COMMANDS: Record<string, CommandSpec> = {
  audit: AUDIT_COMMAND,
  pipelines: {
    usage:
      'sluice pipelines validate DIR | plan DIR [--detailed-exitcode] | apply DIR | apply FILE [--rows N] | list | show NAME',
    about:
      'Pipelines as code: DIR holds one definition per .json, .yaml or .yml file (a file without "name" is\n' +
      'named after the file).\n' +
      "validate: check every definition offline with the server's own schema; each problem names the\n" +
      '  file and the field. Exit 0 valid, 1 not.\n' +
      'plan: compare DIR with the deployed pipelines: new, changed fields (old → new), unchanged, and\n' +
      '  pipelines only on the server (reported, never deleted). Exit 0; with --detailed-exitcode,\n' +
      '  0 no change, 2 changes, 1 error.\n' +
      'apply DIR: apply the plan, each write conditional on the version the plan read (a change made\n' +
      '  meanwhile is refused: plan again); stops at the first error and says what was applied before it.\n' +
      'apply FILE: store a new version of the pipeline in FILE (JSON) unconditionally, and warn when\n' +
      '  its evaluation policy cannot pass on the holdout it will see.\n' +
      'list: every pipeline with its latest version; show: one definition with its versions.',
    options: {
      rows: { type: 'string' },
      'detailed-exitcode': { type: 'boolean', default: false },
      prune: { type: 'boolean', default: false },
    },
    optionHelp: `  --detailed-exitcode      plan: exit 0 when nothing would change, 2 when something would, 1 on error
  --prune                  refused: Sluice's API cannot delete a pipeline yet (runs pin their versions)
  --rows N                 apply FILE: evaluation rows to expect (holdout plus golden set), for the
                           policy check; default: the pipeline's last evaluated run`,
    examples: [
      'sluice pipelines validate pipelines/',
      'sluice pipelines plan pipelines/ --detailed-exitcode',
      'sluice pipelines apply pipelines/',
      'sluice pipelines apply examples/pipelines/wages.json',
      'sluice pipelines apply examples/pipelines/wages.json --rows 400',
      'sluice pipelines list',
      'sluice pipelines show wages --json',
    ],
  },
  run: {
    usage: 'sluice run PIPELINE (--data FILE | --blob CONTAINER/PATH) [--wait] [--storage CONN]',
    about:
      'Start a run of PIPELINE on a CSV, JSON Lines or Parquet file, or on a blob already in storage.\n' +
      'With --wait, show each step as it happens and, while the run waits for reviewers, the\n' +
      "approval links of a local Sluice (read from the devhost's outbox container), and exit with the\n" +
      "run's outcome, so a CI step can gate on it:\n" +
      runExitCodeTable(),
    options: {
      data: { type: 'string' },
      blob: { type: 'string' },
      wait: { type: 'boolean', default: false },
      storage: { type: 'string' },
    },
    optionHelp: `  --data FILE              the data to run on (.csv, .jsonl/.ndjson, or Parquet)
  --blob CONTAINER/PATH    run on a blob of the app's storage instead
  --wait                   follow the run to its end
  --storage CONN           outbox storage connection string for the approval links (default: the
                           local Azurite of the host)`,
    examples: [
      'sluice run wages --data data/cps-wages-1985.csv --wait',
      'sluice run wages --blob datasets/wages/latest.csv',
    ],
  },
  promote: PROMOTE_COMMAND,
  deploy: DEPLOY_COMMAND,
  runs: {
    usage: 'sluice runs [--pipeline P] [--status S]',
    about: 'List runs, newest first.',
    options: { pipeline: { type: 'string' }, status: { type: 'string' } },
    optionHelp: `  --pipeline P             only runs of pipeline P
  --status S               only runs in status S (running, waiting_for_approval, succeeded, stopped, …)`,
    examples: ['sluice runs --pipeline wages', 'sluice runs --status waiting_for_approval'],
  },
  status: {
    usage: 'sluice status RUN',
    about: 'Show one run: its steps with their durations, its metrics as a table, approval and deployment.',
    options: {},
    examples: ['sluice status 6f1c…', 'sluice status 6f1c… --json'],
  },
  cancel: {
    usage: 'sluice cancel RUN',
    about: 'Cancel a run: its orchestration stops and its training job is cancelled.',
    options: {},
    examples: ['sluice cancel 6f1c…'],
  },
  models: {
    usage: 'sluice models [NAME]',
    about: 'List the registered models, or show the versions, aliases and alias history of one.',
    options: {},
    examples: ['sluice models', 'sluice models wages'],
  },
  predict: {
    usage: 'sluice predict NAME FILE',
    about:
      "Score the rows of FILE with model NAME's production version. FILE is a JSON array of\n" +
      'objects, JSON Lines, or CSV (numbers read as numbers, empty cells as null).',
    options: {},
    examples: ['sluice predict wages rows.json', 'sluice predict wages rows.csv --json'],
  },
  datasets: {
    usage: 'sluice datasets upload FILE [--name N]',
    about:
      'Put a CSV, JSON Lines or Parquet file in the datasets container (again: replace it) and print\n' +
      'the blob name to use as a schedule source, a golden set or `sluice run --blob`.',
    options: { name: { type: 'string' } },
    optionHelp: `  --name N                 the file's name in the container (default: FILE's own name)`,
    examples: [
      'sluice datasets upload data/cps-wages-1985.csv',
      'sluice datasets upload holdout.csv --name wages-golden.csv',
    ],
  },
  job: {
    usage: 'sluice job test FOLDER --data FILE --target COL [options]',
    about:
      'Run your own training code locally under sluice.job/v1 on a sample of FILE and check the\n' +
      'model folder it writes (no server needed). The command defaults to FOLDER/job.json\'s "command".',
    options: {
      data: { type: 'string' },
      target: { type: 'string' },
      features: { type: 'string' },
      command: { type: 'string' },
      rows: { type: 'string' },
      task: { type: 'string' },
      seed: { type: 'string' },
      hyperparameters: { type: 'string' },
      'time-limit': { type: 'string' },
      work: { type: 'string' },
    },
    optionHelp: `  --data FILE              the dataset (CSV, JSON Lines or Parquet) to sample
  --target COL             the label column
  --features a,b           feature columns (default: every other column)
  --command "…"            the training command (default: FOLDER/job.json's "command")
  --rows N                 sample size (at least 10)
  --task T                 classification or regression
  --seed N                 the seed handed to the job
  --hyperparameters JSON   a JSON object handed to the job
  --time-limit SECONDS     stop the job after this long
  --work DIR               where the job's data, output and log go (default: a new temporary folder)`,
    examples: [
      'sluice job test examples/training/sklearn --data data/cps-wages-1985.csv --target wage',
      'sluice job test ./my-model --data train.csv --target label --rows 200 --task classification',
    ],
  },
};

/** A command's own help: usage, what it does, its options, the global ones, examples. */
export function commandHelp(name: string): string {
  const c = COMMANDS[name];
  if (!c) return USAGE;
  return [
    `Usage: ${c.usage}`,
    '',
    c.about,
    ...(c.optionHelp ? ['', 'Options:', c.optionHelp] : []),
    '',
    GLOBAL_HELP,
    '',
    'Examples:',
    ...c.examples.map((e) => `  ${e}`),
  ].join('\n');
}

export class CliError extends Error {}

/** A mistake in how the command was called (unknown option, missing argument): exit code 2. */
export class UsageError extends CliError {}

export interface Ctx {
  url: string;
  key: string | undefined;
  json: boolean;
  out: (line: string) => void;
}

export async function api(
  ctx: Ctx,
  method: string,
  path: string,
  body?: { data: string | Buffer; type: string },
): Promise<unknown> {
  const headers: Record<string, string> = { accept: 'application/json', 'x-sluice-client': 'cli' };
  if (ctx.key) headers['x-functions-key'] = ctx.key;
  if (body) headers['content-type'] = body.type;
  // Sluice takes JSON only for state changes; a body-less POST says so, as a cross-site form cannot.
  else if (method !== 'GET') headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(new URL(path, ctx.url), { method, headers, body: body?.data });
  } catch (err) {
    throw new CliError(
      `cannot reach Sluice at ${ctx.url} (${(err as Error).message}); is devhost running (npm start)?`,
    );
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  if (!res.ok) {
    const p = parsed as
      | { detail?: string; code?: string; field?: string; errors?: { field: string; message: string }[] }
      | undefined;
    // Several bad fields (a pipeline definition at apply): one line each, field first.
    const detail =
      typeof p === 'object' && Array.isArray(p?.errors) && p.errors.length > 1
        ? `${p.code ?? ''} ${p.errors.length} problems:\n${p.errors.map((e) => `  ${e.field}: ${e.message}`).join('\n')}`
        : typeof p === 'object' && p?.detail
          ? `${p.code ?? ''} ${p.detail}${p.field ? ` (field ${p.field})` : ''}`
          : text;
    throw new CliError(`${method} ${path} failed: HTTP ${res.status}: ${detail.trim()}`);
  }
  return parsed;
}

/** A JSON file holding a bare array of rows: the endpoint wants `{"rows": [...]}`. */
function jsonRows(text: string): unknown[] | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined; // sent as it is: the endpoint names what is wrong
  }
}

function contentTypeFor(file: string): string {
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'application/x-ndjson';
  if (ext === '.json') return 'application/json';
  if (ext === '.parquet') return 'application/vnd.apache.parquet';
  return 'text/csv';
}

/**
 * Rows of a small CSV file (header line first; quoted fields with "" escapes). Cells that read as
 * numbers become numbers, empty cells null: the scoring endpoint checks them against the model.
 */
export function csvRows(text: string): Record<string, string | number | null>[] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  const endRecord = () => {
    record.push(field);
    if (record.some((f) => f !== '')) records.push(record);
    record = [];
    field = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
    } else field += c;
  }
  endRecord();
  const [header, ...body] = records;
  if (!header) throw new CliError('the CSV file is empty');
  return body.map((r) =>
    Object.fromEntries(
      header.map((h, j) => {
        const v = r[j] ?? '';
        return [h, v === '' ? null : /^\s*-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(v) ? Number(v) : v];
      }),
    ),
  );
}

const pad = (s: unknown, n: number) => String(s ?? '').padEnd(n);

export type RunView = {
  id: string;
  pipeline: string;
  source?: { kind: string; uri: string; sha256?: string };
  status: string;
  stopReason?: string;
  reason?: string;
  createdAt: string;
  steps: {
    name: string;
    status: string;
    startedAt?: string;
    endedAt?: string;
    error?: { code?: string; message: string };
    outputs?: Record<string, unknown>;
  }[];
  metrics?: Record<string, unknown>;
  approval?: Record<string, unknown>;
  deployment?: Record<string, unknown>;
  timing?: Record<string, number>;
  /** The MLflow mirror's state (docs/mlflow.md), when MLFLOW_TRACKING_URI is set. */
  mlflow?: {
    status: string;
    runId?: string;
    attempts?: number;
    nextAttemptAt?: string;
    error?: { code: string; message: string };
    model?: { name: string; version: string; alias?: string };
  };
};

/** The run's MLflow mirror in one line: `synced (run …)`, `pending …` with the retry, `failed (reason)`. */
export function mlflowLine(m: NonNullable<RunView['mlflow']>): string {
  const run = m.runId ? ` run ${m.runId}` : '';
  const model = m.model
    ? `, model ${m.model.name} v${m.model.version}${m.model.alias ? ` @${m.model.alias}` : ''}`
    : '';
  if (m.status === 'failed')
    return `  mlflow: failed (${m.error?.code ?? 'error'}: ${m.error?.message ?? ''})${run}`;
  if (m.status === 'pending' && m.error)
    return `  mlflow: pending, retry after ${m.nextAttemptAt ?? 'the next tick'} (${m.error.code})${run}`;
  return `  mlflow: ${m.status}${run}${model}`;
}

/** A step that ended because people decided so is not a failure: "approve rejected", not "approve failed". */
const decidedStepLabels: Record<string, string> = {
  approval_rejected: 'rejected',
  approval_timed_out: 'timed out',
  approval_withdrawn: 'withdrawn',
};

export function stepLine(s: RunView['steps'][number]): string {
  const dur =
    s.startedAt && s.endedAt
      ? `${((Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1)}s`
      : '';
  const decided = s.status === 'failed' && s.error?.code ? decidedStepLabels[s.error.code] : undefined;
  const mark = decided
    ? '⊘'
    : ({ succeeded: '✔', failed: '✖', running: '…', skipped: '-', canceled: '⊘', pending: ' ' }[s.status] ??
      '?');
  const line = `  ${mark} ${pad(s.name, 9)} ${pad(decided ?? s.status, 10)} ${pad(dur, 8)}${s.error ? ` ${s.error.message}` : ''}`;
  // A step that passed with warnings (drifted columns, a breaking schema change) says so.
  const o = s.outputs;
  const warning =
    s.status === 'succeeded' && o?.status === 'warning' && typeof o.headline === 'string'
      ? `\n      ⚠ ${o.headline}`
      : '';
  return line + warning;
}

function printRun(ctx: Ctx, run: RunView): void {
  ctx.out(
    `run ${run.id}  pipeline ${run.pipeline}  ${run.status}${run.stopReason ? ` (${run.stopReason})` : ''}`,
  );
  if (run.reason) ctx.out(`  reason: ${run.reason}`);
  for (const s of run.steps) ctx.out(stepLine(s));
  if (run.timing) {
    const t = run.timing;
    ctx.out(
      `  time: total ${fmtMs(t.totalMs)}, compute ${fmtMs(t.computeMs)}, waiting for people ${fmtMs(t.peopleMs)}, queued ${fmtMs(t.queuedMs)}`,
    );
  }
  if (run.metrics && Object.keys(run.metrics).length) {
    ctx.out('  metrics:');
    for (const line of metricsTable(run.metrics)) ctx.out(line ? `    ${line}` : '');
  }
  if (run.approval) ctx.out(`  approval: ${JSON.stringify(run.approval)}`);
  if (run.deployment) ctx.out(`  deployment: ${JSON.stringify(run.deployment)}`);
  if (run.mlflow) ctx.out(mlflowLine(run.mlflow));
}

/** A metric value for a table: integers as they are, others to 4 decimals (1 above 1000). */
export function fmtMetric(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 1000 ? 1 : 4);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Rows of cells as aligned columns (the first row is the header). */
function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

type Interval = {
  estimate?: number | null;
  lower?: number | null;
  upper?: number | null;
  confidence?: number;
};

/**
 * A run's metrics as tables: the training metrics one row per metric and one column per split
 * (train, validation, test); the evaluation as candidate, production and their difference with its
 * interval, then the policy's checks; any other group as name and value.
 */
export function metricsTable(metrics: Record<string, unknown>): string[] {
  const lines: string[] = [];
  for (const [group, value] of Object.entries(metrics)) {
    if (lines.length) lines.push('');
    if (isRecord(value) && 'primaryMetric' in value) {
      lines.push(...evaluationTable(value));
      continue;
    }
    if (isRecord(value) && Object.values(value).length && Object.values(value).every(isRecord)) {
      const splits = Object.keys(value);
      const names = [...new Set(splits.flatMap((s) => Object.keys(value[s] as Record<string, unknown>)))];
      lines.push(`${group}:`);
      lines.push(
        ...columns([
          ['metric', ...splits],
          ...names.map((n) => [n, ...splits.map((s) => fmtMetric((value[s] as Record<string, unknown>)[n]))]),
        ]).map((l) => `  ${l}`),
      );
      continue;
    }
    if (isRecord(value)) {
      lines.push(`${group}:`);
      lines.push(...columns(Object.entries(value).map(([k, v]) => [k, fmtMetric(v)])).map((l) => `  ${l}`));
      continue;
    }
    lines.push(`${group}: ${fmtMetric(value)}`);
  }
  return lines;
}

function evaluationTable(ev: Record<string, unknown>): string[] {
  const rows = typeof ev.rows === 'number' ? ` on ${ev.rows} holdout rows` : '';
  const verdict = ev.passed === true ? 'passed' : ev.passed === false ? 'not passed' : '';
  const lines = [`evaluation (${String(ev.primaryMetric)}${rows})${verdict ? `: ${verdict}` : ''}`];
  const interval = (v: unknown) => {
    const i = v as Interval | undefined;
    if (!isRecord(i) || i.lower === undefined) return '';
    const level = typeof i.confidence === 'number' ? `${Math.round(i.confidence * 100)}% ` : '';
    return `${level}[${fmtMetric(i.lower)}, ${fmtMetric(i.upper)}]`;
  };
  // A number, or an estimate with its interval (as the difference, and absolute metrics, carry).
  const cell = (v: unknown): [string, string] =>
    isRecord(v) && 'estimate' in v ? [fmtMetric(v.estimate), interval(v)] : [fmtMetric(v), ''];
  const production =
    ev.championVersion !== undefined ? `production (v${String(ev.championVersion)})` : 'production';
  // The absolute values' own intervals, when the run recorded them.
  const withInterval = (v: unknown, i: unknown): [string, string] =>
    isRecord(i) && typeof v === 'number' ? [fmtMetric(v), interval(i)] : cell(v);
  const table = [
    ['', 'value', 'interval'],
    ['candidate', ...withInterval(ev.candidate, ev.candidateInterval)],
    [production, ...withInterval(ev.champion, ev.championInterval)],
  ];
  if (ev.difference !== undefined) table.push(['difference', ...cell(ev.difference)]);
  // No interval anywhere (a first model has no difference): no empty column.
  const shown = table.slice(1).some((r) => r[2]) ? table : table.map((r) => r.slice(0, 2));
  lines.push(...columns(shown).map((l) => `  ${l}`));
  if (Array.isArray(ev.reasons))
    for (const r of ev.reasons as { passed?: boolean; message?: string }[])
      lines.push(`  ${r.passed ? '✔' : '✖'} ${r.message ?? ''}`);
  return lines;
}

export const fmtMs = (ms: number | undefined) =>
  ms === undefined ? '-' : ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;

const terminal = new Set(['succeeded', 'stopped', 'failed', 'canceled']);

/**
 * Polls a run and prints each step change as it happens; resolves with the final run. `onStatus`
 * sees the run each time its status changes (the demo uses it to find the approval link). With
 * `links`, each link reviewers are sent while the run waits for approval is printed once.
 */
export async function watchRun(
  ctx: Ctx,
  runId: string,
  intervalMs = 1000,
  onStatus?: (run: RunView) => void | Promise<void>,
  links?: (run: RunView) => Promise<ApprovalLink[]>,
): Promise<RunView> {
  const seen = new Map<string, string>();
  const shownLinks = new Set<string>();
  let lookForLinks = links !== undefined;
  let lastStatus = '';
  for (;;) {
    const run = (await api(ctx, 'GET', `/api/runs/${encodeURIComponent(runId)}`)) as RunView;
    for (const s of run.steps) {
      if (seen.get(s.name) !== s.status) {
        seen.set(s.name, s.status);
        if (s.status !== 'pending') ctx.out(stepLine(s));
      }
    }
    if (run.status !== lastStatus) {
      lastStatus = run.status;
      if (run.status === 'waiting_for_approval')
        ctx.out('  waiting for reviewers (approval links were sent)');
      await onStatus?.(run);
    }
    if (run.status === 'waiting_for_approval' && links && lookForLinks) {
      try {
        for (const l of await links(run)) {
          if (shownLinks.has(l.link)) continue;
          shownLinks.add(l.link);
          ctx.out(`    ${l.kind === 'request' ? 'approval link' : l.kind} for ${l.to}: ${l.link}`);
        }
      } catch (err) {
        lookForLinks = false;
        ctx.out(`    (the links are not shown here: ${(err as Error).message})`);
      }
    }
    if (terminal.has(run.status)) return run;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

type Values = Record<string, string | boolean | undefined>;

/**
 * Splits the command line: the command is the first positional; the options are the global ones
 * plus that command's own, so an option of another command is refused like any unknown one, with
 * the CLI's own message (not the raw parser's) and exit code 2.
 */
export function parseCommandLine(argv: string[]): { values: Values; positionals: string[] } {
  const every: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  for (const c of Object.values(COMMANDS)) Object.assign(every, c.options);
  // First pass, lenient: only to find the command.
  const loose = parseArgs({ args: argv, allowPositionals: true, strict: false, options: every });
  const cmd = loose.positionals[0];
  const spec = cmd ? COMMANDS[cmd] : undefined;
  if (cmd && !spec) throw new UsageError(`unknown command '${cmd}'\n\n${USAGE}`);
  const help = cmd ? `sluice ${cmd} --help` : 'sluice --help';
  try {
    const parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...GLOBAL_OPTIONS, ...spec?.options },
    });
    return { values: parsed.values as Values, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError(parseErrorMessage(err, help, cmd));
  }
}

export async function main(
  argv: string[],
  out: (line: string) => void = (l) => console.log(l),
): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  const [cmd, ...rest] = positionals;
  if (!cmd) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  if (values.help) {
    out(commandHelp(cmd));
    return 0;
  }
  const str = (k: string) => (typeof values[k] === 'string' ? values[k] : undefined);
  const ctx: Ctx = {
    url: str('url') ?? process.env.SLUICE_URL ?? 'http://localhost:7071',
    key: str('key') ?? process.env.SLUICE_KEY,
    json: values.json === true,
    out,
  };
  const print = (v: unknown, human: () => void) => (ctx.json ? out(JSON.stringify(v, null, 2)) : human());
  const need = (v: string | undefined, what: string): string => {
    if (!v) throw new UsageError(`missing ${what}\n\n${commandHelp(cmd)}`);
    return v;
  };

  switch (cmd) {
    case 'pipelines': {
      const sub = rest[0];
      if (sub === 'validate' || sub === 'plan' || (sub === 'apply' && (await isFolder(rest[1])))) {
        const dir = need(rest[1], 'DIR');
        if (values.prune)
          throw new UsageError(
            "--prune: Sluice's API cannot delete a pipeline yet (runs and schedules pin its versions); " +
              'plan reports pipelines that are only on the server, and nothing deletes them',
          );
        if (values['detailed-exitcode'] && sub !== 'plan')
          throw new UsageError(`--detailed-exitcode is for plan\n\n${commandHelp(cmd)}`);
        if (str('rows') !== undefined)
          throw new UsageError(`--rows is for apply FILE, not a folder\n\n${commandHelp(cmd)}`);
        return pipelinesAsCode(ctx, sub, dir, { detailedExitCode: values['detailed-exitcode'] === true });
      }
      if (sub === 'apply') {
        const file = need(rest[1], 'FILE');
        const text = await readFile(file, 'utf8').catch(() => {
          throw new CliError(`cannot read ${file}`);
        });
        let def: { name?: string };
        try {
          def = JSON.parse(text) as { name?: string };
        } catch (e) {
          throw new CliError(`${file} is not valid JSON: ${(e as Error).message}`);
        }
        if (!def.name) throw new CliError(`${file}: the definition has no "name"`);
        const rows = str('rows');
        if (rows !== undefined && !/^[1-9][0-9]*$/.test(rows))
          throw new UsageError(
            `--rows must be a positive whole number, got '${rows}'\n\n${commandHelp(cmd)}`,
          );
        const query = rows !== undefined ? `?rows=${rows}` : '';
        const r = (await api(ctx, 'PUT', `/api/pipelines/${encodeURIComponent(def.name)}${query}`, {
          data: text,
          type: 'application/json',
        })) as { name: string; version: number; warnings?: { field: string; message: string }[] };
        print(r, () => {
          out(`pipeline ${r.name} is now at version ${r.version}`);
          for (const w of r.warnings ?? []) out(`  ⚠ ${w.field}: ${w.message}`);
        });
        return 0;
      }
      if (sub === 'list' || sub === undefined) {
        const r = (await api(ctx, 'GET', '/api/pipelines')) as {
          name: string;
          version: number;
          updatedAt: string;
        }[];
        print(r, () => {
          out(`${pad('NAME', 24)} ${pad('VERSION', 8)} UPDATED`);
          for (const p of r) out(`${pad(p.name, 24)} ${pad(p.version, 8)} ${p.updatedAt}`);
        });
        return 0;
      }
      if (sub === 'show') {
        const r = await api(ctx, 'GET', `/api/pipelines/${encodeURIComponent(need(rest[1], 'NAME'))}`);
        out(JSON.stringify(r, null, 2));
        return 0;
      }
      throw new UsageError(`unknown pipelines command '${sub}'\n\n${commandHelp('pipelines')}`);
    }
    case 'promote':
    case 'run': {
      const pipeline = need(rest[0], 'PIPELINE');
      let body: { data: string | Buffer; type: string };
      let path = `/api/pipelines/${encodeURIComponent(pipeline)}/runs`;
      const dataFile = str('data');
      const blob = str('blob');
      if (dataFile) {
        const data = await readFile(dataFile).catch(() => {
          throw new CliError(`cannot read ${dataFile}`);
        });
        // Parquet by its PAR1 magic whatever the file is called; text formats by extension.
        const parquet = data.subarray(0, 4).toString('latin1') === 'PAR1';
        body = { data, type: parquet ? 'application/vnd.apache.parquet' : contentTypeFor(dataFile) };
      } else if (blob) {
        body = { data: JSON.stringify({ source: { blob } }), type: 'application/json' };
      } else {
        throw new UsageError(`${cmd} needs --data FILE or --blob CONTAINER/PATH\n\n${commandHelp(cmd)}`);
      }
      if (cmd === 'promote') {
        const mlflow = need(str('mlflow'), '--mlflow URI');
        ({ path, body } = promoteRequest(
          pipeline,
          mlflow,
          blob && !dataFile ? { blob } : { file: body.data as Buffer, type: body.type },
        ));
      }
      const started = (await api(ctx, 'POST', path, body)) as {
        runId: string;
        runUrl: string;
      };
      if (!values.wait) {
        print(started, () => out(`started run ${started.runId}\n  ${started.runUrl}`));
        return 0;
      }
      out(`started run ${started.runId}`);
      // Loaded here: the storage SDK is only needed to read the local outbox.
      const { outboxLinks } = await import('./approvalLinks.js');
      const run = await watchRun(ctx, started.runId, 1000, undefined, outboxLinks(str('storage')));
      print(run, () => printRun(ctx, run));
      return runExitCode(run);
    }
    case 'datasets': {
      if (rest[0] !== 'upload')
        throw new UsageError(`unknown datasets command '${rest[0] ?? ''}'\n\n${commandHelp('datasets')}`);
      const file = need(rest[1], 'FILE');
      const data = await readFile(file).catch(() => {
        throw new CliError(`cannot read ${file}`);
      });
      const name = str('name') ?? basename(file);
      const parquet = data.subarray(0, 4).toString('latin1') === 'PAR1';
      const r = (await api(ctx, 'PUT', `/api/datasets/files/${encodeURIComponent(name)}`, {
        data,
        type: parquet ? 'application/vnd.apache.parquet' : contentTypeFor(file),
      })) as { blob: string; sha256: string; bytes: number };
      print(r, () => {
        out(`uploaded ${file} as ${r.blob} (${r.bytes} bytes, sha256 ${r.sha256.slice(0, 12)}…)`);
        out(`use it as:`);
        out(`  schedule:   "schedule": { "source": { "blob": "${r.blob}" }, … }`);
        out(`  golden set: "goldenSet": { "blob": "${r.blob}" }`);
        out(`  a run:      sluice run PIPELINE --blob ${r.blob}`);
      });
      return 0;
    }
    case 'runs': {
      const q = new URLSearchParams();
      const pipelineName = str('pipeline');
      const status = str('status');
      if (pipelineName) q.set('pipeline', pipelineName);
      if (status) q.set('status', status);
      const r = (await api(ctx, 'GET', `/api/runs${q.size ? `?${q}` : ''}`)) as RunView[];
      print(r, () => {
        out(`${pad('RUN', 38)} ${pad('PIPELINE', 18)} ${pad('STATUS', 22)} CREATED`);
        for (const run of r)
          out(`${pad(run.id, 38)} ${pad(run.pipeline, 18)} ${pad(run.status, 22)} ${run.createdAt}`);
      });
      return 0;
    }
    case 'status': {
      const run = (await api(ctx, 'GET', `/api/runs/${encodeURIComponent(need(rest[0], 'RUN'))}`)) as RunView;
      print(run, () => printRun(ctx, run));
      return 0;
    }
    case 'deploy': {
      let req: ReturnType<typeof deployRequest>;
      try {
        req = deployRequest(rest[0], {
          version: str('version'),
          override: values.override === true,
          reason: str('reason'),
        });
      } catch (err) {
        if (err instanceof DeployUsageError) throw new UsageError(`${err.message}\n\n${commandHelp(cmd)}`);
        throw err;
      }
      const r = await api(ctx, 'POST', req.path, req.body);
      print(r, () => out(describeOverride(r as Parameters<typeof describeOverride>[0])));
      return 0;
    }
    case 'cancel': {
      const r = await api(ctx, 'POST', `/api/runs/${encodeURIComponent(need(rest[0], 'RUN'))}/cancel`);
      print(r, () => out(`cancel requested for run ${rest[0]}`));
      return 0;
    }
    case 'models': {
      const name = rest[0];
      const r = await api(ctx, 'GET', name ? `/api/models/${encodeURIComponent(name)}` : '/api/models');
      out(JSON.stringify(r, null, 2));
      return 0;
    }
    case 'predict': {
      const name = need(rest[0], 'NAME');
      const file = need(rest[1], 'FILE');
      const text = await readFile(file, 'utf8').catch(() => {
        throw new CliError(`cannot read ${file}`);
      });
      // The scoring endpoint takes JSON rows: a CSV (or JSON Lines) file is turned into them here.
      const type = contentTypeFor(file);
      const rows =
        type === 'text/csv'
          ? csvRows(text)
          : type === 'application/x-ndjson'
            ? text
                .split('\n')
                .filter((l) => l.trim())
                .map((l) => JSON.parse(l) as unknown)
            : jsonRows(text);
      const r = await api(ctx, 'POST', `/api/models/${encodeURIComponent(name)}/predict`, {
        data: rows ? JSON.stringify({ rows }) : text,
        type: 'application/json',
      });
      out(JSON.stringify(r, null, 2));
      return 0;
    }
    case 'audit':
      try {
        return await auditCommand(
          rest,
          { subject: str('subject'), limit: str('limit'), before: str('before') },
          { get: (path) => api(ctx, 'GET', path), out, json: ctx.json },
        );
      } catch (err) {
        if (err instanceof AuditUsageError) throw new UsageError(`${err.message}\n\n${commandHelp(cmd)}`);
        throw err;
      }
    case 'job': {
      if (rest[0] !== 'test')
        throw new UsageError(`unknown job command '${rest[0] ?? ''}'\n\n${commandHelp('job')}`);
      // Loaded here: they load onnxruntime-node's native binding, which the API commands do not need.
      const [{ jobTest }, { checkModelFolder }] = await Promise.all([
        import('./jobTest.js'),
        import('../lib/mlmodel/check.js'),
      ]);
      return jobTest(jobTestArgs(need(rest[1], 'FOLDER'), values, need), { check: checkModelFolder, out });
    }
    default:
      throw new UsageError(`unknown command '${cmd}'\n\n${USAGE}`);
  }
}

/** `job test` options → arguments, each checked with a message naming the option. */
export function jobTestArgs(
  folder: string,
  values: Record<string, string | boolean | undefined>,
  need: (v: string | undefined, what: string) => string,
): JobTestArgs {
  const str = (k: string) => (typeof values[k] === 'string' ? values[k] : undefined);
  const int = (k: string, min: number): number | undefined => {
    const v = str(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new CliError(`--${k} must be an integer of at least ${min}, not ${v}`);
    return n;
  };
  const task = str('task');
  if (task !== undefined && task !== 'classification' && task !== 'regression')
    throw new CliError(`--task must be classification or regression, not ${task}`);
  let hyperparameters: Record<string, unknown> | undefined;
  const hp = str('hyperparameters');
  if (hp !== undefined) {
    try {
      hyperparameters = JSON.parse(hp) as Record<string, unknown>;
    } catch (e) {
      throw new CliError(`--hyperparameters is not JSON: ${(e as Error).message}`);
    }
    if (typeof hyperparameters !== 'object' || hyperparameters === null || Array.isArray(hyperparameters))
      throw new CliError('--hyperparameters must be a JSON object');
  }
  const features = str('features')
    ?.split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  return {
    folder,
    data: need(str('data'), '--data FILE'),
    target: need(str('target'), '--target COL'),
    features: features?.length ? features : undefined,
    command: str('command'),
    rows: int('rows', 10),
    task,
    seed: int('seed', 0),
    hyperparameters,
    timeLimitSeconds: int('time-limit', 1),
    work: str('work'),
  };
}

/**
 * Whether the command line asks for `--detailed-exitcode`, read from the raw arguments (before `--`)
 * so that it holds even when the rest of the line does not parse.
 */
export function wantsDetailedExitCode(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some(
    (a) => a === '--detailed-exitcode' || a.startsWith('--detailed-exitcode='),
  );
}

/**
 * The exit code of an error: 2 for a mistake in the command line, 1 for any other (Sluice
 * unreachable, a refused request). With `--detailed-exitcode` every error is 1, because there 2
 * means "changes", as in terraform: a script reading 2 as "plan found changes" must never get it
 * from a missing DIR or an unknown option.
 */
export function errorExitCode(err: unknown, argv: string[]): number {
  if (wantsDetailedExitCode(argv)) return RUN_EXIT_CODES.error;
  return err instanceof UsageError ? RUN_EXIT_CODES.usage : RUN_EXIT_CODES.error;
}

/** The process entry (also of scripts/sluice.mjs, the bin): a command's own exit code, or errorExitCode. */
export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`sluice: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(errorExitCode(err, argv));
    },
  );
}

/** Whether PATH is a folder (apply DIR) rather than a file (apply FILE, the one-file form). */
async function isFolder(path: string | undefined): Promise<boolean> {
  if (!path) return false;
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

if (require.main === module) runCli(process.argv.slice(2));
