import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { SluiceVariable } from '../../contracts/job';
import type { JobResult, TrainingJobRequestInput } from '../../contracts/trainingJob';
import { jobResultSchema, jobStates, trainingJobRequestSchema } from '../../contracts/trainingJob';
import { isCustomSpec } from '../../contracts/trainingSpec';
import { NonRetriableError, SluiceError } from '../../errors';
import { defaultModelMaxBytes, manifestDigest, readManifest } from '../../mlmodel/folder';
import resources from '../../resources.json';
import type { ArtifactStore } from '../../storage/blob';
import type { JobData } from '../userJob/jobData';
import { jobDataFiles } from '../userJob/jobData';
import { collectJobModel, downloadBlobPrefix, prepareJobData } from '../userJob/output';
import { confineCodeFolder } from '../userJob/codePolicy';
import { CODE_MAX_BYTES, SKIPPED_FOLDERS } from './azuremlUserJob';
import type { DatabricksClient, Run } from './databricksApi';
import { mapRunState } from './databricksApi';
import { mlflowJobVariables } from './mlflowEnv';
import { runSubmitBody, usesLauncher } from './databricksRun';
import { LAUNCHER_FILE, LAUNCHER_SOURCE } from './databricksLauncher';
import { DEFAULT_QUEUED_LIMIT_SECONDS } from './azureml';
import type { PreparedScore, RemoteScoreInput } from './azuremlScore';
import { prepareScore, scoresOf, stageScoreInputs } from './azuremlScore';
import { MAX_SCORE_ATTEMPTS, readPinnedPredictions, scoreAttemptId } from './scorePredictions';
import { SCORE_COMMAND_VARIABLE_NAMES } from '../../contracts/job';
import type { Scores } from '../../mlmodel/onnxModel';
import type { JobStatus, TrainingBackend } from './types';
import { jobPath } from './types';

/**
 * The `databricks` backend: the user's own code (`algorithm: "custom"`) as an Azure Databricks
 * one-time run (Jobs API 2.2), under `sluice.job/v1`.
 *
 * Data in comes from the artifact account's `jobs` container, which the run sees either as an ABFS
 * path (`abfss://jobs@<account>.dfs.core.windows.net`, the default) or as a Unity Catalog volume
 * (`/Volumes/<catalog>/<schema>/<volume>`) that is an external volume over that container root;
 * the run can only read it (the access connector has Storage Blob Data Reader there). The model
 * comes back through the `joboutputs` container, the only one the connector may write: the run
 * writes its MLflow folder to `<output root>/<jobId>` (`abfss://joboutputs@<account>…/<jobId>`, or
 * a second volume over joboutputs, DATABRICKS_OUTPUT_ROOT). So a run cannot rewrite Sluice's
 * records below, which stay in `jobs`. `submit` writes the split data to `jobs/<jobId>/data/`, then
 * calls runs/submit with `idempotency_token` = the job id. `status` polls runs/get; when the run has
 * succeeded it downloads `joboutputs/<jobId>/` (and nothing else the run may have written),
 * checks and stores it (`collectJobModel`) and records the outcome in `jobs/<jobId>/outcome.json`
 * (write-once), so the collection happens once and later reads, even after Databricks deleted the
 * run (60 days), answer from Blob. A failed run's error and error trace come from runs/get-output
 * of its task run.
 *
 * What this cannot enforce: Unity Catalog gives every run the same storage credential, so one run
 * could write another run's folder in `joboutputs` while both run. A per-run SAS as on Azure ML
 * would need per-run Spark configuration that serverless and shared clusters do not take.
 * Sluice checks what it collects (MLmodel, ONNX, features, outputs) and binds approval to the
 * collected folder's digest, so a swapped folder is at worst a different, still-checked model that
 * reviewers see by its digest; it can never change a job's recorded status. A score run's
 * predictions are written under a random name drawn per score job and pinned by digest on first
 * read (`score`, scorePredictions.ts), so a run cannot swap them once Sluice has read them.
 *
 * Files in `jobs/<jobId>/`: `request.json` (the run it belongs to: how job events find their
 * monitor), `databricks.json` (the Databricks run id), `data/*` (the job's input, and
 * `data/sluice-job.json`, what the model check needs), `launcher/sluice_launch.py` (on an
 * existing cluster or serverless compute: databricksLauncher.ts), `outcome.json`; the run's own files are
 * `joboutputs/<jobId>/*`. `jobs/_databricks/runs/<runId>.json` maps a Databricks run back to its job for
 * the webhook (a name no job id can take: job ids start with a letter or digit).
 */

export interface DatabricksBackendOptions {
  client: DatabricksClient;
  store: ArtifactStore;
  /** Where the run sees the `jobs` container: `abfss://jobs@<account>.dfs.core.windows.net` or a `/Volumes/...` path. */
  jobRoot: string;
  /**
   * Where the run sees the `joboutputs` container: `abfss://joboutputs@<account>.dfs.core.windows.net`
   * (the default with an ABFS job root) or a `/Volumes/...` path (required with a volume job root).
   */
  outputRoot?: string;
  /** A notification destination id for job webhooks (Sluice's databricks-events function). */
  webhookDestinationId?: string;
  /** The model folder's size limit. */
  maxModelBytes?: number;
  /**
   * A run still queued (pending, queued, blocked) longer than this after submit is canceled and
   * fails with `queued_too_long` (default, and setting, the same as Azure ML's: 4 hours).
   */
  queuedLimitSeconds?: number;
  /** How often `score` asks Databricks about a score run (default 15 s). */
  scorePollMs?: number;
  /** The largest predictions file a score run may write (default 1 GiB, as on the host). */
  maxPredictionBytes?: number;
  sleep?: (ms: number) => Promise<void>;
  /** A relative `code` (a host folder Sluice stages) is resolved against this (default: the working folder). */
  codeBaseDir?: string;
  /** When set, a host code folder must be inside it (USER_CODE_ROOT), as for Azure ML uploads. */
  codeRoot?: string;
  now?: () => number;
}

/**
 * Whether a spec's `code` is a folder on Sluice's host that Sluice stages for the run (a relative
 * path, e.g. `examples/training/sklearn`), rather than a path Databricks resolves itself (an
 * absolute workspace or volume path, or a URI such as dbfs:/ or abfss://).
 */
export const isHostCodeFolder = (code: string): boolean =>
  !code.startsWith('/') && !/^[a-z][a-z0-9+.-]*:/i.test(code);

const jobsContainer = resources.blobContainers.jobs;

/** `jobs/<scoreJobId>/score.json`: where the score run writes (its random name) and which run it is. */
const scoreRecordSchema = z.object({
  jobId: z.string(),
  nonce: z.string().regex(/^[0-9a-f]{32}$/),
  runId: z.string().optional(),
});
type ScoreRecord = z.infer<typeof scoreRecordSchema>;
const outputsContainer = resources.blobContainers.jobOutputs;
/** Folder of the run → job index in the jobs container. */
export const RUN_INDEX_PREFIX = '_databricks/runs';
const runIndexPath = (runId: string) => `${RUN_INDEX_PREFIX}/${runId}.json`;

const runRecordSchema = z.object({
  jobId: z.string(),
  runId: z.string().regex(/^\d{1,20}$/),
  submittedAt: z.string(),
});
export type DatabricksRunRecord = z.infer<typeof runRecordSchema>;

const outcomeSchema = z.object({
  jobId: z.string(),
  state: z.enum(jobStates),
  backendStatus: z.string(),
  finishedAt: z.string(),
  startedAt: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  logTail: z.array(z.string()).default([]),
  result: jobResultSchema.optional(),
});
type Outcome = z.infer<typeof outcomeSchema>;

/** What the model check needs of the job's data, kept in Blob between submit and collection. */
const jobDataRecordSchema = z.object({
  target: z.string(),
  task: z.enum(['classification', 'regression']),
  featureKinds: z.array(z.object({ name: z.string(), kind: z.enum(['number', 'string']) })),
  classes: z.array(z.string()).optional(),
  sample: z.array(z.record(z.string(), z.unknown())),
  rows: z.object({ train: z.number(), validation: z.number(), holdout: z.number() }),
  /** The staged code folder's manifest digest, when Sluice staged the code (see stageCode). */
  codeDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
type JobDataRecord = z.infer<typeof jobDataRecordSchema>;

/** The data files' names under `jobs/<jobId>/data/`. */
const DATA_FILES = {
  SLUICE_TRAIN: 'train.csv',
  SLUICE_VALIDATION: 'validation.csv',
  SLUICE_HOLDOUT: 'holdout.csv',
  SLUICE_TRAIN_PARQUET: 'train.parquet',
  SLUICE_VALIDATION_PARQUET: 'validation.parquet',
  SLUICE_HOLDOUT_PARQUET: 'holdout.parquet',
  SLUICE_CONTRACT: 'contract.json',
} as const;

const ABFSS_ROOT = /^abfss:\/\/([a-z0-9-]{3,63})@([a-z0-9]{3,24})\.dfs\.[a-z0-9.-]+$/;
const VOLUME_ROOT = /^\/Volumes\/[^/]+\/[^/]+\/[^/]+(?:\/[^/]+)*$/;

/** Checks a job root setting: an ABFS URL of the jobs container or a UC volume path. */
export function parseJobRoot(root: string): string {
  const trimmed = root.replace(/\/+$/, '');
  const abfss = ABFSS_ROOT.exec(trimmed);
  if (abfss) {
    if (abfss[1] !== jobsContainer)
      throw new NonRetriableError(
        'databricks_not_configured',
        `DATABRICKS_JOB_ROOT must be the "${jobsContainer}" container of the artifact account, not "${abfss[1]}"`,
      );
    return trimmed;
  }
  if (VOLUME_ROOT.test(trimmed)) return trimmed;
  throw new NonRetriableError(
    'databricks_not_configured',
    `DATABRICKS_JOB_ROOT must be abfss://${jobsContainer}@<account>.dfs.core.windows.net or /Volumes/<catalog>/<schema>/<volume>, not ${root}`,
  );
}

/** Checks an output root setting: an ABFS URL of the joboutputs container or a UC volume path. */
export function parseOutputRoot(root: string): string {
  const trimmed = root.replace(/\/+$/, '');
  const abfss = ABFSS_ROOT.exec(trimmed);
  if (abfss) {
    if (abfss[1] !== outputsContainer)
      throw new NonRetriableError(
        'databricks_not_configured',
        `DATABRICKS_OUTPUT_ROOT must be the "${outputsContainer}" container of the artifact account, not "${abfss[1]}" (runs may not write "${jobsContainer}", where Sluice keeps its records)`,
      );
    return trimmed;
  }
  if (VOLUME_ROOT.test(trimmed)) return trimmed;
  throw new NonRetriableError(
    'databricks_not_configured',
    `DATABRICKS_OUTPUT_ROOT must be abfss://${outputsContainer}@<account>.dfs.core.windows.net or /Volumes/<catalog>/<schema>/<volume>, not ${root}`,
  );
}

/** The output root that goes with an ABFS job root; a volume job root needs DATABRICKS_OUTPUT_ROOT. */
export function defaultOutputRoot(jobRoot: string): string {
  const abfss = ABFSS_ROOT.exec(jobRoot);
  if (!abfss)
    throw new NonRetriableError(
      'databricks_not_configured',
      `with a volume job root (${jobRoot}) set DATABRICKS_OUTPUT_ROOT to a volume over the artifact account's "${outputsContainer}" container: runs may only read "${jobsContainer}"`,
    );
  return jobRoot.replace(`abfss://${jobsContainer}@`, `abfss://${outputsContainer}@`);
}

/** The default job root: the artifact account's jobs container over ABFS. */
export const abfssJobRoot = (account: string): string =>
  `abfss://${jobsContainer}@${account}.dfs.core.windows.net`;

const iso = (ms: number) => new Date(ms).toISOString();
const TAIL_LINES = 20;
const tail = (text: string | undefined): string[] =>
  (text ?? '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .slice(-TAIL_LINES);

export class DatabricksTrainingBackend implements TrainingBackend {
  readonly name = 'databricks' as const;
  private readonly root: string;
  private readonly outputRoot: string;
  private readonly now: () => number;

  constructor(private readonly options: DatabricksBackendOptions) {
    this.root = parseJobRoot(options.jobRoot);
    this.outputRoot = options.outputRoot ? parseOutputRoot(options.outputRoot) : defaultOutputRoot(this.root);
    this.now = options.now ?? Date.now;
  }

  /** The SLUICE_* values as the run sees them (paths under the job root). */
  variables(jobId: string, record: JobDataRecord, spec: { hyperparameters: unknown; seed: number }) {
    const at = (file: string) => `${this.root}/${jobId}/data/${file}`;
    const values: Record<SluiceVariable, string> = {
      SLUICE_JOB_ID: jobId,
      SLUICE_TRAIN: at(DATA_FILES.SLUICE_TRAIN),
      SLUICE_VALIDATION: at(DATA_FILES.SLUICE_VALIDATION),
      SLUICE_HOLDOUT: at(DATA_FILES.SLUICE_HOLDOUT),
      SLUICE_TRAIN_PARQUET: at(DATA_FILES.SLUICE_TRAIN_PARQUET),
      SLUICE_VALIDATION_PARQUET: at(DATA_FILES.SLUICE_VALIDATION_PARQUET),
      SLUICE_HOLDOUT_PARQUET: at(DATA_FILES.SLUICE_HOLDOUT_PARQUET),
      SLUICE_CONTRACT: at(DATA_FILES.SLUICE_CONTRACT),
      SLUICE_TARGET: record.target,
      SLUICE_FEATURES: JSON.stringify(record.featureKinds.map((f) => f.name)),
      SLUICE_TASK: record.task,
      SLUICE_HYPERPARAMETERS: JSON.stringify(spec.hyperparameters),
      SLUICE_SEED: String(spec.seed),
      SLUICE_OUTPUT: `${this.outputRoot}/${jobId}`,
    };
    return values;
  }

  private async readRecord(jobId: string): Promise<DatabricksRunRecord | undefined> {
    const got = await this.options.store.tryGetJson({
      container: jobsContainer,
      path: jobPath(jobId, 'databricks.json'),
    });
    if (!got) return undefined;
    const parsed = runRecordSchema.safeParse(got.value);
    if (!parsed.success)
      throw new NonRetriableError(
        'databricks_record_invalid',
        `jobs/${jobId}/databricks.json is not a run record`,
      );
    return parsed.data;
  }

  /** Writes the job's split data under `jobs/<jobId>/data/` and returns what the model check needs. */
  private async stageData(
    request: z.output<typeof trainingJobRequestSchema>,
    codeDigest: string | undefined,
  ): Promise<JobDataRecord> {
    const store = this.options.store;
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-databricks-'));
    try {
      const data: JobData = await prepareJobData(store, request, path.join(dir, 'data'));
      const local: Record<keyof typeof DATA_FILES, string> = jobDataFiles(data);
      for (const [name, file] of Object.entries(DATA_FILES) as [keyof typeof DATA_FILES, string][]) {
        const contentType = file.endsWith('.csv')
          ? 'text/csv'
          : file.endsWith('.json')
            ? 'application/json'
            : 'application/vnd.apache.parquet';
        // The same request always gives the same files; a retried submit rewrites them unchanged.
        await store.put(
          { container: jobsContainer, path: jobPath(request.jobId, `data/${file}`) },
          await readFile(local[name]),
          {
            contentType,
            condition: 'overwrite',
          },
        );
      }
      const record: JobDataRecord = {
        target: data.target,
        task: data.task,
        featureKinds: data.featureKinds.map((f) => ({ name: f.name, kind: f.kind })),
        ...(data.classes ? { classes: data.classes } : {}),
        sample: data.sample,
        rows: { train: data.train.rows, validation: data.validation.rows, holdout: data.holdout.rows },
        ...(codeDigest ? { codeDigest } : {}),
      };
      await store.putJson(
        { container: jobsContainer, path: jobPath(request.jobId, 'data/sluice-job.json') },
        record,
        {
          condition: 'overwrite',
        },
      );
      return record;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Stages a host code folder for the run: its files (without .git, __pycache__,
   * .ipynb_checkpoints; at most 300 MiB) go to `jobs/<jobId>/code/`, which runs can read but not
   * write, and the run's python_file is taken from there. The digest is the folder's manifest
   * digest (the same definition as a local job's `codeDigest` and an Azure ML code asset's name),
   * computed from the very bytes uploaded: a file that changes while it is read fails the submit
   * (`code_changed`). So the digest names exactly the code the run can execute.
   */
  private async stageCode(jobId: string, code: string): Promise<{ path: string; digest: string }> {
    const o = this.options;
    const dir = o.codeRoot
      ? await confineCodeFolder(code, o.codeRoot, o.codeBaseDir)
      : path.resolve(o.codeBaseDir ?? process.cwd(), code);
    const s = await stat(dir).catch(() => undefined);
    if (!s?.isDirectory())
      throw new NonRetriableError(
        'code_folder_missing',
        `the code folder ${dir} ${s ? 'is not a folder' : 'does not exist'} (give a host folder as a relative path, or a workspace path such as /Workspace/Users/you/job)`,
      );
    let kept;
    try {
      const read = await readManifest(dir, { maxBytes: CODE_MAX_BYTES });
      kept = read.manifest.filter((f) => !f.path.split('/').some((seg) => SKIPPED_FOLDERS.has(seg)));
    } catch (err) {
      if (err instanceof NonRetriableError)
        throw new NonRetriableError(
          'code_folder_invalid',
          `the code folder ${dir} cannot be staged: ${err.message.replace(/model folder/g, 'folder')}`,
        );
      throw err;
    }
    if (kept.length === 0)
      throw new NonRetriableError('code_folder_invalid', `the code folder ${dir} has no files to stage`);
    for (const f of kept) {
      const bytes = await readFile(path.join(dir, ...f.path.split('/')));
      if (createHash('sha256').update(bytes).digest('hex') !== f.sha256)
        throw new NonRetriableError(
          'code_changed',
          `${f.path} in ${dir} changed while it was staged; submit again`,
        );
      await this.options.store.put(
        { container: jobsContainer, path: jobPath(jobId, `code/${f.path}`) },
        bytes,
        {
          contentType: 'application/octet-stream',
          condition: 'overwrite',
        },
      );
    }
    return { path: `${this.root}/${jobId}/code`, digest: manifestDigest(kept) };
  }

  /**
   * Stages Sluice's launcher (databricksLauncher.ts) at `jobs/<jobId>/launcher/sluice_launch.py`,
   * where runs can read but not write it, for a spark_python run on an existing cluster or
   * serverless compute; returns its path as the run sees it.
   */
  private async stageLauncher(jobId: string): Promise<string> {
    await this.options.store.put(
      { container: jobsContainer, path: jobPath(jobId, LAUNCHER_FILE) },
      Buffer.from(LAUNCHER_SOURCE, 'utf8'),
      { contentType: 'text/x-python', condition: 'overwrite' },
    );
    return `${this.root}/${jobId}/${LAUNCHER_FILE}`;
  }

  async submit(input: TrainingJobRequestInput): Promise<{ jobId: string; created: boolean }> {
    const request = trainingJobRequestSchema.parse(input);
    const { jobId, spec } = request;
    if (!isCustomSpec(spec)) {
      throw new NonRetriableError(
        'databricks_custom_only',
        `the databricks backend runs your own code only (algorithm "custom"), not ${spec.algorithm}`,
      );
    }
    if (await this.readRecord(jobId)) return { jobId, created: false };
    const store = this.options.store;
    // Written first: the run's webhook events find their monitor through it.
    // Without the MLflow link: it is made anew before each submit and may differ between attempts.
    const { mlflow: _link, ...stored } = request;
    await store.putJson({ container: jobsContainer, path: jobPath(jobId, 'request.json') }, stored, {
      condition: 'create',
    });
    let staged: { path: string; digest: string } | undefined;
    if (isHostCodeFolder(spec.code)) {
      if ((spec.databricks?.task ?? 'spark_python') !== 'spark_python')
        throw new NonRetriableError(
          'databricks_code_unsupported',
          `a ${spec.databricks?.task} task runs code Databricks already has: give its workspace path (absolute), not the host folder ${spec.code}`,
        );
      staged = await this.stageCode(jobId, spec.code);
    }
    const record = await this.stageData(request, staged?.digest);
    const launcher = usesLauncher(spec) ? await this.stageLauncher(jobId) : undefined;
    const body = runSubmitBody({
      jobId,
      spec: staged ? { ...spec, code: staged.path } : spec,
      variables: this.variables(jobId, record, spec),
      env: mlflowJobVariables(request.mlflow, 'databricks'),
      ...(launcher ? { launcher } : {}),
      ...(this.options.webhookDestinationId
        ? { webhookDestinationId: this.options.webhookDestinationId }
        : {}),
    });
    // idempotency_token = jobId: a retry of this call (here or after a crash) gets the same run.
    const runId = await this.options.client.submit(body);
    await store.putJson(
      { container: jobsContainer, path: runIndexPath(runId) },
      { jobId, runId },
      { condition: 'overwrite' },
    );
    const put = await store.putJson(
      { container: jobsContainer, path: jobPath(jobId, 'databricks.json') },
      { jobId, runId, submittedAt: iso(this.now()) } satisfies DatabricksRunRecord,
      { condition: 'create' },
    );
    if (!put.ok) {
      // A concurrent submit of the same job recorded it first: same token, so the same run.
      const other = await this.readRecord(jobId);
      if (other && other.runId !== runId)
        throw new NonRetriableError(
          'databricks_duplicate_run',
          `job ${jobId} is recorded as run ${other.runId} but Databricks answered run ${runId} for the same idempotency token`,
        );
      return { jobId, created: false };
    }
    return { jobId, created: true };
  }

  private async readOutcome(jobId: string): Promise<Outcome | undefined> {
    const got = await this.options.store.tryGetJson({
      container: jobsContainer,
      path: jobPath(jobId, 'outcome.json'),
    });
    const parsed = outcomeSchema.safeParse(got?.value);
    return parsed.success ? parsed.data : undefined;
  }

  /** Records a final outcome once; whoever wrote first wins and everyone answers with that one. */
  private async recordOutcome(outcome: Outcome): Promise<Outcome> {
    const at = { container: jobsContainer, path: jobPath(outcome.jobId, 'outcome.json') };
    const put = await this.options.store.putJson(at, outcome, { condition: 'create' });
    if (put.ok) return outcome;
    return (await this.readOutcome(outcome.jobId)) ?? outcome;
  }

  private statusOf(o: Outcome): JobStatus {
    return {
      jobId: o.jobId,
      state: o.state,
      progress: o.state === 'completed' ? 1 : 0,
      iteration: 0,
      // The job's own metrics.json, as the run shows them while it is being judged.
      metrics: { ...(o.result?.metrics.job ?? {}) },
      logTail: o.logTail,
      backendStatus: o.backendStatus,
      finishedAt: o.finishedAt,
      ...(o.startedAt ? { startedAt: o.startedAt } : {}),
      ...(o.error ? { error: o.error } : {}),
      ...(o.result ? { result: o.result } : {}),
    };
  }

  /** Downloads, checks and stores the run's model folder; a bad folder is the job's failure. */
  private async collect(
    jobId: string,
  ): Promise<{ result: JobResult } | { error: { code: string; message: string } }> {
    const store = this.options.store;
    const got = await store.tryGetJson({
      container: jobsContainer,
      path: jobPath(jobId, 'data/sluice-job.json'),
    });
    const record = jobDataRecordSchema.safeParse(got?.value);
    if (!record.success) {
      return {
        error: {
          code: 'databricks_record_invalid',
          message: `jobs/${jobId}/data/sluice-job.json is missing or invalid`,
        },
      };
    }
    const maxBytes = this.options.maxModelBytes ?? defaultModelMaxBytes;
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-databricks-out-'));
    try {
      const out = path.join(dir, 'output');
      // Only the run's own folder of joboutputs is read: nothing it wrote elsewhere counts.
      await downloadBlobPrefix(store, { container: outputsContainer, path: `${jobId}/` }, out, {
        maxBytes,
      });
      // A folder written by Spark or dbutils may hold marker files (_SUCCESS, _committed_*): not model files.
      for (const name of await readdir(out))
        if (/^_(SUCCESS|committed_|started_)/.test(name)) await rm(path.join(out, name));
      const r = record.data;
      const result = await collectJobModel(
        store,
        out,
        {
          target: r.target,
          task: r.task,
          featureKinds: r.featureKinds,
          ...(r.classes ? { classes: r.classes } : {}),
          sample: r.sample,
          train: { csv: '', parquet: '', rows: r.rows.train },
          validation: { csv: '', parquet: '', rows: r.rows.validation },
          holdout: { csv: '', parquet: '', rows: r.rows.holdout },
        },
        maxBytes,
      );
      // The code that ran is the code Sluice staged (read-only to runs): its digest goes with the model.
      return { result: r.codeDigest ? { ...result, codeDigest: r.codeDigest } : result };
    } catch (err) {
      if (err instanceof NonRetriableError) return { error: { code: err.code, message: err.message } };
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The failed task run's error and the end of its trace (runs/get-output). */
  private async failureDetails(run: Run): Promise<{ message?: string; logTail: string[] }> {
    const taskRunId = run.tasks?.[0]?.run_id;
    if (!taskRunId) return { logTail: [] };
    try {
      const output = await this.options.client.getOutput(taskRunId);
      return {
        ...(output.error ? { message: output.error } : {}),
        logTail: tail(output.error_trace ?? output.logs),
      };
    } catch (err) {
      // The run's own state already says it failed; the details are a bonus.
      if (err instanceof SluiceError) return { logTail: [`(runs/get-output: ${err.message})`] };
      throw err;
    }
  }

  async status(jobId: string): Promise<JobStatus> {
    const recorded = await this.readOutcome(jobId);
    if (recorded) return this.statusOf(recorded);
    const record = await this.readRecord(jobId);
    if (!record)
      throw new NonRetriableError(
        'databricks_job_not_found',
        `no Databricks run was submitted for job ${jobId}`,
      );
    const run = await this.options.client.getRun(record.runId);
    const mapped = mapRunState(run);
    const startedAt = run.start_time ? { startedAt: iso(run.start_time) } : {};
    if (mapped.state === 'queued') {
      const stuck = this.queuedTooLong(record, mapped.backendStatus);
      if (stuck) {
        await this.cancelQuietly(record.runId);
        return this.statusOf(
          await this.recordOutcome({
            jobId,
            backendStatus: mapped.backendStatus,
            finishedAt: iso(this.now()),
            ...startedAt,
            logTail: [],
            state: 'failed',
            error: { code: 'queued_too_long', message: stuck },
          }),
        );
      }
    }
    if (mapped.state === 'queued' || mapped.state === 'running') {
      return {
        jobId,
        state: mapped.state,
        progress: 0,
        iteration: 0,
        metrics: {},
        logTail: [],
        backendStatus: mapped.backendStatus,
        ...startedAt,
      };
    }
    const finishedAt = iso(run.end_time || this.now());
    const base = {
      jobId,
      backendStatus: mapped.backendStatus,
      finishedAt,
      ...startedAt,
      logTail: [] as string[],
    };
    if (mapped.state === 'completed') {
      const collected = await this.collect(jobId);
      const outcome: Outcome =
        'result' in collected
          ? { ...base, state: 'completed', result: collected.result }
          : { ...base, state: 'failed', error: collected.error };
      return this.statusOf(await this.recordOutcome(outcome));
    }
    if (mapped.state === 'canceled') {
      return this.statusOf(await this.recordOutcome({ ...base, state: 'canceled' }));
    }
    const details = await this.failureDetails(run);
    const error = {
      code: mapped.error?.code ?? 'databricks_failed',
      message: details.message
        ? `${mapped.error?.message ?? 'the Databricks run failed'}; the task's error: ${details.message}`
        : (mapped.error?.message ?? 'the Databricks run failed'),
    };
    return this.statusOf(
      await this.recordOutcome({ ...base, state: 'failed', error, logTail: details.logTail }),
    );
  }

  /**
   * Scores a python_function-only model with the pipeline's `score` command as a Databricks
   * one-time run on the pipeline's compute: the model folder and the rows' features are staged
   * read-only in `jobs/<scoreJobId>/` (`SLUICE_MODEL`, `SLUICE_INPUT` under the job root), a host
   * code folder as for training, and the run writes `SLUICE_PREDICTIONS` =
   * `<output root>/<scoreJobId>/predictions-<32 random hex>.csv`. The random part is drawn once per
   * score job and kept in `jobs/<scoreJobId>/score.json` (with the run id) before the submit, so a
   * retried call reattaches to the same run and reads where it wrote, while no other run can know
   * the name before it is written. `idempotency_token` = the score job id (derived from the model
   * digest, rows, command and task). Waited for, polling, up to the queued limit plus the time
   * limit; the predictions are size-checked, pinned on first read (scorePredictions.ts: every run
   * can write `joboutputs`) and get the host's checks.
   *
   * A score job that ended failed or canceled (a time limit, a cancel) does not fail the model's
   * scoring for good: the next call submits a new one under `<scoreJobId>-a<n>`, at most
   * MAX_SCORE_ATTEMPTS in all.
   */
  async score(input: RemoteScoreInput): Promise<Scores> {
    const { spec } = input;
    if ((spec.databricks?.task ?? 'spark_python') !== 'spark_python')
      throw new NonRetriableError(
        'databricks_score_unsupported',
        `the score command runs as a spark_python task; a ${spec.databricks?.task} pipeline cannot score a python_function model on Databricks`,
      );
    const prepared = await prepareScore(input, this.options.maxModelBytes ?? defaultModelMaxBytes);
    const ended: string[] = [];
    for (let attempt = 0; attempt < MAX_SCORE_ATTEMPTS; attempt++) {
      const jobId = scoreAttemptId(prepared.jobId, attempt);
      const record = await this.options.store.tryGetJson(
        { container: jobsContainer, path: jobPath(jobId, 'score.json') },
        scoreRecordSchema,
      );
      if (record?.value.runId) {
        const mapped = mapRunState(await this.options.client.getRun(record.value.runId));
        if (mapped.state === 'failed' || mapped.state === 'canceled') {
          ended.push(`run ${record.value.runId} ${mapped.state} (${mapped.backendStatus})`);
          continue;
        }
      }
      return this.scoreAttempt(jobId, record?.value, prepared, input);
    }
    throw new NonRetriableError(
      'score_failed',
      `${MAX_SCORE_ATTEMPTS} Databricks score runs for this model and rows ended without predictions, so no more are submitted: ${ended.join('; ')}`,
    );
  }

  /** One score job: staged, submitted (or reattached to) and waited for. */
  private async scoreAttempt(
    jobId: string,
    record: ScoreRecord | undefined,
    prepared: PreparedScore,
    input: RemoteScoreInput,
  ): Promise<Scores> {
    const { spec } = input;
    const store = this.options.store;
    const recordAt = { container: jobsContainer, path: jobPath(jobId, 'score.json') };
    let nonce = record?.nonce;
    if (!nonce) {
      const drawn = randomBytes(16).toString('hex');
      const put = await store.putJson(recordAt, { jobId, nonce: drawn }, { condition: 'create' });
      // Another call drew first: its name is the one the run was (or will be) given.
      nonce = put.ok ? drawn : (await store.getJson(recordAt, scoreRecordSchema)).value.nonce;
    }
    const predictions = `${jobId}/predictions-${nonce}.csv`;
    if (!record?.runId) {
      await stageScoreInputs(store, jobsContainer, jobId, prepared);
    }
    // Staged before the first submit; a retried call reattaches to the run that reads it.
    const launcher = usesLauncher(spec)
      ? record?.runId
        ? `${this.root}/${jobId}/${LAUNCHER_FILE}`
        : await this.stageLauncher(jobId)
      : undefined;
    const staged = isHostCodeFolder(spec.code) ? await this.stageCode(jobId, spec.code) : undefined;
    const variables: Record<string, string> = {
      ...prepared.values,
      SLUICE_MODEL: `${this.root}/${jobId}/model`,
      SLUICE_INPUT: `${this.root}/${jobId}/input.csv`,
      SLUICE_PREDICTIONS: `${this.outputRoot}/${predictions}`,
    };
    delete variables.PYTHONUNBUFFERED;
    const body = runSubmitBody({
      jobId,
      spec: staged ? { ...spec, code: staged.path } : spec,
      variables,
      scoring: {
        command: spec.score!,
        known: SCORE_COMMAND_VARIABLE_NAMES,
        outputVariable: 'SLUICE_PREDICTIONS',
      },
      ...(launcher ? { launcher } : {}),
    });
    const runId = await this.options.client.submit(body); // same token, same run on a retry
    if (record?.runId !== runId)
      await store.putJson(recordAt, { jobId, nonce, runId } satisfies ScoreRecord, {
        condition: 'overwrite',
      });
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const started = this.now();
    const limit =
      (this.options.queuedLimitSeconds ?? DEFAULT_QUEUED_LIMIT_SECONDS) + spec.timeLimitSeconds + 600;
    for (;;) {
      const run = await this.options.client.getRun(runId);
      const mapped = mapRunState(run);
      if (mapped.state === 'completed') {
        const text = await readPinnedPredictions(
          store,
          jobId,
          { container: outputsContainer, path: predictions },
          this.options.maxPredictionBytes,
        );
        return scoresOf(text, prepared, input);
      }
      if (mapped.state === 'failed') {
        const details = await this.failureDetails(run);
        throw new NonRetriableError(
          'score_failed',
          `the Databricks score run ${runId} failed: ${mapped.error?.message ?? mapped.backendStatus}${details.message ? `; the task's error: ${details.message}` : ''}`,
        );
      }
      if (mapped.state === 'canceled')
        throw new NonRetriableError('score_canceled', `the Databricks score run ${runId} was canceled`);
      const waited = Math.round((this.now() - started) / 1000);
      if (waited > limit) {
        await this.cancelQuietly(runId);
        throw new NonRetriableError(
          'score_time_limit_exceeded',
          `the Databricks score run ${runId} did not end within ${limit} s; it was canceled`,
        );
      }
      await sleep(this.options.scorePollMs ?? 15_000);
    }
  }

  /** How long the run has waited since submit, when it is still queued past the limit. */
  private queuedTooLong(record: DatabricksRunRecord, backendStatus: string): string | undefined {
    const since = Date.parse(record.submittedAt);
    if (Number.isNaN(since)) return undefined;
    const limit = this.options.queuedLimitSeconds ?? DEFAULT_QUEUED_LIMIT_SECONDS;
    const waited = Math.round((this.now() - since) / 1000);
    if (waited <= limit) return undefined;
    return `Databricks has kept run ${record.runId} ${backendStatus} for ${waited} s, over the limit of ${limit} s (no cluster capacity or concurrency limit reached); it was canceled`;
  }

  /** Cancels a run that is being given up on; the outcome is recorded whatever Databricks answers. */
  private async cancelQuietly(runId: string): Promise<void> {
    try {
      await this.options.client.cancel(runId);
    } catch (err) {
      if (!(err instanceof SluiceError)) throw err;
    }
  }

  async cancel(jobId: string): Promise<void> {
    if (await this.readOutcome(jobId)) return;
    const record = await this.readRecord(jobId);
    if (!record) return; // never submitted: nothing runs
    const run = await this.options.client.getRun(record.runId);
    const { state } = mapRunState(run);
    if (state === 'completed' || state === 'failed' || state === 'canceled') return;
    await this.options.client.cancel(record.runId);
  }
}

/** The job a Databricks run belongs to, through the index `submit` writes (undefined: not Sluice's). */
export async function jobOfRun(
  store: Pick<ArtifactStore, 'tryGetJson'>,
  runId: string,
): Promise<string | undefined> {
  if (!/^\d{1,20}$/.test(runId)) return undefined;
  const got = await store.tryGetJson({ container: jobsContainer, path: runIndexPath(runId) });
  const parsed = z.object({ jobId: z.string(), runId: z.string() }).safeParse(got?.value);
  return parsed.success && parsed.data.runId === runId ? parsed.data.jobId : undefined;
}
