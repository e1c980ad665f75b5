import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NonRetriableError } from '../../errors';
import resources from '../../resources.json';
import type { JobFiles, JobStatus, JobStatusFile, TrainingBackend } from './types';
import type { JobState, TrainingJobRequest, TrainingJobRequestInput } from '../../contracts/trainingJob';
import { heartbeatSchema, isTerminal, jobPath, jobStatusFileSchema, statusFromFiles } from './types';
import { trainingJobRequestSchema } from '../../contracts/trainingJob';
import type { CustomTrainingSpec } from '../../contracts/trainingSpec';
import { isCustomSpec } from '../../contracts/trainingSpec';
import { JOB_CONTRACT_VERSION } from '../../contracts/job';
import { defaultModelMaxBytes } from '../../mlmodel/folder';
import type { ArtifactStore } from '../../storage/blob';
import { parseCommand } from '../userJob/command';
import { collectJobModel, downloadBlobPrefix, prepareJobData } from '../userJob/output';
import { grantJobOutput, jobOutputContainer } from '../userJob/outputGrant';
import { codeFolderDigest } from '../userJob/codeDigest';
import { collectWorkerModel } from './azuremlWorkerModel';
import type { PreparedScore, RemoteScoreInput } from './azuremlScore';
import { prepareScore, scoresOf, stageScoreInputs } from './azuremlScore';
import { MAX_SCORE_ATTEMPTS, readPinnedPredictions, scoreAttemptId } from './scorePredictions';
import type { Scores } from '../../mlmodel/onnxModel';
import type { AzureMlClientOptions } from './azuremlClient';
import { AzureMlClient } from './azuremlClient';
import { mlflowJobVariables } from './mlflowEnv';
import type { UserJobRecord } from './azuremlUserJob';
import {
  MODEL_OUTPUT,
  azuremlCommandLine,
  computeOf,
  dataFiles,
  isAssetReference,
  jobDataOf,
  jobLogTail,
  resolveCode,
  resolveEnvironment,
  userJobRecordSchema,
  valueVariables,
} from './azuremlUserJob';

export { DEFAULT_AZUREML_API_VERSION } from './azuremlClient';

/**
 * Azure Machine Learning command jobs over the ARM REST API (Jobs - Create Or Update / Get /
 * Cancel), authenticated with a Microsoft Entra token for `https://management.azure.com/.default`
 * (the Function App's managed identity in Azure). Two kinds of job:
 *
 * - **Built-in algorithms** run Sluice's own worker: its input is the dataset blob, its output
 *   folder is the job's own output container (below), so status, log tail, metrics and the model
 *   land where `status` reads them. Azure ML's own status decides the state. When it
 *   says Completed, the MLflow folder the worker wrote to `model/` is checked and stored once
 *   (`collectWorkerModel`), so the result names the folder and its `artifact`, as on every other
 *   path; a worker output without `model/` keeps its legacy `model.json` result.
 * - **User code** (`algorithm: "custom"`, `sluice.job/v1`): the job data is prepared and staged
 *   under `jobs/<jobId>/data/` as `uri_file` inputs, the user's command runs in their code asset and
 *   environment, and writes the MLflow model folder to the `uri_folder` output
 *   `output/` of the job's own output container. When Azure ML says Completed, `status` downloads
 *   that folder, checks it (`collectJobModel`) and records the outcome in `jobs/<jobId>/status.json`,
 *   once: later polls answer from the record.
 *
 * **What a job can write.** The job's output goes to a container of its own
 * (`jobout-<hash of the job id>`, userJob/outputGrant.ts) through a datastore of its own
 * (`sluiceout_<same hash>`) whose credential is a SAS for that container alone (read, add, create,
 * write, list; no delete), valid for the queue limit plus the time limit plus an hour. The
 * jobs' identity the job runs as has no write role on the artifact account (infra/modules/
 * roles.bicep: Storage Blob Data Reader on `jobs` and `datasets` for its inputs), so a job cannot
 * touch Sluice's records (`jobs/<jobId>/request.json`, `userjob.json`, `status.json`,
 * `cancel.json`, `model-collected.json`), another job's output, or the registry's models. The
 * per-job datastore (it holds the SAS) is deleted once the outcome is recorded, so Azure ML hands
 * the SAS to nothing more; deleting it does NOT revoke the SAS, which stays valid until its expiry
 * (a SAS cannot be revoked short of rotating the key that signed it). Whoever holds it can still
 * write the container until then, so nothing Sluice decides rests on re-reading it: the model is
 * copied to the `models` container and the outcome recorded write-once when the job ends, and a
 * score job's predictions are pinned by digest on first read (scorePredictions.ts). The container
 * stays for inspection.
 *
 * A job still queued (NotStarted … Queued) longer than `queuedLimitSeconds` after its creation is
 * canceled and fails with `queued_too_long`.
 */
export interface AzureMlOptions extends AzureMlClientOptions {
  /**
   * The user-assigned identity jobs run as (attached to the workspace; Bicep grants it read access
   * to the jobs and datasets containers only: jobs write through their per-job SAS). Serverless compute cannot use the workspace's system-assigned identity, so
   * without it a job has no identity to read identity-based datastores with.
   */
  jobIdentity?: { clientId: string; resourceId?: string };
  /** ARM id of a compute cluster; omitted = serverless compute with `instanceType`. */
  computeId?: string;
  instanceType?: string;
  /** Built-in algorithms: the environment with Node.js 22 and the Sluice worker. */
  environmentId?: string;
  codeId?: string;
  /** The command run in the job; `${{inputs.*}}` / `${{outputs.*}}` are expanded by Azure ML. */
  command?: string;
  /** Blob endpoint of the artifact account, e.g. https://acct.blob.core.windows.net. */
  storageBlobEndpoint: string;
  /** Reads the files the job writes into its output folder. */
  files?: JobFiles;
  heartbeatStaleMs?: number;
  now?: () => number;
  /** User jobs: the artifact store (dataset in, staged data and model folder out). */
  store?: ArtifactStore;
  /** User jobs: the environment when the spec names none (an asset or a Docker image). */
  userJobEnvironment?: string;
  /** User jobs: where a relative `code` folder is (default: the working folder). */
  codeBaseDir?: string;
  /** User jobs: when set, a code folder must be inside it (USER_CODE_ROOT) to be uploaded. */
  codeRoot?: string;
  /** User jobs: the workspace storage's Blob endpoint (default from its datastore; tests). */
  workspaceStorageEndpoint?: string;
  /** The model folder's size limit (default 512 MiB): user jobs, and the worker's `model/` folder. */
  maxModelBytes?: number;
  /**
   * User jobs: a workspace datastore on the artifact account's `jobs` container. When set, the
   * job's inputs and output are `azureml://datastores/<name>/paths/<jobId>/…` (identity-based
   * access through the datastore); otherwise https Blob URLs of `storageBlobEndpoint`.
   */
  jobsDatastore?: string;
  /** A job queued longer than this fails with `queued_too_long` (default 4 hours). */
  queuedLimitSeconds?: number;
  /** How often `score` asks Azure ML about a score job (default 15 s). */
  scorePollMs?: number;
  /** The largest predictions file a score job may write (default 1 GiB, as on the host). */
  maxPredictionBytes?: number;
}

/** The per-job datastore whose SAS credential is the job's only write access (see the file's comment). */
export const jobOutputDatastore = (jobId: string): string =>
  jobOutputContainer(jobId).replace(/^jobout-/, 'sluiceout_');

/** How long a job may wait for compute by default before Sluice gives up on it. */
export const DEFAULT_QUEUED_LIMIT_SECONDS = 4 * 3600;

/** Azure ML job status → Sluice job state. */
export function mapAzureMlStatus(status: string): JobState {
  switch (status) {
    case 'Completed':
      return 'completed';
    case 'Failed':
      return 'failed';
    case 'Canceled':
      return 'canceled';
    case 'Running':
    case 'Finalizing':
    case 'CancelRequested':
    case 'NotResponding':
      return 'running';
    default:
      // NotStarted, Starting, Provisioning, Preparing, Queued, Scheduled, Paused, Unknown
      return 'queued';
  }
}

interface ArmJob {
  name?: string;
  properties?: {
    status?: string;
    displayName?: string;
    tags?: Record<string, string>;
    services?: Record<string, { endpoint?: string } | undefined>;
  };
  systemData?: { createdAt?: string };
}

const jobsContainer = resources.blobContainers.jobs;

/**
 * A failure message with as many of the log's last lines (each cut to 300 characters) as fit in
 * 2,000 characters, the most a run's error keeps: the end of the log is what explains a failure.
 */
export function withLogTail(summary: string, logTail: readonly string[], max = 2_000): string {
  const head = `${summary}; last lines of the log:`;
  const kept: string[] = [];
  let length = head.length;
  for (const line of logTail.slice(-20).reverse()) {
    const l = line.length > 300 ? `${line.slice(0, 297)}...` : line;
    if (length + 1 + l.length > max) break;
    kept.unshift(l);
    length += 1 + l.length;
  }
  return kept.length ? `${head}\n${kept.join('\n')}` : summary;
}
const QUEUED_STATES = new Set(['NotStarted', 'Starting', 'Provisioning', 'Preparing', 'Queued', 'Scheduled']);

export class AzureMlTrainingBackend implements TrainingBackend {
  readonly name = 'azureml' as const;
  readonly client: AzureMlClient;
  private readonly now: () => number;

  constructor(private readonly options: AzureMlOptions) {
    this.client = new AzureMlClient(options);
    this.now = options.now ?? Date.now;
  }

  private blobUri(container: string, path: string): string {
    return `${this.options.storageBlobEndpoint.replace(/\/$/, '')}/${container}/${path}`;
  }

  /** Where a user job's file in the `jobs` container is, as the job's input or output names it. */
  private jobsUri(path: string): string {
    const ds = this.options.jobsDatastore;
    return ds
      ? `azureml://datastores/${encodeURIComponent(ds)}/paths/${path}`
      : this.blobUri(jobsContainer, path);
  }

  private jobId(jobId: string): string {
    return this.client.armId('jobs', jobId);
  }

  /**
   * The job's write access: its own output container and a datastore of its own whose credential
   * is that container's SAS. Both are idempotent (a retried submit re-signs and re-puts them).
   * Returns the datastore's root as a job output URI.
   */
  private async outputDatastore(jobId: string, timeLimitSeconds: number): Promise<string> {
    const store = this.options.store!;
    const validForSeconds =
      (this.options.queuedLimitSeconds ?? DEFAULT_QUEUED_LIMIT_SECONDS) + timeLimitSeconds + 3600;
    const grant = await grantJobOutput(store, jobId, { validForSeconds, now: this.now });
    const url = new URL(store.service.url);
    const prefix = `${grant.accountName}.blob.`;
    const name = jobOutputDatastore(jobId);
    await this.client.arm('PUT', this.client.armId('datastores', name), `create datastore ${name}`, {
      properties: {
        datastoreType: 'AzureBlob',
        description: `Sluice job ${jobId}: its own output container, writable with a SAS until ${grant.expiresOn.toISOString()}`,
        tags: { 'sluice.jobId': jobId },
        accountName: grant.accountName,
        containerName: grant.container,
        endpoint: url.host.startsWith(prefix) ? url.host.slice(prefix.length) : 'core.windows.net',
        protocol: url.protocol.replace(/:$/, ''),
        credentials: { credentialsType: 'Sas', secrets: { secretsType: 'Sas', sasToken: grant.sasToken } },
      },
    });
    return `azureml://datastores/${name}/paths/`;
  }

  /**
   * Removes the job's datastore (it holds the SAS) once the outcome is recorded; best effort. The
   * SAS itself stays valid to its expiry: this only stops Azure ML handing it out.
   */
  private async dropOutputDatastore(jobId: string): Promise<void> {
    if (!this.options.store) return;
    await this.client
      .send('DELETE', this.client.url(this.client.armId('datastores', jobOutputDatastore(jobId))))
      .catch(() => undefined);
  }

  /**
   * Where the job's own files are: its output container when Sluice granted one (every job
   * submitted with a store), else (in-memory files, tests of the worker's status files) `jobs/<jobId>/`.
   */
  private jobFile(jobId: string, file: string): { container: string; path: string } {
    return this.options.store
      ? { container: jobOutputContainer(jobId), path: file }
      : { container: jobsContainer, path: jobPath(jobId, file) };
  }

  /** The job as Azure ML has it; a missing job is `azureml_job_not_found`. */
  private async getJob(jobId: string): Promise<ArmJob> {
    const res = await this.client.send('GET', this.client.url(this.jobId(jobId)));
    if (res.status !== 200)
      throw this.client.fail(`read job ${jobId}`, res, { notFoundCode: 'azureml_job_not_found' });
    return res.json as ArmJob;
  }

  async submit(input: TrainingJobRequestInput): Promise<{ jobId: string; created: boolean }> {
    const request = trainingJobRequestSchema.parse(input);
    const { jobId, spec } = request;
    const existing = await this.client.send('GET', this.client.url(this.jobId(jobId)));
    if (existing.status === 200) return { jobId, created: false };
    if (existing.status !== 404) throw this.client.fail(`read job ${jobId}`, existing);

    const properties = isCustomSpec(spec)
      ? await this.userJobProperties(request, spec)
      : await this.workerJobProperties(request);
    await this.client.arm('PUT', this.jobId(jobId), `create job ${jobId}`, { properties });
    return { jobId, created: true };
  }

  private common(request: TrainingJobRequest): Record<string, unknown> {
    const { jobId, spec } = request;
    return {
      jobType: 'Command',
      displayName: `sluice ${jobId}`,
      experimentName: 'sluice',
      limits: { jobLimitsType: 'Command', timeout: `PT${spec.timeLimitSeconds}S` },
      identity: this.jobIdentity(),
    };
  }

  /** The identity jobs run as: the jobs' user-assigned identity when configured. */
  private jobIdentity(): Record<string, unknown> {
    return {
      identityType: 'Managed',
      ...(this.options.jobIdentity
        ? {
            clientId: this.options.jobIdentity.clientId,
            ...(this.options.jobIdentity.resourceId
              ? { resourceId: this.options.jobIdentity.resourceId }
              : {}),
          }
        : {}),
    };
  }

  /** Built-in algorithms: Sluice's worker in its Node.js environment. */
  private async workerJobProperties(request: TrainingJobRequest): Promise<Record<string, unknown>> {
    const { jobId, spec } = request;
    const o = this.options;
    if (!o.environmentId)
      throw new NonRetriableError(
        'azureml_not_configured',
        `${spec.algorithm} on azureml runs the Sluice worker, which needs AZUREML_ENVIRONMENT_ID (an environment with Node.js 22 and the worker)`,
      );
    const properties: Record<string, unknown> = {
      ...this.common(request),
      description: `Sluice training job ${jobId} (${spec.algorithm})`,
      tags: { 'sluice.jobId': jobId, ...(request.runId ? { 'sluice.runId': request.runId } : {}) },
      environmentId: o.environmentId,
      ...(o.codeId ? { codeId: o.codeId } : {}),
      ...(o.computeId
        ? { computeId: o.computeId }
        : { resources: { instanceCount: 1, instanceType: o.instanceType ?? 'Standard_DS3_v2' } }),
      command:
        o.command ??
        'node worker/trainingJob.js --request ${{inputs.request}} --dataset ${{inputs.dataset}} --out ${{outputs.job}}',
      inputs: {
        request: {
          jobInputType: 'uri_file',
          uri: this.blobUri(jobsContainer, jobPath(jobId, 'request.json')),
          mode: 'Download',
        },
        dataset: { jobInputType: 'uri_file', uri: request.dataset.uri, mode: 'Download' },
      },
      outputs: {
        job: {
          jobOutputType: 'uri_folder',
          uri: o.store
            ? await this.outputDatastore(jobId, spec.timeLimitSeconds)
            : this.blobUri(jobsContainer, `${jobId}/`),
          mode: 'ReadWriteMount',
        },
      },
      environmentVariables: { SLUICE_JOB_ID: jobId, SLUICE_DATASET_SHA256: request.dataset.sha256 },
    };
    // The job reads its request from Blob: write it first (write-once; a retry finds it in place).
    if (o.files) {
      await o.files.put(
        { container: jobsContainer, path: jobPath(jobId, 'request.json') },
        JSON.stringify(request),
        { contentType: 'application/json', condition: 'create' },
      );
    }
    return properties;
  }

  /**
   * User code under `sluice.job/v1`: assets resolved (code uploaded once per folder digest, an
   * image's environment created once), the job data prepared and staged, the record written, and
   * the command job's body.
   */
  private async userJobProperties(
    request: TrainingJobRequest,
    spec: CustomTrainingSpec,
  ): Promise<Record<string, unknown>> {
    const { jobId } = request;
    const o = this.options;
    const store = o.store;
    if (!store)
      throw new NonRetriableError('azureml_not_configured', 'user jobs on azureml need the artifact store');
    if (spec.command === undefined)
      throw new NonRetriableError('bad_command', 'a custom job on azureml needs a command');
    parseCommand(spec.command); // a bad command fails before anything is uploaded
    const environment = spec.azureml?.environment ?? o.userJobEnvironment;
    if (!environment)
      throw new NonRetriableError(
        'azureml_environment_missing',
        'the job names no environment: set azureml.environment in the training spec (an environment asset or a Docker image) or AZUREML_USER_ENVIRONMENT',
      );
    const environmentId = await resolveEnvironment(this.client, environment);
    const codeId = await resolveCode(this.client, spec.code, {
      ...(o.codeBaseDir ? { baseDir: o.codeBaseDir } : {}),
      ...(o.codeRoot ? { codeRoot: o.codeRoot } : {}),
      ...(o.workspaceStorageEndpoint ? { storageEndpoint: o.workspaceStorageEndpoint } : {}),
    });

    // The uploaded folder's digest goes with the model, if it is the folder the asset was made from
    // (the asset's name carries the digest's first 32 hex; a folder edited meanwhile gets none).
    let codeDigest: string | undefined;
    if (!isAssetReference(spec.code)) {
      const digest = await codeFolderDigest(path.resolve(o.codeBaseDir ?? process.cwd(), spec.code));
      if (digest && codeId.includes(`/codes/sluice-code-${digest.slice(0, 32)}/`)) codeDigest = digest;
    }
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-azureml-'));
    try {
      const data = await prepareJobData(store, request, dir);
      const inputs: Record<string, unknown> = {};
      for (const f of dataFiles(data)) {
        const at = { container: jobsContainer, path: jobPath(jobId, `data/${f.name}`) };
        // Deterministic bytes (same dataset, same split): a retried submit writes the same again.
        await store.put(at, await readFile(f.local), {
          contentType: f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          condition: 'overwrite',
        });
        inputs[f.input] = {
          jobInputType: 'uri_file',
          uri: this.jobsUri(at.path),
          mode: 'Download',
        };
      }
      const record: UserJobRecord = {
        contract: JOB_CONTRACT_VERSION,
        jobId,
        submittedAt: new Date(this.now()).toISOString(),
        data: {
          target: data.target,
          features: data.features,
          featureKinds: data.featureKinds,
          task: data.task,
          ...(data.classes ? { classes: data.classes } : {}),
          seed: data.seed,
          rows: { train: data.train.rows, validation: data.validation.rows, holdout: data.holdout.rows },
          sample: data.sample,
        },
        codeId,
        ...(codeDigest ? { codeDigest } : {}),
        environmentId,
        timeLimitSeconds: spec.timeLimitSeconds,
      };
      // request.json (write-once, as every backend writes it) maps the job back to its run for the
      // Event Grid wake-up (lib/training/events.ts jobOwnerLookup).
      await store.put(
        { container: jobsContainer, path: jobPath(jobId, 'request.json') },
        // Without the MLflow link: it is made anew before each submit and may differ between attempts.
        JSON.stringify({ ...request, mlflow: undefined }),
        {
          contentType: 'application/json',
          condition: 'create',
        },
      );
      await store.put(
        { container: jobsContainer, path: jobPath(jobId, 'userjob.json') },
        JSON.stringify(record),
        {
          contentType: 'application/json',
          condition: 'overwrite',
        },
      );
      const values = valueVariables(jobId, data, spec.hyperparameters);
      const output = await this.outputDatastore(jobId, spec.timeLimitSeconds);
      return {
        ...this.common(request),
        description: `Sluice user job ${jobId} (${JOB_CONTRACT_VERSION})`,
        tags: {
          'sluice.jobId': jobId,
          'sluice.contract': JOB_CONTRACT_VERSION,
          ...(request.runId ? { 'sluice.runId': request.runId } : {}),
        },
        codeId,
        environmentId,
        ...computeOf(this.client, spec.azureml, {
          ...(o.computeId ? { computeId: o.computeId } : {}),
          instanceType: o.instanceType ?? 'Standard_DS3_v2',
        }),
        command: azuremlCommandLine(spec.command, values),
        // The MLflow run the job's own logging goes to (no credentials: lib/training/backends/mlflowEnv.ts).
        environmentVariables: { ...mlflowJobVariables(request.mlflow, 'azureml'), ...values },
        inputs,
        outputs: {
          [MODEL_OUTPUT]: {
            jobOutputType: 'uri_folder',
            uri: `${output}output/`,
            mode: 'Upload',
          },
        },
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async userJobRecord(jobId: string): Promise<UserJobRecord | undefined> {
    const store = this.options.store;
    if (!store) return undefined;
    const found = await store.tryGetJson({ container: jobsContainer, path: jobPath(jobId, 'userjob.json') });
    if (!found) return undefined;
    const parsed = userJobRecordSchema.safeParse(found.value);
    if (!parsed.success)
      throw new NonRetriableError(
        'job_record_invalid',
        `jobs/${jobId}/userjob.json: ${parsed.error.message}`,
      );
    return parsed.data;
  }

  /** How long the job has waited for compute, when Azure ML still has it queued. */
  private queuedTooLong(job: ArmJob, submittedAt?: string): string | undefined {
    const amlStatus = job.properties?.status ?? 'Unknown';
    if (!QUEUED_STATES.has(amlStatus)) return undefined;
    const since = Date.parse(job.systemData?.createdAt ?? submittedAt ?? '');
    if (Number.isNaN(since)) return undefined;
    const limit = this.options.queuedLimitSeconds ?? DEFAULT_QUEUED_LIMIT_SECONDS;
    const waited = Math.round((this.now() - since) / 1000);
    if (waited <= limit) return undefined;
    return `Azure ML has kept the job ${amlStatus} for ${waited} s, over the limit of ${limit} s (no compute free or quota reached); it was canceled`;
  }

  async status(jobId: string): Promise<JobStatus> {
    const record = await this.userJobRecord(jobId);
    if (record) return this.userJobStatus(jobId, record);
    const status = await this.workerStatus(jobId);
    // The job has ended: its datastore goes. The SAS it held stays valid to its expiry, so what
    // Sluice decided on (the outcome, the collected model) was recorded before, not re-read later.
    if (isTerminal(status.state)) await this.dropOutputDatastore(jobId);
    return status;
  }

  /** A built-in algorithm's job: Azure ML's status merged with the files the worker wrote. */
  private async workerStatus(jobId: string): Promise<JobStatus> {
    const job = await this.getJob(jobId);
    const amlStatus = job.properties?.status ?? 'Unknown';
    const state = mapAzureMlStatus(amlStatus);
    const base: JobStatus = {
      jobId,
      state,
      progress: state === 'completed' ? 1 : 0,
      iteration: 0,
      metrics: {},
      logTail: [],
      backendStatus: amlStatus,
    };
    const stuck = this.queuedTooLong(job);
    if (stuck) {
      await this.cancelQuietly(jobId);
      return { ...base, state: 'failed', error: { code: 'queued_too_long', message: stuck } };
    }
    const files = this.options.files;
    if (!files) return base;
    const statusFile = await files.tryGetJson(this.jobFile(jobId, 'status.json'));
    if (!statusFile) {
      if (state === 'completed') {
        return {
          ...base,
          state: 'failed',
          error: {
            code: 'no_model_output',
            message: 'Azure ML reports Completed but the job wrote no status or model',
          },
        };
      }
      return base;
    }
    const parsed = jobStatusFileSchema.safeParse(statusFile.value);
    if (!parsed.success) return base;
    const heartbeat = heartbeatSchema.safeParse(
      (await files.tryGetJson(this.jobFile(jobId, 'heartbeat.json')))?.value,
    );
    // Azure ML watches its own compute; the worker's heartbeat only matters while it says Running.
    const fromFiles = statusFromFiles(
      parsed.data,
      heartbeat.success ? heartbeat.data.at : undefined,
      this.now(),
      this.options.heartbeatStaleMs ?? 10 * 60_000,
    );
    const merged: JobStatus = { ...fromFiles, state, backendStatus: amlStatus };
    if (state === 'completed' && !fromFiles.result) {
      return {
        ...merged,
        state: 'failed',
        error: { code: 'no_model_output', message: 'Azure ML reports Completed but the job wrote no model' },
      };
    }
    if (state === 'completed' && fromFiles.result && this.options.store) {
      // The worker left its MLflow folder in <out>/model/: checked, stored and recorded once.
      const outcome = await collectWorkerModel(this.options.store, jobId, fromFiles.result, {
        maxBytes: this.options.maxModelBytes ?? defaultModelMaxBytes,
        now: this.now,
        source: this.jobFile(jobId, ''),
      });
      if (!outcome.ok) {
        const { result: _reported, ...rest } = merged;
        return { ...rest, state: 'failed', error: outcome.error };
      }
      return { ...merged, result: outcome.result };
    }
    if (state === 'failed' && !merged.error) {
      merged.error = parsed.data.error ?? { code: 'azureml_failed', message: `Azure ML job ${jobId} failed` };
    }
    return merged;
  }

  /**
   * A user job's status. Once it ended, the outcome is recorded in `jobs/<jobId>/status.json`
   * (first writer wins) and every later poll answers from it: the model is downloaded, checked and
   * stored once.
   */
  private async userJobStatus(jobId: string, record: UserJobRecord): Promise<JobStatus> {
    const store = this.options.store!;
    const statusRef = { container: jobsContainer, path: jobPath(jobId, 'status.json') };
    const recorded = await this.recordedStatus(jobId);
    if (recorded) return recorded;

    const job = await this.getJob(jobId);
    const amlStatus = job.properties?.status ?? 'Unknown';
    const state = mapAzureMlStatus(amlStatus);
    const nowIso = new Date(this.now()).toISOString();
    const end = async (
      file: Omit<JobStatusFile, 'jobId' | 'iteration' | 'metrics' | 'logTail' | 'updatedAt'> &
        Partial<JobStatusFile>,
    ): Promise<JobStatus> => {
      const full: JobStatusFile = {
        jobId,
        iteration: 0,
        metrics: {},
        logTail: [],
        startedAt: record.submittedAt,
        updatedAt: nowIso,
        finishedAt: nowIso,
        ...file,
      };
      await store.put(statusRef, JSON.stringify(full), {
        contentType: 'application/json',
        condition: 'create',
      });
      await this.dropOutputDatastore(jobId);
      // Another poll may have recorded first: its record is the outcome.
      return (
        (await this.recordedStatus(jobId)) ?? { ...statusFromFiles(full, undefined, this.now(), Infinity) }
      );
    };

    const stuck = this.queuedTooLong(job, record.submittedAt);
    if (stuck) {
      await this.cancelQuietly(jobId);
      return end({ state: 'failed', progress: 0, error: { code: 'queued_too_long', message: stuck } });
    }
    if (state === 'queued' || state === 'running') {
      return {
        jobId,
        state,
        progress: 0,
        iteration: 0,
        metrics: {},
        logTail: [],
        startedAt: record.submittedAt,
        backendStatus: amlStatus,
      };
    }
    if (state === 'canceled') {
      // Sluice's cancel leaves a marker; without one, Azure ML stopped the job at limits.timeout
      // (or someone canceled it in the studio, which a run cut short before its limit shows).
      const asked = await store.exists({ container: jobsContainer, path: jobPath(jobId, 'cancel.json') });
      const ranMs = this.now() - Date.parse(record.submittedAt);
      if (!asked && ranMs >= record.timeLimitSeconds * 1000) {
        return end({
          state: 'failed',
          progress: 0,
          error: {
            code: 'time_limit_exceeded',
            message: `Azure ML stopped the job at its time limit of ${record.timeLimitSeconds} s`,
          },
        });
      }
      return end({ state: 'canceled', progress: 0 });
    }
    const studio = job.properties?.services?.Studio?.endpoint;
    if (state === 'failed') {
      const logTail = await jobLogTail(this.client, jobId, {
        ...(this.options.workspaceStorageEndpoint
          ? { storageEndpoint: this.options.workspaceStorageEndpoint }
          : {}),
      });
      const summary = `the Azure ML job ${jobId} failed; its log (user_logs/std_log.txt) is in Azure ML studio${studio ? `: ${studio}` : ''}`;
      return end({
        state: 'failed',
        progress: 0,
        logTail,
        error: {
          code: 'job_failed',
          message: withLogTail(summary, logTail),
        },
      });
    }
    // Completed: the model folder the job wrote, downloaded, checked and stored.
    const maxBytes = this.options.maxModelBytes ?? defaultModelMaxBytes;
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-azureml-out-'));
    try {
      // Only the job's own container is read: nothing it could have written elsewhere counts.
      await downloadBlobPrefix(store, { container: jobOutputContainer(jobId), path: 'output/' }, dir, {
        maxBytes,
      });
      const collected = await collectJobModel(store, dir, jobDataOf(record), maxBytes);
      const result = record.codeDigest ? { ...collected, codeDigest: record.codeDigest } : collected;
      return end({ state: 'completed', progress: 1, result, metrics: result.metrics.job ?? {} });
    } catch (err) {
      if (!(err instanceof NonRetriableError)) throw err; // a storage hiccup: the next poll tries again
      return end({ state: 'failed', progress: 1, error: { code: err.code, message: err.message } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async recordedStatus(jobId: string): Promise<JobStatus | undefined> {
    const found = await this.options.store!.tryGetJson({
      container: jobsContainer,
      path: jobPath(jobId, 'status.json'),
    });
    const parsed = jobStatusFileSchema.safeParse(found?.value);
    if (!parsed.success || !isTerminal(parsed.data.state)) return undefined;
    return statusFromFiles(parsed.data, undefined, this.now(), Infinity);
  }

  /** Cancels a job Sluice gave up on; a failure here must not hide why it gave up. */
  private async cancelQuietly(jobId: string): Promise<void> {
    await this.cancel(jobId).catch(() => undefined);
  }

  /**
   * Scores a python_function-only model with the pipeline's `score` command as an Azure ML command
   * job (azuremlScore.ts): submitted once per model folder and rows (a retried call finds the same
   * job), then waited for, polling, up to the queued limit plus the score's time limit. The
   * predictions come back through the job's own SAS datastore, size-checked and pinned on first
   * read (scorePredictions.ts: the SAS outlives the datastore), and get the same checks as on the
   * host. A score job that ended failed or canceled (queued too long, a time limit) does not fail
   * the model's scoring for good: the next call submits `<scoreJobId>-a<n>`, at most
   * MAX_SCORE_ATTEMPTS in all.
   */
  async score(input: RemoteScoreInput): Promise<Scores> {
    const store = this.options.store;
    if (!store)
      throw new NonRetriableError('azureml_not_configured', 'scoring on azureml needs the artifact store');
    const prepared = await prepareScore(input, this.options.maxModelBytes ?? defaultModelMaxBytes);
    const ended: string[] = [];
    for (let attempt = 0; attempt < MAX_SCORE_ATTEMPTS; attempt++) {
      const jobId = scoreAttemptId(prepared.jobId, attempt);
      const existing = await this.client.send('GET', this.client.url(this.jobId(jobId)));
      if (existing.status === 200) {
        const status = (existing.json as ArmJob).properties?.status ?? 'Unknown';
        const state = mapAzureMlStatus(status);
        if (state === 'failed' || state === 'canceled') {
          ended.push(`${jobId} ${status}`);
          continue;
        }
      } else if (existing.status !== 404) {
        throw this.client.fail(`read job ${jobId}`, existing);
      }
      return this.scoreAttempt(jobId, existing.status === 404, prepared, input, store);
    }
    throw new NonRetriableError(
      'score_failed',
      `${MAX_SCORE_ATTEMPTS} Azure ML score jobs for this model and rows ended without predictions, so no more are submitted: ${ended.join('; ')}`,
    );
  }

  /** One score job: staged and created when `create`, then waited for and read. */
  private async scoreAttempt(
    jobId: string,
    create: boolean,
    prepared: PreparedScore,
    input: RemoteScoreInput,
    store: ArtifactStore,
  ): Promise<Scores> {
    const o = this.options;
    const { spec } = input;
    if (create) {
      const environment = spec.azureml?.environment ?? o.userJobEnvironment;
      if (!environment)
        throw new NonRetriableError(
          'azureml_environment_missing',
          'the score job names no environment: set azureml.environment in the training spec or AZUREML_USER_ENVIRONMENT',
        );
      const environmentId = await resolveEnvironment(this.client, environment);
      const codeId = await resolveCode(this.client, spec.code, {
        ...(o.codeBaseDir ? { baseDir: o.codeBaseDir } : {}),
        ...(o.codeRoot ? { codeRoot: o.codeRoot } : {}),
        ...(o.workspaceStorageEndpoint ? { storageEndpoint: o.workspaceStorageEndpoint } : {}),
      });
      // The model and the rows, staged where the job can read but not write.
      await stageScoreInputs(store, jobsContainer, jobId, prepared);
      const output = await this.outputDatastore(jobId, spec.timeLimitSeconds);
      await this.client.arm('PUT', this.jobId(jobId), `create score job ${jobId}`, {
        properties: {
          jobType: 'Command',
          displayName: `sluice ${jobId}`,
          experimentName: 'sluice',
          description: `Sluice score job ${jobId} (the pipeline's score command over the holdout)`,
          tags: { 'sluice.jobId': jobId, 'sluice.kind': 'score' },
          limits: { jobLimitsType: 'Command', timeout: `PT${spec.timeLimitSeconds}S` },
          identity: this.jobIdentity(),
          codeId,
          environmentId,
          ...computeOf(this.client, spec.azureml, {
            ...(o.computeId ? { computeId: o.computeId } : {}),
            instanceType: o.instanceType ?? 'Standard_DS3_v2',
          }),
          command: prepared.command,
          environmentVariables: prepared.values,
          inputs: {
            model: {
              jobInputType: 'uri_folder',
              uri: this.jobsUri(jobPath(jobId, 'model/')),
              mode: 'Download',
            },
            input: {
              jobInputType: 'uri_file',
              uri: this.jobsUri(jobPath(jobId, 'input.csv')),
              mode: 'Download',
            },
          },
          outputs: { predictions: { jobOutputType: 'uri_folder', uri: output, mode: 'Upload' } },
        },
      });
    }
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    const started = this.now();
    const limitMs =
      ((o.queuedLimitSeconds ?? DEFAULT_QUEUED_LIMIT_SECONDS) + spec.timeLimitSeconds + 600) * 1000;
    try {
      for (;;) {
        const job = await this.getJob(jobId);
        const status = job.properties?.status ?? 'Unknown';
        const state = mapAzureMlStatus(status);
        const stuck = this.queuedTooLong(job);
        if (stuck) {
          await this.cancelQuietly(jobId);
          throw new NonRetriableError('queued_too_long', stuck);
        }
        if (state === 'completed') {
          const text = await readPinnedPredictions(
            store,
            jobId,
            { container: jobOutputContainer(jobId), path: 'predictions.csv' },
            o.maxPredictionBytes,
          );
          return scoresOf(text, prepared, input);
        }
        if (state === 'failed') {
          const logTail = await jobLogTail(this.client, jobId, {
            ...(o.workspaceStorageEndpoint ? { storageEndpoint: o.workspaceStorageEndpoint } : {}),
          });
          throw new NonRetriableError(
            'score_failed',
            withLogTail(`the Azure ML score job ${jobId} failed`, logTail),
          );
        }
        if (state === 'canceled')
          throw new NonRetriableError(
            'score_time_limit_exceeded',
            `the Azure ML score job ${jobId} was canceled (its time limit is ${spec.timeLimitSeconds} s)`,
          );
        if (this.now() - started > limitMs) {
          await this.cancelQuietly(jobId);
          throw new NonRetriableError(
            'score_time_limit_exceeded',
            `the Azure ML score job ${jobId} did not end within ${Math.round(limitMs / 1000)} s; it was canceled`,
          );
        }
        await sleep(o.scorePollMs ?? 15_000);
      }
    } finally {
      const ended = await this.getJob(jobId).catch(() => undefined);
      if (!ended || isTerminal(mapAzureMlStatus(ended.properties?.status ?? 'Unknown')))
        await this.dropOutputDatastore(jobId);
    }
  }

  async cancel(jobId: string): Promise<void> {
    if (this.options.store && (await this.userJobRecord(jobId))) {
      // Marks the cancel as Sluice's own, so a Canceled job is not taken for one Azure ML timed out.
      await this.options.store.put(
        { container: jobsContainer, path: jobPath(jobId, 'cancel.json') },
        JSON.stringify({ jobId, at: new Date(this.now()).toISOString() }),
        { contentType: 'application/json', condition: 'overwrite' },
      );
    }
    const job = await this.getJob(jobId);
    const state = mapAzureMlStatus(job.properties?.status ?? 'Unknown');
    if (state === 'completed' || state === 'failed' || state === 'canceled') return;
    if (job.properties?.status === 'CancelRequested') return;
    const res = await this.client.send('POST', this.client.url(this.jobId(jobId), '/cancel'));
    if (res.status !== 200 && res.status !== 202) throw this.client.fail(`cancel job ${jobId}`, res);
  }
}
