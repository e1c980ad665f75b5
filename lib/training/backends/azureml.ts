import type { TokenCredential } from '@azure/identity';
import { NonRetriableError, TransientError } from '../../errors';
import resources from '../../resources.json';
import type { JobFiles, JobStatus, TrainingBackend } from './types';
import type { JobState, TrainingJobRequestInput } from '../../contracts/trainingJob';
import { heartbeatSchema, jobPath, jobStatusFileSchema, statusFromFiles } from './types';
import { trainingJobRequestSchema } from '../../contracts/trainingJob';

/**
 * Azure Machine Learning command jobs over the ARM REST API (Jobs - Create Or Update / Get /
 * Cancel), authenticated with a Microsoft Entra token for `https://management.azure.com/.default`
 * (the Function App's managed identity in Azure).
 *
 * The job runs the same worker as the local backend: its input is the dataset blob, its output
 * folder is mapped to `jobs/<jobId>/` in the artifact account, so status, log tail, metrics and the
 * model land where `status` reads them. Azure ML's own status decides the state; the files add
 * progress, metrics and the log tail.
 */
export interface AzureMlOptions {
  /** ARM endpoint; the tests point it at a local fake. */
  endpoint?: string;
  subscriptionId: string;
  resourceGroup: string;
  workspace: string;
  apiVersion?: string;
  credential: TokenCredential;
  /** ARM id of a compute cluster; omitted = serverless compute with `instanceType`. */
  computeId?: string;
  instanceType?: string;
  /** ARM id of an environment with Node.js 22 and the Sluice worker. */
  environmentId: string;
  codeId?: string;
  /** The command run in the job; `${{inputs.*}}` / `${{outputs.*}}` are expanded by Azure ML. */
  command?: string;
  /** Blob endpoint of the artifact account, e.g. https://acct.blob.core.windows.net. */
  storageBlobEndpoint: string;
  /** Reads the files the job writes into its output folder. */
  files?: JobFiles;
  heartbeatStaleMs?: number;
  now?: () => number;
  fetch?: typeof fetch;
}

export const DEFAULT_AZUREML_API_VERSION = '2024-04-01';
const SCOPE = 'https://management.azure.com/.default';

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
  properties?: { status?: string; displayName?: string; tags?: Record<string, string> };
}

export class AzureMlTrainingBackend implements TrainingBackend {
  readonly name = 'azureml' as const;
  private readonly endpoint: string;
  private readonly apiVersion: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: AzureMlOptions) {
    this.endpoint = (options.endpoint ?? 'https://management.azure.com').replace(/\/$/, '');
    this.apiVersion = options.apiVersion ?? DEFAULT_AZUREML_API_VERSION;
    this.fetchImpl = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
  }

  private jobUrl(jobId: string, suffix = ''): string {
    const o = this.options;
    return (
      `${this.endpoint}/subscriptions/${encodeURIComponent(o.subscriptionId)}/resourceGroups/${encodeURIComponent(o.resourceGroup)}` +
      `/providers/Microsoft.MachineLearningServices/workspaces/${encodeURIComponent(o.workspace)}/jobs/${encodeURIComponent(jobId)}` +
      `${suffix}?api-version=${encodeURIComponent(this.apiVersion)}`
    );
  }

  private blobUri(container: string, path: string): string {
    return `${this.options.storageBlobEndpoint.replace(/\/$/, '')}/${container}/${path}`;
  }

  private async call(
    method: string,
    url: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown; headers: Headers }> {
    const token = await this.options.credential.getToken(SCOPE);
    if (!token) throw new TransientError('azureml_no_token', 'no access token for Azure Resource Manager');
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers: {
          authorization: `Bearer ${token.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new TransientError(
        'azureml_unreachable',
        `Azure ML ${method} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = { raw: text.slice(0, 500) };
    }
    return { status: res.status, json, headers: res.headers };
  }

  private fail(what: string, status: number, json: unknown): Error {
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    const detail = `${what}: HTTP ${status}${e?.code ? ` ${e.code}` : ''}${e?.message ? `: ${e.message}` : ''}`;
    if (status === 408 || status === 429 || status >= 500)
      return new TransientError('azureml_unavailable', detail);
    return new NonRetriableError(status === 404 ? 'azureml_job_not_found' : 'azureml_rejected', detail);
  }

  async submit(input: TrainingJobRequestInput): Promise<{ jobId: string; created: boolean }> {
    const request = trainingJobRequestSchema.parse(input);
    const { jobId, spec } = request;
    const existing = await this.call('GET', this.jobUrl(jobId));
    if (existing.status === 200) return { jobId, created: false };
    if (existing.status !== 404) throw this.fail(`read job ${jobId}`, existing.status, existing.json);

    const jobsContainer = resources.blobContainers.jobs;
    const o = this.options;
    const properties: Record<string, unknown> = {
      jobType: 'Command',
      displayName: `sluice ${jobId}`,
      experimentName: 'sluice',
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
          uri: this.blobUri(jobsContainer, `${jobId}/`),
          mode: 'ReadWriteMount',
        },
      },
      limits: { jobLimitsType: 'Command', timeout: `PT${spec.timeLimitSeconds}S` },
      environmentVariables: { SLUICE_JOB_ID: jobId, SLUICE_DATASET_SHA256: request.dataset.sha256 },
      identity: { identityType: 'Managed' },
    };
    // The job reads its request from Blob: write it first (write-once; a retry finds it in place).
    if (o.files) {
      await o.files.put(
        { container: jobsContainer, path: jobPath(jobId, 'request.json') },
        JSON.stringify(request),
        {
          contentType: 'application/json',
          condition: 'create',
        },
      );
    }
    const created = await this.call('PUT', this.jobUrl(jobId), { properties });
    if (created.status !== 200 && created.status !== 201)
      throw this.fail(`create job ${jobId}`, created.status, created.json);
    return { jobId, created: true };
  }

  async status(jobId: string): Promise<JobStatus> {
    const res = await this.call('GET', this.jobUrl(jobId));
    if (res.status !== 200) throw this.fail(`read job ${jobId}`, res.status, res.json);
    const amlStatus = (res.json as ArmJob).properties?.status ?? 'Unknown';
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
    const files = this.options.files;
    if (!files) return base;
    const container = resources.blobContainers.jobs;
    const statusFile = await files.tryGetJson({ container, path: jobPath(jobId, 'status.json') });
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
      (await files.tryGetJson({ container, path: jobPath(jobId, 'heartbeat.json') }))?.value,
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
    if (state === 'failed' && !merged.error) {
      merged.error = parsed.data.error ?? { code: 'azureml_failed', message: `Azure ML job ${jobId} failed` };
    }
    return merged;
  }

  async cancel(jobId: string): Promise<void> {
    const current = await this.call('GET', this.jobUrl(jobId));
    if (current.status !== 200) throw this.fail(`read job ${jobId}`, current.status, current.json);
    const state = mapAzureMlStatus((current.json as ArmJob).properties?.status ?? 'Unknown');
    if (state === 'completed' || state === 'failed' || state === 'canceled') return;
    const res = await this.call('POST', this.jobUrl(jobId, '/cancel'));
    if (res.status !== 200 && res.status !== 202)
      throw this.fail(`cancel job ${jobId}`, res.status, res.json);
  }
}
