import type { TokenCredential } from '@azure/identity';
import { NonRetriableError, TransientError } from '../errors';
import type { KeyValue, LogBatch } from './limits';
import type { MlflowTarget } from './target';

export type Fetch = typeof fetch;

/** An MLflow REST error: `{"error_code": "...", "message": "..."}` with its HTTP status. */
export interface MlflowErrorBody {
  error_code?: string;
  message?: string;
}

/**
 * A refusal MLflow will repeat: 4xx other than 408/429. `errorCode` is MLflow's `error_code`
 * (RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE, …); `code` is
 * Sluice's snake_case of it, e.g. `mlflow_invalid_parameter_value`, or `mlflow_unauthorized` /
 * `mlflow_forbidden` for 401/403.
 */
export class MlflowRejected extends NonRetriableError {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    const code =
      status === 401
        ? 'mlflow_unauthorized'
        : status === 403
          ? 'mlflow_forbidden'
          : `mlflow_${errorCode.toLowerCase()}`;
    super(code, message);
  }
}

export interface MlflowClientOptions {
  target: MlflowTarget;
  /** The app's identity, for `entra` auth (databricks, azureml). */
  credential?: () => TokenCredential;
  fetch?: Fetch;
  /** Attempts per call for 429, 5xx and network failures (then a TransientError). */
  maxAttempts?: number;
  /** First retry delay in ms, doubled per attempt, honouring Retry-After up to `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Per-request timeout. */
  timeoutMs?: number;
}

export interface Experiment {
  experiment_id: string;
  name: string;
  lifecycle_stage?: string;
}
export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  status?: string;
  start_time?: number;
  end_time?: number;
}
export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export interface DatasetInput {
  dataset: {
    name: string;
    digest: string;
    source_type: string;
    source: string;
    schema?: string;
    profile?: string;
  };
  tags?: KeyValue[];
}
export interface ModelVersion {
  name: string;
  version: string;
  status?: string;
  source?: string;
  run_id?: string;
  aliases?: string[];
}
/** One entry of an artifact listing (`mlflow-artifacts` proxy: `path` is the entry's name in the folder listed). */
export interface ArtifactFile {
  path: string;
  is_dir?: boolean;
  /** int64: a number, or a string as protobuf's JSON writes it. */
  file_size?: number | string;
}

interface CallOptions {
  /** false: one attempt (creates that are not idempotent). */
  retry?: boolean;
  /**
   * The API under /api/2.0/: the tracking and registry API, the artifact proxy, or (a Databricks
   * workspace, lib/mlflow/databricksArtifacts.ts) the DBFS API and the Files API.
   */
  root?: 'mlflow' | 'mlflow-artifacts' | 'dbfs' | 'fs';
  /** Hand back the Response of a 2xx answer unread (downloads). */
  raw?: boolean;
  /** A PUT's body as bytes (uploads through the artifact proxy), instead of JSON. */
  bytes?: Uint8Array;
}

/**
 * A client of the MLflow REST API (https://mlflow.org/docs/latest/rest-api.html), the calls Sluice
 * makes with their documented field names. Every call goes to `${baseUrl}/api/2.0/mlflow/<path>`.
 * 429, 5xx and network failures are retried here with a bounded, doubling backoff and then thrown
 * as TransientError (`mlflow_unavailable` / `mlflow_unreachable`); other refusals throw
 * {@link MlflowRejected} at once. No state beyond the options.
 */
export class MlflowClient {
  private readonly f: Fetch;
  constructor(private readonly o: MlflowClientOptions) {
    this.f = o.fetch ?? fetch;
  }

  /** `GET experiments/get-by-name`; undefined when RESOURCE_DOES_NOT_EXIST. */
  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const r = await this.call<{ experiment: Experiment }>('GET', 'experiments/get-by-name', {
        experiment_name: name,
      });
      return r.experiment;
    } catch (err) {
      if (err instanceof MlflowRejected && err.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw err;
    }
  }

  /** `POST experiments/create` → experiment_id. */
  async createExperiment(name: string, tags: KeyValue[] = []): Promise<string> {
    const r = await this.call<{ experiment_id: string }>('POST', 'experiments/create', { name, tags });
    return r.experiment_id;
  }

  /**
   * The experiment's id, created if absent. A create answered RESOURCE_ALREADY_EXISTS (another
   * instance, or our own earlier attempt, created it) is a success: read it again.
   */
  async ensureExperiment(name: string, tags: KeyValue[] = []): Promise<string> {
    const found = await this.getExperimentByName(name);
    // A deleted experiment keeps its name (creating it again is refused) until it is purged.
    if (found?.lifecycle_stage === 'deleted')
      throw new NonRetriableError(
        'mlflow_experiment_deleted',
        `MLflow experiment "${name}" is deleted: restore it in MLflow, or change MLFLOW_EXPERIMENT_PREFIX`,
      );
    if (found) return found.experiment_id;
    try {
      return await this.createExperiment(name, tags);
    } catch (err) {
      if (!(err instanceof MlflowRejected && err.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw err;
      const again = await this.getExperimentByName(name);
      if (!again)
        throw new TransientError('mlflow_experiment_race', `experiment ${name} exists but cannot be read`);
      return again.experiment_id;
    }
  }

  /** `POST runs/create`. */
  async createRun(req: {
    experiment_id: string;
    run_name?: string;
    start_time?: number;
    tags?: KeyValue[];
  }): Promise<RunInfo> {
    // Not retried here: a create whose answer was lost may have made the run. The mirror retries
    // on its next sweep and first looks the run up by its tag (mirror.ts).
    const r = await this.call<{ run: { info: RunInfo } }>('POST', 'runs/create', req, { retry: false });
    return r.run.info;
  }

  /**
   * `POST runs/search` for the runs of one experiment whose tag `key` equals `value` (at most 2:
   * the mirror wants to know whether one exists).
   */
  async findRunsByTag(experimentId: string, key: string, value: string): Promise<RunInfo[]> {
    const quoted = value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    const r = await this.call<{ runs?: { info: RunInfo }[] }>('POST', 'runs/search', {
      experiment_ids: [experimentId],
      filter: `tags.\`${key}\` = '${quoted}'`,
      max_results: 2,
    });
    return (r.runs ?? []).map((x) => x.info);
  }

  /** `POST runs/update` with the status and (when it ended) end_time. */
  async updateRun(req: { run_id: string; status: RunStatus; end_time?: number }): Promise<void> {
    await this.call('POST', 'runs/update', req);
  }

  /** `POST runs/log-batch`: one request; callers split with `toBatches` (lib/mlflow/limits.ts). */
  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    await this.call('POST', 'runs/log-batch', { run_id: runId, ...batch });
  }

  /** `POST runs/log-inputs`. */
  async logInputs(runId: string, datasets: DatasetInput[]): Promise<void> {
    await this.call('POST', 'runs/log-inputs', { run_id: runId, datasets });
  }

  /** `POST registered-models/create`; RESOURCE_ALREADY_EXISTS is a success (returns false). */
  /** A registry path: under `unity-catalog/` when the registry is Unity Catalog (`databricks-uc`). */
  private registryPath(path: string): string {
    return this.o.target.unityCatalog ? `unity-catalog/${path}` : path;
  }
  /** Whether this client's registry is Unity Catalog (versions are registered with registerUcVersion). */
  get unityCatalog(): boolean {
    return this.o.target.unityCatalog === true;
  }
  async ensureRegisteredModel(name: string, tags: KeyValue[] = []): Promise<boolean> {
    try {
      await this.call('POST', this.registryPath('registered-models/create'), { name, tags });
      return true;
    } catch (err) {
      if (err instanceof MlflowRejected && err.errorCode === 'RESOURCE_ALREADY_EXISTS') return false;
      throw err;
    }
  }

  /** `POST model-versions/create`. */
  async createModelVersion(req: {
    name: string;
    source: string;
    run_id?: string;
    run_link?: string;
    description?: string;
    tags?: KeyValue[];
  }): Promise<ModelVersion> {
    if (this.unityCatalog)
      throw new NonRetriableError(
        'mlflow_uc_create_version',
        `Unity Catalog versions are registered with their files (registerUcVersion), not model-versions/create: ${req.name}`,
      );
    // Not retried here either: each create makes a new version number.
    const r = await this.call<{ model_version: ModelVersion }>('POST', 'model-versions/create', req, {
      retry: false,
    });
    return r.model_version;
  }

  /** `GET model-versions/search` for the versions of `name` made from MLflow run `runId`. */
  async findModelVersionsByRun(name: string, runId: string): Promise<ModelVersion[]> {
    const q = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    const r = await this.call<{ model_versions?: ModelVersion[] }>('GET', 'model-versions/search', {
      filter: `name=${q(name)} and run_id=${q(runId)}`,
    });
    return r.model_versions ?? [];
  }

  /** `POST registered-models/alias`: last-write-wins on the server (docs/mlflow.md). */
  async setAlias(name: string, alias: string, version: string): Promise<void> {
    await this.call('POST', this.registryPath('registered-models/alias'), { name, alias, version });
  }

  /** `GET model-versions/get`. */
  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    const r = await this.call<{ model_version: ModelVersion }>(
      'GET',
      this.registryPath('model-versions/get'),
      {
        name,
        version,
      },
    );
    return r.model_version;
  }

  /** `GET registered-models/alias`: the version an alias points at now. */
  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion> {
    const r = await this.call<{ model_version: ModelVersion }>(
      'GET',
      this.registryPath('registered-models/alias'),
      {
        name,
        alias,
      },
    );
    return r.model_version;
  }

  /** `GET model-versions/get-download-uri`: where the version's files are (`artifact_uri`). */
  async getModelVersionDownloadUri(name: string, version: string): Promise<string> {
    const r = await this.call<{ artifact_uri: string }>('GET', 'model-versions/get-download-uri', {
      name,
      version,
    });
    return r.artifact_uri;
  }

  /** `GET runs/get` → the run's info (with `artifact_uri`). */
  async getRun(runId: string): Promise<RunInfo & { artifact_uri?: string }> {
    const r = await this.call<{ run: { info: RunInfo & { artifact_uri?: string } } }>('GET', 'runs/get', {
      run_id: runId,
    });
    return r.run.info;
  }

  /** `GET runs/get` → the params already logged to the run (its `data.params`). */
  async getRunParams(runId: string): Promise<KeyValue[]> {
    const r = await this.call<{ run: { data?: { params?: KeyValue[] } } }>('GET', 'runs/get', {
      run_id: runId,
    });
    return r.run.data?.params ?? [];
  }

  /**
   * The artifact proxy's listing of one folder (`GET /api/2.0/mlflow-artifacts/artifacts?path=`,
   * served by `mlflow server` with `--serve-artifacts`, its default since 2.0).
   */
  async listArtifacts(folder: string): Promise<ArtifactFile[]> {
    const r = await this.call<{ files?: ArtifactFile[] }>(
      'GET',
      'artifacts',
      { path: folder },
      { root: 'mlflow-artifacts' },
    );
    return r.files ?? [];
  }

  /**
   * Opens one file through the artifact proxy (`GET /api/2.0/mlflow-artifacts/artifacts/<path>`).
   * 429/5xx and network failures before the body are retried as every call is; the body itself is
   * the caller's to read (and to bound).
   */
  async openArtifact(file: string): Promise<ReadableStream<Uint8Array>> {
    const encoded = file.split('/').map(encodeURIComponent).join('/');
    const res = await this.call<Response>(
      'GET',
      `artifacts/${encoded}`,
      {},
      { root: 'mlflow-artifacts', raw: true },
    );
    if (!res.body) throw new TransientError('mlflow_unavailable', `MLflow sent no body for artifact ${file}`);
    return res.body;
  }

  /**
   * Uploads one file through the artifact proxy (`PUT /api/2.0/mlflow-artifacts/artifacts/<path>`,
   * the body the file's bytes; mlflow_artifacts.proto UploadArtifact). A PUT of the same path
   * replaces the file, so a retried upload is harmless.
   */
  async putArtifact(file: string, bytes: Uint8Array): Promise<void> {
    const encoded = file.split('/').map(encodeURIComponent).join('/');
    await this.call('PUT', `artifacts/${encoded}`, {}, { root: 'mlflow-artifacts', bytes });
  }

  private async headers(): Promise<Record<string, string>> {
    const auth = this.o.target.auth;
    const h: Record<string, string> = { accept: 'application/json' };
    if (auth.kind === 'bearer') h.authorization = `Bearer ${auth.token}`;
    else if (auth.kind === 'basic')
      h.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    else if (auth.kind === 'entra') {
      if (!this.o.credential)
        throw new NonRetriableError(
          'mlflow_no_credential',
          'an Entra token is needed but no credential is configured',
        );
      let token;
      try {
        token = await this.o.credential().getToken(auth.scope);
      } catch (err) {
        throw new TransientError('mlflow_token_failed', `could not get a token for ${auth.scope}`, {
          cause: err,
        });
      }
      if (!token) throw new TransientError('mlflow_token_failed', `no token for ${auth.scope}`);
      h.authorization = `Bearer ${token.token}`;
    }
    return h;
  }

  /**
   * One REST call with the bounded retry of 429/5xx/network failures (`retry: false`: one attempt,
   * for creates that are not idempotent).
   */
  async call<T = unknown>(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<T> {
    const max = options.retry === false ? 1 : (this.o.maxAttempts ?? 4);
    const first = this.o.firstDelayMs ?? 500;
    const cap = this.o.maxDelayMs ?? 10_000;
    const sleep = this.o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let last: Error | undefined;
    for (let attempt = 1; attempt <= max; attempt++) {
      let delay = Math.min(cap, first * 2 ** (attempt - 1));
      try {
        return await this.once<T>(method, path, body, options);
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        last = err;
        const retryAfter = (err as TransientError & { retryAfterMs?: number }).retryAfterMs;
        if (retryAfter !== undefined) delay = Math.min(cap, retryAfter);
      }
      if (attempt < max) await sleep(delay);
    }
    throw last ?? new TransientError('mlflow_unavailable', `${path} failed`);
  }

  private async once<T>(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body: Record<string, unknown>,
    options: CallOptions,
  ): Promise<T> {
    let url = `${this.o.target.baseUrl}/api/2.0/${options.root ?? 'mlflow'}/${path}`;
    const headers = await this.headers();
    const init: RequestInit = {
      method,
      headers,
      signal: AbortSignal.timeout(
        // A download's body is read after this returns: the whole of it gets 10 minutes.
        options.raw ? 10 * 60_000 : (this.o.timeoutMs ?? 30_000),
      ),
    };
    if (method === 'GET') url += `?${new URLSearchParams(body as Record<string, string>).toString()}`;
    else if (options.bytes) {
      headers['content-type'] = 'application/octet-stream';
      init.body = options.bytes;
    } else {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res: Response;
    try {
      res = await this.f(url, init);
    } catch (err) {
      throw new TransientError(
        'mlflow_unreachable',
        `MLflow could not be reached (${path}): ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (res.ok && options.raw) return res as T;
    const text = await res.text();
    if (res.ok) return (text ? JSON.parse(text) : {}) as T;
    let parsed: MlflowErrorBody = {};
    try {
      parsed = JSON.parse(text) as MlflowErrorBody;
    } catch {
      // not JSON (a proxy's page): the status alone says what happened
    }
    const message = `MLflow ${path} answered ${res.status}${parsed.error_code ? ` ${parsed.error_code}` : ''}: ${(parsed.message ?? text).slice(0, 300)}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      const e = new TransientError('mlflow_unavailable', message) as TransientError & {
        retryAfterMs?: number;
      };
      const ra = Number(res.headers.get('retry-after'));
      if (Number.isFinite(ra) && ra >= 0 && res.headers.has('retry-after')) e.retryAfterMs = ra * 1000;
      throw e;
    }
    throw new MlflowRejected(res.status, parsed.error_code ?? `http_${res.status}`, message);
  }
}
