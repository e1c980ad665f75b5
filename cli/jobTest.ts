/**
 * `sluice job test <folder> --data file.csv --target COL`: runs a job folder locally under
 * sluice.job/v1 on a sample of a data file, and checks what it writes, so a data scientist knows
 * the job works before a pipeline runs it. No Sluice server is involved.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jobFileSchema, JOB_CONTRACT_VERSION, userJobSpecSchema } from '../lib/contracts/job';
import type { JobFile } from '../lib/contracts/job';
import { inferDatasetContract } from '../lib/data/checking/inferDatasetContract';
import { conformTable } from '../lib/data/checking/conform';
import { readDataset } from '../lib/data/reading/readDataset';
import { NonRetriableError, SluiceError } from '../lib/errors';
import type { Scores } from '../lib/mlmodel/onnxModel';
import { datasetFromTable } from '../lib/training/dataset';
import { rowHashes } from '../lib/training/split';
import type { Task } from '../lib/training/userJob/jobData';
import { selectTable, writeJobData } from '../lib/training/userJob/jobData';
import type { CheckModelFolder, ModelFolderCheck } from '../lib/training/userJob/run';
import { runUserJob, UserJobError } from '../lib/training/userJob/run';

export interface JobTestArgs {
  folder: string;
  data: string;
  target: string;
  features?: string[];
  command?: string;
  rows?: number;
  task?: Task;
  seed?: number;
  hyperparameters?: Record<string, unknown>;
  timeLimitSeconds?: number;
  /** Where the data, output and log go (default: a new temporary folder). */
  work?: string;
}

export interface JobTestDeps {
  check: CheckModelFolder;
  out: (line: string) => void;
  /** Environment the job starts from (default: PATH, HOME, locale, TMPDIR of this process). */
  baseEnv?: Record<string, string>;
}

export const DEFAULT_SAMPLE_ROWS = 5_000;
const PREDICTIONS_SHOWN = 5;

/** Runs the test; resolves 0 when the job's output passed the check, 1 (after printing why) when not. */
export async function jobTest(args: JobTestArgs, deps: JobTestDeps): Promise<number> {
  const { out } = deps;
  try {
    await jobTestOrThrow(args, deps);
    return 0;
  } catch (err) {
    if (!(err instanceof SluiceError)) throw err;
    out(`✖ ${err.code}: ${err.message}`);
    return 1;
  }
}

async function jobTestOrThrow(args: JobTestArgs, deps: JobTestDeps): Promise<void> {
  const { out } = deps;
  const folder = resolve(args.folder);
  const folderStat = await stat(folder).catch(() => undefined);
  if (!folderStat?.isDirectory())
    throw new NonRetriableError('code_folder_missing', `the code folder ${args.folder} does not exist`);
  const jobFile = await readJobFile(folder);
  const command = args.command ?? jobFile?.command;
  if (!command)
    throw new NonRetriableError(
      'no_command',
      `give --command "…" or put a job.json with a "command" in ${args.folder}`,
    );

  const bytes = await readFile(args.data).catch(() => {
    throw new NonRetriableError('data_missing', `cannot read the data file ${args.data}`);
  });
  const read = await readDataset(bytes, { expectedBytes: bytes.length });
  const contract = inferDatasetContract(read.table);
  let table = conformTable(read.table, contract);
  const names = table.columns.map((c) => c.name);
  if (!names.includes(args.target))
    throw new NonRetriableError(
      'missing_column',
      `the data has no column "${args.target}" (columns: ${names.join(', ')})`,
    );
  const features = args.features ?? names.filter((n) => n !== args.target);
  const seed = args.seed ?? 42;
  const rows = args.rows ?? DEFAULT_SAMPLE_ROWS;
  const total = table.rows;
  if (total > rows) table = sample(table, rows, seed);

  const work = args.work ? resolve(args.work) : await mkdtemp(join(tmpdir(), 'sluice-job-'));
  const data = await writeJobData(join(work, 'data'), {
    table,
    contract,
    target: args.target,
    features,
    seed,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
    task: args.task ?? jobFile?.task,
  });
  out(`${JOB_CONTRACT_VERSION} job test of ${folder}`);
  out(
    `  data: ${args.data}, ${table.rows} of ${total} rows; ${data.task} of ${data.target} on ${features.length} features` +
      `${data.classes ? ` (classes ${data.classes.join(', ')})` : ''}`,
  );
  out(
    `  split: train ${data.train.rows}, validation ${data.validation.rows}, holdout ${data.holdout.rows}` +
      `${data.missingTarget ? ` (${data.missingTarget} rows without a target left out)` : ''}`,
  );
  out(`  files: ${data.dir}`);
  out(`  command: ${command}`);

  // The same spec schema as the pipeline's (its limits and defaults), options over job.json.
  const parsed = userJobSpecSchema.safeParse({
    code: folder,
    command,
    hyperparameters: args.hyperparameters ?? jobFile?.hyperparameters ?? {},
    timeLimitSeconds: args.timeLimitSeconds ?? jobFile?.timeLimitSeconds,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new NonRetriableError('bad_job_spec', `${issue.path.join('.') || 'job'}: ${issue.message}`);
  }
  const jobId = `jobtest-${randomBytes(6).toString('hex')}`;
  let outcome;
  try {
    outcome = await runUserJob({
      jobId,
      spec: parsed.data,
      data,
      workDir: work,
      check: deps.check,
      baseEnv: deps.baseEnv,
      onLine: (line) => out(`  │ ${line}`),
    });
  } catch (err) {
    if (err instanceof UserJobError) {
      // The tail was streamed above already: name the failure and where the whole log is.
      out(`  log: ${join(work, 'job.log')}`);
      throw new NonRetriableError(err.code, err.summary);
    }
    throw err;
  }
  out(`✔ the job exited 0 in ${(outcome.durationMs / 1000).toFixed(1)} s; its output passed the check`);
  printModel(out, outcome.model, outcome.outputDir);
  out(`  log: ${outcome.logFile}`);
  // The sample rows as the check scored them: shown for the eye only, the check decided.
  const shown = predictionLines(data.sample, outcome.model.sampleScores, data.featureKinds);
  if (shown.length) {
    out('  predictions on holdout rows:');
    for (const line of shown) out(`    ${line}`);
  }
}

async function readJobFile(folder: string): Promise<JobFile | undefined> {
  const text = await readFile(join(folder, 'job.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new NonRetriableError('bad_job_file', `job.json is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = jobFileSchema.safeParse(json);
  if (!parsed.success)
    throw new NonRetriableError(
      'bad_job_file',
      `job.json: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** `n` rows chosen by row hash (the same rows for the same file and seed), kept in file order. */
function sample(table: ReturnType<typeof conformTable>, n: number, seed: number) {
  const hashes = rowHashes(datasetFromTable(table), seed ^ 0x5a3b1c);
  const order = Array.from(hashes.keys()).sort((a, b) => hashes[a]! - hashes[b]! || a - b);
  const picked = order.slice(0, n).sort((a, b) => a - b);
  return selectTable(table.columns, picked);
}

function printModel(out: (line: string) => void, model: ModelFolderCheck, dir: string): void {
  out(`  model folder: ${dir}`);
  out(`  flavor: ${model.flavor}${model.inputLayout ? `, inputs ${model.inputLayout}` : ''}`);
  out(`  digest: sha256:${model.digest}`);
  for (const f of model.manifest)
    out(`    ${f.path.padEnd(24)} ${String(f.bytes).padStart(10)} B  ${f.sha256.slice(0, 16)}…`);
  if (model.metrics && Object.keys(model.metrics).length)
    out(
      `  metrics: ${Object.entries(model.metrics)
        .map(([k, v]) => `${k} ${Number(v.toPrecision(4))}`)
        .join(', ')}`,
    );
}

/** "inputs → prediction" lines for the first rows the check scored. */
function predictionLines(
  rows: readonly Record<string, unknown>[],
  scores: Scores | undefined,
  kinds: readonly { name: string; kind: 'number' | 'string' }[],
): string[] {
  if (!scores) return [];
  return rows.slice(0, PREDICTIONS_SHOWN).map((r, i) => {
    const inputs = kinds
      .slice(0, 4)
      .map((k) => `${k.name}=${JSON.stringify(r[k.name])}`)
      .join(' ');
    const more = kinds.length > 4 ? ' …' : '';
    if (scores.labels) {
      const p = scores.probabilities ? Math.max(...scores.probabilities[i]!) : undefined;
      return `${inputs}${more} → ${scores.labels[i]}${p === undefined ? '' : ` (p=${p.toFixed(3)})`}`;
    }
    return `${inputs}${more} → ${Number((scores.values?.[i] ?? NaN).toPrecision(6))}`;
  });
}
