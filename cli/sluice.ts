#!/usr/bin/env node
/**
 * `sluice`: a small client of the Sluice HTTP API. Every command is one or a few HTTP calls, so
 * what the CLI can do the API can do. Settings: --url / SLUICE_URL (default http://localhost:7071),
 * --key / SLUICE_KEY (function key, sent as x-functions-key).
 */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import type { JobTestArgs } from './jobTest';

const USAGE = `Usage: sluice <command> [options]

Commands:
  pipelines apply FILE            create or update a pipeline from a JSON definition (new version)
  pipelines list                  list pipelines
  pipelines show NAME             show a pipeline definition
  run PIPELINE [--data FILE | --blob CONTAINER/PATH] [--wait]
                                  start a run on a CSV / JSON Lines / Parquet file or a blob; --wait shows the steps live
  datasets upload FILE [--name N] put a CSV / JSON Lines / Parquet file in the datasets container (again: replace it)
                                  and print the blob name for schedule.source.blob, goldenSet.blob or run --blob
  runs [--pipeline P] [--status S]
                                  list runs
  status RUN                      show one run: steps, metrics, approval, deployment
  cancel RUN                      cancel a run (stops its training job)
  models [NAME]                   list models, or show versions, aliases and alias history of one
  predict NAME FILE               score rows (JSON array of objects, or CSV) with the production model
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
  -h, --help     this text`;

export class CliError extends Error {}

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
};

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
  if (run.metrics && Object.keys(run.metrics).length) ctx.out(`  metrics: ${JSON.stringify(run.metrics)}`);
  if (run.approval) ctx.out(`  approval: ${JSON.stringify(run.approval)}`);
  if (run.deployment) ctx.out(`  deployment: ${JSON.stringify(run.deployment)}`);
}

export const fmtMs = (ms: number | undefined) =>
  ms === undefined ? '-' : ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;

const terminal = new Set(['succeeded', 'stopped', 'failed', 'canceled']);

/**
 * Polls a run and prints each step change as it happens; resolves with the final run. `onStatus`
 * sees the run each time its status changes (the demo uses it to find the approval link).
 */
export async function watchRun(
  ctx: Ctx,
  runId: string,
  intervalMs = 1000,
  onStatus?: (run: RunView) => void | Promise<void>,
): Promise<RunView> {
  const seen = new Map<string, string>();
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
    if (terminal.has(run.status)) return run;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function main(
  argv: string[],
  out: (line: string) => void = (l) => console.log(l),
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      json: { type: 'boolean', default: false },
      data: { type: 'string' },
      blob: { type: 'string' },
      wait: { type: 'boolean', default: false },
      pipeline: { type: 'string' },
      status: { type: 'string' },
      target: { type: 'string' },
      features: { type: 'string' },
      command: { type: 'string' },
      rows: { type: 'string' },
      task: { type: 'string' },
      seed: { type: 'string' },
      hyperparameters: { type: 'string' },
      'time-limit': { type: 'string' },
      work: { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    out(USAGE);
    return cmd || values.help ? 0 : 2;
  }
  const ctx: Ctx = {
    url: values.url ?? process.env.SLUICE_URL ?? 'http://localhost:7071',
    key: values.key ?? process.env.SLUICE_KEY,
    json: values.json ?? false,
    out,
  };
  const print = (v: unknown, human: () => void) => (ctx.json ? out(JSON.stringify(v, null, 2)) : human());
  const need = (v: string | undefined, what: string): string => {
    if (!v) throw new CliError(`missing ${what}\n\n${USAGE}`);
    return v;
  };

  switch (cmd) {
    case 'pipelines': {
      const sub = rest[0];
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
        const r = (await api(ctx, 'PUT', `/api/pipelines/${encodeURIComponent(def.name)}`, {
          data: text,
          type: 'application/json',
        })) as { name: string; version: number };
        print(r, () => out(`pipeline ${r.name} is now at version ${r.version}`));
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
      throw new CliError(`unknown pipelines command '${sub}'\n\n${USAGE}`);
    }
    case 'run': {
      const pipeline = need(rest[0], 'PIPELINE');
      let body: { data: string | Buffer; type: string };
      if (values.data) {
        const data = await readFile(values.data).catch(() => {
          throw new CliError(`cannot read ${values.data}`);
        });
        // Parquet by its PAR1 magic whatever the file is called; text formats by extension.
        const parquet = data.subarray(0, 4).toString('latin1') === 'PAR1';
        body = { data, type: parquet ? 'application/vnd.apache.parquet' : contentTypeFor(values.data) };
      } else if (values.blob) {
        body = { data: JSON.stringify({ source: { blob: values.blob } }), type: 'application/json' };
      } else {
        throw new CliError('run needs --data FILE or --blob CONTAINER/PATH');
      }
      const started = (await api(
        ctx,
        'POST',
        `/api/pipelines/${encodeURIComponent(pipeline)}/runs`,
        body,
      )) as {
        runId: string;
        runUrl: string;
      };
      if (!values.wait) {
        print(started, () => out(`started run ${started.runId}\n  ${started.runUrl}`));
        return 0;
      }
      out(`started run ${started.runId}`);
      const run = await watchRun(ctx, started.runId);
      print(run, () => printRun(ctx, run));
      return run.status === 'succeeded' ? 0 : 1;
    }
    case 'datasets': {
      if (rest[0] !== 'upload') throw new CliError(`unknown datasets command '${rest[0] ?? ''}'\n\n${USAGE}`);
      const file = need(rest[1], 'FILE');
      const data = await readFile(file).catch(() => {
        throw new CliError(`cannot read ${file}`);
      });
      const name = values.name ?? basename(file);
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
      if (values.pipeline) q.set('pipeline', values.pipeline);
      if (values.status) q.set('status', values.status);
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
    case 'job': {
      if (rest[0] !== 'test') throw new CliError(`unknown job command '${rest[0] ?? ''}'\n\n${USAGE}`);
      // Loaded here: they load onnxruntime-node's native binding, which the API commands do not need.
      const [{ jobTest }, { checkModelFolder }] = await Promise.all([
        import('./jobTest.js'),
        import('../lib/mlmodel/check.js'),
      ]);
      return jobTest(jobTestArgs(need(rest[1], 'FOLDER'), values, need), { check: checkModelFolder, out });
    }
    default:
      throw new CliError(`unknown command '${cmd}'\n\n${USAGE}`);
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

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`sluice: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(err instanceof CliError ? 2 : 1);
    },
  );
}
