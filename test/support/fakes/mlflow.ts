import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for an MLflow tracking server and model registry, speaking the documented REST
 * wire format (https://mlflow.org/docs/latest/rest-api.html; mlflow/protos/service.proto and
 * model_registry.proto) on loopback HTTP under `<any prefix>/api/2.0/mlflow/`:
 *
 *   GET  experiments/get-by-name?experiment_name=  → {experiment}; unknown → 404 RESOURCE_DOES_NOT_EXIST
 *   POST experiments/create {name, tags}            → {experiment_id}; taken → 400 RESOURCE_ALREADY_EXISTS
 *   POST runs/create {experiment_id, run_name, start_time, tags} → {run: {info, data}} (status RUNNING)
 *   POST runs/search {experiment_ids, filter, max_results} → {runs}; the filter form tags.`k` = 'v' only
 *   POST runs/update {run_id, status, end_time}     → {run_info}
 *   POST runs/log-batch {run_id, metrics, params, tags} → {}; > 1,000 metrics, > 100 params, > 100 tags,
 *        > 1,000 entities, > 1 MB, a key > 250 bytes, a param value > 500 bytes, a tag value > 5,000
 *        bytes, or a param re-logged with another value → 400 INVALID_PARAMETER_VALUE. An identical
 *        metric (key, value, timestamp, step) is kept once, as MLflow's SQL store does.
 *   POST runs/log-inputs {run_id, datasets}         → {}; a dataset (name, digest) is kept once; a digest
 *        over 36 characters, a name over 500, a source over 65,535, an input tag key over 255 or
 *        value over 500 → 400 INVALID_PARAMETER_VALUE (mlflow/utils/validation.py)
 *   POST registered-models/create {name, tags}      → {registered_model}; taken → RESOURCE_ALREADY_EXISTS
 *   POST model-versions/create {name, source, run_id, run_link, tags} → {model_version} (next version)
 *   GET  model-versions/search?filter=name='m' and run_id='r' → {model_versions} (that filter form only)
 *   POST registered-models/alias {name, alias, version} → {}
 *   GET  registered-models/alias?name=&alias=       → {model_version}; unknown → 404 RESOURCE_DOES_NOT_EXIST
 *   GET  model-versions/get?name=&version=          → {model_version}; unknown → 404 RESOURCE_DOES_NOT_EXIST
 *   GET  model-versions/get-download-uri?name=&version= → {artifact_uri}
 *   GET  runs/get?run_id=                           → {run: {info (with artifact_uri), data}}
 *
 * and the artifact proxy (`mlflow server --serve-artifacts`; mlflow/protos/mlflow_artifacts.proto)
 * under `<prefix>/api/2.0/mlflow-artifacts/`:
 *
 *   GET  artifacts?path=<folder>                    → {files: [{path: <name in folder>, is_dir, file_size}]}
 *        (an unknown folder lists nothing, as the server's local store does)
 *   GET  artifacts/<path>                           → the file's bytes; unknown → 404 RESOURCE_DOES_NOT_EXIST
 *   PUT  artifacts/<path> (body: the file's bytes)  → {} (the file stored, replacing one there);
 *        a path with an empty or `..` segment → 400 INVALID_PARAMETER_VALUE
 *
 * and Databricks Unity Catalog's registry as MLflow's protos give it (databricks_uc_registry_service.proto,
 * databricks_uc_registry_messages.proto) under `<prefix>/api/2.0/mlflow/unity-catalog/`:
 *
 *   POST registered-models/create {name, tags}       → as above (tags kept in `ucModelTags`); a name
 *        without three parts → 400
 *   POST model-versions/create {name, source, run_id, tags} → {model_version} PENDING_REGISTRATION with
 *        storage_location `abfss://uc@fakeuc.dfs.core.windows.net/models/<name>/versions/<v>`
 *   POST model-versions/generate-temporary-credentials {name, version, operation}
 *        → {credentials: {azure_user_delegation_sas: {sas_token}, expiration_time}}; an operation other
 *        than MODEL_VERSION_OPERATION_READ_WRITE on a pending version → 400
 *   POST model-versions/finalize {name, version}     → {model_version} READY; no MLmodel written → 400
 *   POST registered-models/alias {name, alias, version} → {}; a version not READY → 400
 *   GET  registered-models/alias?name=&alias=        → {model_version}, as above
 *   GET  model-versions/get?name=&version=           → {model_version} (with storage_location and status)
 *
 * and the version's storage as Blob Storage's Put Blob on `/uc-storage/<container>/<path>?<sas>`
 * (`x-ms-blob-type: BlockBlob` → 201; the wrong SAS → 403 AuthenticationFailed), `ucBlobUrl` mapping a
 * storage location to it. Written files are in `ucFiles` by `<container>/<path>`.
 *
 * and a Databricks workspace's own stores, for promoting a model logged there
 * (lib/mlflow/databricksArtifacts.ts; {@link FakeMlflow.logDatabricksModel}):
 *
 *   GET  mlflow/artifacts/list?run_id=&path=&page_token= → {root_uri, files: [{path (run-relative), is_dir,
 *        file_size}], next_page_token} (`listPageSize` entries a page; an unknown folder lists nothing)
 *   POST mlflow/artifacts/credentials-for-read {run_id, path: [..], page_token} → {credential_infos:
 *        [{run_id, path, signed_uri, type: AZURE_SAS_URI, headers}], next_page_token} (`listPageSize` a
 *        page; paths are signed whether or not a file is there, as Databricks does); signed URIs are
 *        `https://<signedHost>/mlflow/<artifact key>?<signedSas>`, `signedUrl` maps one to this server's
 *        `/signed/…`, which answers the bytes only with the SAS, the `x-ms-encryption-key` header the
 *        credential named and no Authorization header (`signedFailures`: that many answers of
 *        its status first: 403 an expired SAS, 503 an outage of the storage; `signedRedirect`:
 *        302 Found to another origin)
 *   GET  dbfs/list?path=                            → {files: [{path (absolute), is_dir, file_size,
 *        modification_time}]}; unknown → 404 RESOURCE_DOES_NOT_EXIST (`dbfsFiles`, by absolute path)
 *   GET  dbfs/read?path=&offset=&length=            → {bytes_read, data (base64)}; length > 1 MB → 400
 *        MAX_READ_SIZE_EXCEEDED; unknown → 404 RESOURCE_DOES_NOT_EXIST
 *   GET  fs/directories/Volumes/…?page_token=       → {contents: [{path, is_directory, file_size, name,
 *        last_modified}], next_page_token}; unknown → 404 NOT_FOUND (`volumeFiles`, by absolute path)
 *   GET  fs/files/Volumes/…                         → the bytes; unknown → 404 NOT_FOUND
 *
 * Paths under a prefix in `forbidden` (a DBFS or volume path, or an artifact key) answer 403
 * PERMISSION_DENIED. These calls are recorded with `path` after /api/2.0/ (`dbfs/read`,
 * `fs/files/Volumes/…`), the mlflow ones as the rest are, signed downloads as `signed/<key>`.
 *
 * Reading a Unity Catalog version (promote; `ucSeedVersion` makes one as a team's register_model would):
 *
 *   GET  unity-catalog/registered-models/get?name=   → {registered_model: {name, tags}}
 *   POST unity-catalog/registered-models/tags {name, key, value} → {}
 *   GET  unity-catalog/model-versions/search?filter=name='m'&max_results=&page_token= → {model_versions
 *        (with description and tags), next_page_token}
 *   POST unity-catalog/model-versions/generate-temporary-credentials with MODEL_VERSION_OPERATION_READ
 *        → a read-only SAS (`ucReadSas`, sp=rl); `ucCredentials` replaces the answer (other clouds,
 *        default storage)
 *   GET  /uc-storage/<container>?restype=container&comp=list&prefix=&marker=&maxresults=&include=metadata
 *        → Blob Storage's List Blobs XML (EnumerationResults; pages of `ucListPageSize`; folders of a
 *        hierarchical namespace listed as empty blobs with metadata hdi_isfolder=true)
 *   GET  /uc-storage/<container>/<path>              → Get Blob: the bytes; unknown → 404 BlobNotFound
 *   Both need either SAS and refuse a request carrying an Authorization header (the workspace token
 *   must not reach storage); `ucStorageRedirect` makes both answer 302 Found. `ucContainerOf` maps
 *   a storage location to this server's container URL.
 *
 * A run's artifact_uri is `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`. `logModel` stores
 * a folder under a run as a client's log_model would; `registerModel` makes a version of it.
 *
 * Errors are `{"error_code", "message"}`. With `token` set a bearer token is required (none → 401
 * UNAUTHENTICATED, another → 403 PERMISSION_DENIED). `down = true` answers 503 to everything (an
 * outage); `failNext(n, status)` answers the next n calls with that status (429 with Retry-After: 0).
 * Every call is recorded in `calls`, outage answers included.
 */

export interface Call {
  method: string;
  path: string;
  /** What came before /api/2.0/mlflow (an Azure ML workspace's base path). */
  prefix: string;
  body: Record<string, unknown>;
  status: number;
  authorization?: string;
}
interface Kv {
  key: string;
  value: string;
}
interface FakeMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}
/** A registered model: its versions (as MLflow answers them) and its aliases (alias → version). */
export interface FakeModel {
  name: string;
  versions: Record<string, unknown>[];
  aliases: Map<string, string>;
}
export interface FakeRun {
  info: {
    run_id: string;
    run_uuid: string;
    experiment_id: string;
    run_name: string;
    status: string;
    start_time?: number;
    end_time?: number;
    lifecycle_stage: string;
    artifact_uri: string;
  };
  params: Map<string, string>;
  tags: Map<string, string>;
  metrics: FakeMetric[];
  inputs: { dataset: Record<string, unknown>; tags?: Kv[] }[];
}

class Rejection extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}
const invalid = (m: string) => new Rejection(400, 'INVALID_PARAMETER_VALUE', m);
const bytes = (s: string) => Buffer.byteLength(s);

export class FakeMlflow {
  readonly calls: Call[] = [];
  readonly experiments = new Map<
    string,
    { experiment_id: string; name: string; tags: Kv[]; lifecycle_stage?: 'active' | 'deleted' }
  >();
  readonly runs = new Map<string, FakeRun>();
  readonly models = new Map<string, FakeModel>();
  /** Files behind the artifact proxy, by path (`<experiment_id>/<run_id>/artifacts/model/MLmodel`). */
  readonly artifacts = new Map<string, Buffer>();
  /** Files written to Unity Catalog storage, by `<container>/<path>`. */
  readonly ucFiles = new Map<string, Buffer>();
  readonly ucSas = 'sv=2021-08-06&sr=d&sp=racwl&sig=fake-user-delegation';
  /** The SAS a READ operation gets: list and read only. */
  readonly ucReadSas = 'sv=2021-08-06&sr=d&sp=rl&sig=fake-read-delegation';
  /** Replaces generate-temporary-credentials' `credentials` (e.g. AWS ones, or default storage). */
  ucCredentials: ((operation: string) => Record<string, unknown>) | undefined;
  /** Unity Catalog registered models' tags, by name. */
  readonly ucModelTags = new Map<string, Kv[]>();
  /** Blobs per List Blobs page (the client's maxresults, if smaller, wins). */
  ucListPageSize = 5_000;
  /** The next n storage reads answer 503 ServerBusy (a storage outage, apart from MLflow's). */
  ucStorageFailures = 0;
  /**
   * Set: every storage read answers 302 Found, and every Put Blob 307, to this origin (and the same
   * path and query, SAS included, as a hostile or misconfigured endpoint would), which no Sluice
   * client follows.
   */
  ucStorageRedirect: string | undefined;
  /** Databricks: DBFS files by absolute path (`/mnt/models/churn/MLmodel`). */
  readonly dbfsFiles = new Map<string, Buffer>();
  /** Databricks: Unity Catalog volume files by absolute path (`/Volumes/main/ml/models/churn/MLmodel`). */
  readonly volumeFiles = new Map<string, Buffer>();
  /** Databricks: path prefixes the token may not read (403 PERMISSION_DENIED). */
  readonly forbidden: string[] = [];
  /** Databricks: entries per page of artifacts/list, credentials-for-read and the Files API listing. */
  listPageSize = 1000;
  signedHost = 'fakedbx.blob.core.windows.net';
  readonly signedSas = 'sv=2021-08-06&sr=b&sp=r&sig=fake-read-signature';
  /** The next n signed downloads answer `status` (403: an expired SAS; 503 with Retry-After: 0). */
  signedFailures = { n: 0, status: 503 };
  /** Set: signed downloads answer 302 Found to this origin, with the same path and query. */
  signedRedirect: string | undefined;
  down = false;
  token: string | undefined;
  private failures: { n: number; status: number } = { n: 0, status: 503 };
  private seq = 0;
  private server = createServer((req, res) => void this.handle(req, res));
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  failNext(n: number, status: number): void {
    this.failures = { n, status };
  }
  /** The calls answered 2xx, as `METHOD path`. */
  okCalls(): string[] {
    return this.calls.filter((c) => c.status < 300).map((c) => `${c.method} ${c.path}`);
  }
  /**
   * What `mlflow.<flavor>.log_model(..., artifact_path)` leaves on a server: a run (in experiment
   * `experiment`, created if absent) whose artifacts hold `files` under `artifactPath`. Returns the run id.
   */
  logModel(experiment: string, files: Record<string, Buffer | string>, artifactPath = 'model'): string {
    let exp = [...this.experiments.values()].find((e) => e.name === experiment);
    if (!exp) {
      const id = String(++this.seq);
      exp = { experiment_id: id, name: experiment, tags: [] };
      this.experiments.set(id, exp);
    }
    const created = this.route('POST runs/create', {
      experiment_id: exp.experiment_id,
      run_name: 'trained-elsewhere',
    }) as {
      run: { info: { run_id: string } };
    };
    const run = this.runs.get(created.run.info.run_id)!;
    run.info.status = 'FINISHED';
    const root = run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '');
    for (const [name, data] of Object.entries(files))
      this.artifacts.set(`${root}/${artifactPath}/${name}`, Buffer.isBuffer(data) ? data : Buffer.from(data));
    return run.info.run_id;
  }
  /** `mlflow.register_model("runs:/<runId>/<artifactPath>", name)`: the next version of `name`. */
  registerModel(name: string, runId: string, artifactPath = 'model'): string {
    if (!this.models.has(name)) this.models.set(name, { name, versions: [], aliases: new Map() });
    const m = this.models.get(name)!;
    const run = this.runs.get(runId)!;
    const v = {
      name,
      version: String(m.versions.length + 1),
      source: `runs:/${runId}/${artifactPath}`,
      run_id: runId,
      tags: [],
      status: 'READY',
      download_uri: `${run.info.artifact_uri}/${artifactPath}`,
    };
    m.versions.push(v);
    return v.version;
  }
  /** Where Sluice writes a Unity Catalog version's file: this server's Put Blob endpoint. */
  ucBlobUrl = (storageLocation: string, file: string): string => {
    const m = /^abfss:\/\/([^@]+)@[^/]+\/(.*)$/.exec(storageLocation)!;
    return `${this.url}/uc-storage/${m[1]}/${m[2]}/${file}`;
  };
  /** A Unity Catalog container URL and path for a storage location: this server's storage. */
  ucContainerOf = (storageLocation: string): { containerUrl: string; prefix: string } => {
    const m = /^abfss:\/\/([^@]+)@[^/]+\/(.*)$/.exec(storageLocation)!;
    return { containerUrl: `${this.url}/uc-storage/${m[1]}`, prefix: m[2]!.replace(/\/+$/, '') };
  };
  /**
   * A Unity Catalog version as another team's `mlflow.register_model` leaves it: the registered
   * model (untagged, created if absent), the version (READY unless `status` says otherwise) with its
   * files at its storage location. Returns the version number.
   */
  ucSeedVersion(
    name: string,
    files: Record<string, Buffer | string>,
    options: {
      status?: string;
      storageLocation?: string;
      tags?: Kv[];
      runId?: string;
      description?: string;
    } = {},
  ): string {
    if (!this.models.has(name)) this.models.set(name, { name, versions: [], aliases: new Map() });
    const m = this.models.get(name)!;
    const version = String(m.versions.length + 1);
    const storage =
      options.storageLocation ?? `abfss://uc@fakeuc.dfs.core.windows.net/models/${name}/versions/${version}`;
    m.versions.push({
      name,
      version,
      source: `dbfs:/databricks/mlflow-tracking/1/${options.runId ?? 'r0'}/artifacts/model`,
      ...(options.runId ? { run_id: options.runId } : {}),
      ...(options.description !== undefined ? { description: options.description } : {}),
      tags: options.tags ?? [],
      status: options.status ?? 'READY',
      storage_location: storage,
    });
    const at = /^abfss:\/\/([^@]+)@[^/]+\/(.*)$/.exec(storage);
    if (at)
      for (const [file, data] of Object.entries(files))
        this.ucFiles.set(`${at[1]}/${at[2]}/${file}`, Buffer.isBuffer(data) ? data : Buffer.from(data));
    return version;
  }
  runByTag(key: string, value: string): FakeRun | undefined {
    return [...this.runs.values()].find((r) => r.tags.get(key) === value);
  }
  /**
   * What `log_model` leaves in a Databricks notebook: as {@link logModel}, but the run's artifact_uri
   * is `dbfs:/databricks/mlflow-tracking/<experiment_id>/<run_id>/artifacts` (read through
   * artifacts/list and credentials-for-read, not the artifact proxy).
   */
  logDatabricksModel(
    experiment: string,
    files: Record<string, Buffer | string>,
    artifactPath = 'model',
  ): string {
    const runId = this.logModel(experiment, files, artifactPath);
    const info = this.runs.get(runId)!.info;
    info.artifact_uri = `dbfs:/databricks/mlflow-tracking/${info.experiment_id}/${runId}/artifacts`;
    return runId;
  }
  /** Where a signed URI this server handed out is fetched: its `/signed/…` endpoint. */
  signedUrl = (uri: URL): string => `${this.url}/signed${uri.pathname}${uri.search}`;

  private isForbidden(p: string): boolean {
    return this.forbidden.some((f) => p === f || p.startsWith(`${f}/`));
  }
  /** A run's artifact key prefix (`<exp>/<run>/artifacts`) in `artifacts`. */
  private runArtifactRoot(runId: unknown): string {
    const r = this.run(runId);
    return `${r.info.experiment_id}/${r.info.run_id}/artifacts`;
  }
  /** Names directly under `folder` among `keys`: files with sizes, folders once. */
  private static entries(keys: Map<string, Buffer>, folder: string) {
    const base = folder ? `${folder.replace(/\/+$/, '')}/` : '';
    const out = new Map<string, { name: string; isDir: boolean; size: number }>();
    for (const [p, data] of keys) {
      if (!p.startsWith(base)) continue;
      const [name, ...deeper] = p.slice(base.length).split('/');
      if (!name) continue;
      out.set(name, { name, isDir: deeper.length > 0, size: deeper.length ? 0 : data.length });
    }
    return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
  private page<T>(items: T[], token: unknown): { items: T[]; next?: string } {
    const from = Number(token ?? 0) || 0;
    const items2 = items.slice(from, from + this.listPageSize);
    return from + this.listPageSize < items.length
      ? { items: items2, next: String(from + this.listPageSize) }
      : { items: items2 };
  }

  /** The Databricks workspace's mlflow artifact calls (artifacts/list, credentials-for-read). */
  private databricksRoute(route: string, b: Record<string, unknown>): unknown {
    if (route === 'GET artifacts/list') {
      const root = this.runArtifactRoot(b.run_id);
      const rel = String(b.path ?? '').replace(/^\/+|\/+$/g, '');
      if (this.isForbidden(`${root}/${rel}`.replace(/\/$/, '')))
        throw new Rejection(403, 'PERMISSION_DENIED', `no permission on run ${String(b.run_id)}`);
      const folder = rel ? `${root}/${rel}` : root;
      const all = FakeMlflow.entries(this.artifacts, folder).map((e) => ({
        path: rel ? `${rel}/${e.name}` : e.name,
        is_dir: e.isDir,
        ...(e.isDir ? {} : { file_size: e.size }),
      }));
      const { items, next } = this.page(all, b.page_token);
      return {
        root_uri: this.runs.get(String(b.run_id))!.info.artifact_uri,
        files: items,
        ...(next ? { next_page_token: next } : {}),
      };
    }
    // POST artifacts/credentials-for-read
    const root = this.runArtifactRoot(b.run_id);
    const paths = Array.isArray(b.path) ? (b.path as unknown[]).map(String) : [];
    if (!paths.length) throw invalid("Missing value for required parameter 'path'");
    const { items, next } = this.page(paths, b.page_token);
    return {
      credential_infos: items.map((p) => ({
        run_id: String(b.run_id),
        path: p,
        signed_uri: `https://${this.signedHost}/mlflow/${`${root}/${p}`.split('/').map(encodeURIComponent).join('/')}?${this.signedSas}`,
        type: 'AZURE_SAS_URI',
        headers: [{ name: 'x-ms-encryption-key', value: 'fake-customer-key' }],
      })),
      ...(next ? { next_page_token: next } : {}),
    };
  }

  /**
   * The DBFS API, the Files API and signed downloads; answers and returns true when the request is
   * one of them.
   */
  private databricksHandle(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    call: Call,
    send: (status: number, payload: unknown) => void,
  ): boolean {
    const bytesOut = (data: Buffer) => {
      call.status = 200;
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(data.length),
      });
      res.end(data);
    };
    if (url.pathname.startsWith('/signed/')) {
      const key = decodeURIComponent(url.pathname.slice('/signed/mlflow/'.length));
      call.path = `signed/${key}`;
      call.body = {};
      if (req.headers.authorization) {
        send(400, {
          error_code: 'InvalidAuthenticationInfo',
          message: 'a SAS request takes no Authorization header',
        });
        return true;
      }
      if (this.signedRedirect) {
        call.status = 302;
        res.writeHead(302, { location: `${this.signedRedirect}${url.pathname}${url.search}` });
        res.end();
        return true;
      }
      if (this.signedFailures.n > 0) {
        this.signedFailures.n--;
        const status = this.signedFailures.status;
        send(status, {
          error_code: status === 403 ? 'AuthenticationFailed' : 'ServerBusy',
          message: status === 403 ? 'Signed expiry time has passed' : 'injected',
        });
        return true;
      }
      if (
        url.search.slice(1) !== this.signedSas ||
        req.headers['x-ms-encryption-key'] !== 'fake-customer-key'
      ) {
        send(403, {
          error_code: 'AuthenticationFailed',
          message: 'SAS or encryption key header does not match',
        });
        return true;
      }
      const data = this.artifacts.get(key);
      if (!data) send(404, { error_code: 'BlobNotFound', message: 'The specified blob does not exist.' });
      else bytesOut(data);
      return true;
    }
    const api = /\/api\/2\.0\/(dbfs|fs)\/(.*)$/.exec(url.pathname);
    if (!api) return false;
    call.path = `${api[1]}/${decodeURIComponent(api[2]!)}`;
    if (req.method !== 'GET') {
      send(404, { error_code: 'ENDPOINT_NOT_FOUND', message: `no endpoint ${req.method} ${call.path}` });
      return true;
    }
    const denied = (p: string) => {
      send(403, { error_code: 'PERMISSION_DENIED', message: `User does not have READ on ${p}` });
      return true;
    };
    if (api[1] === 'dbfs') {
      const p = (url.searchParams.get('path') ?? '').replace(/\/+$/, '');
      if (this.isForbidden(p)) return denied(p);
      if (api[2] === 'list') {
        const file = this.dbfsFiles.get(p);
        const files = file
          ? [{ path: p, is_dir: false, file_size: file.length, modification_time: 0 }]
          : FakeMlflow.entries(this.dbfsFiles, p).map((e) => ({
              path: `${p}/${e.name}`,
              is_dir: e.isDir,
              file_size: e.size,
              modification_time: 0,
            }));
        if (!files.length)
          send(404, {
            error_code: 'RESOURCE_DOES_NOT_EXIST',
            message: `No file or directory exists on path ${p}.`,
          });
        else send(200, { files });
        return true;
      }
      if (api[2] === 'read') {
        const data = this.dbfsFiles.get(p);
        const offset = Number(url.searchParams.get('offset') ?? 0);
        const length = Number(url.searchParams.get('length') ?? 524_288);
        if (length > 1_048_576)
          send(400, {
            error_code: 'MAX_READ_SIZE_EXCEEDED',
            message: `Cannot read more than 1MB, got ${length}`,
          });
        else if (!data)
          send(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `No file exists on path ${p}.` });
        else {
          const chunk = data.subarray(offset, offset + length);
          send(200, { bytes_read: chunk.length, data: chunk.toString('base64') });
        }
        return true;
      }
    }
    if (api[1] === 'fs') {
      const m = /^(directories|files)(\/Volumes\/.*)$/.exec(decodeURIComponent(api[2]!));
      if (m) {
        const p = m[2]!.replace(/\/+$/, '');
        if (this.isForbidden(p)) return denied(p);
        if (m[1] === 'files') {
          const data = this.volumeFiles.get(p);
          if (!data) send(404, { error_code: 'NOT_FOUND', message: `The file ${p} does not exist.` });
          else bytesOut(data);
          return true;
        }
        const all = FakeMlflow.entries(this.volumeFiles, p).map((e) => ({
          path: e.isDir ? `${p}/${e.name}/` : `${p}/${e.name}`,
          is_directory: e.isDir,
          name: e.name,
          ...(e.isDir ? {} : { file_size: e.size, last_modified: 0 }),
        }));
        if (!all.length) {
          send(404, { error_code: 'NOT_FOUND', message: `The directory ${p} does not exist.` });
          return true;
        }
        const { items, next } = this.page(all, url.searchParams.get('page_token'));
        send(200, { contents: items, ...(next ? { next_page_token: next } : {}) });
        return true;
      }
    }
    send(404, { error_code: 'ENDPOINT_NOT_FOUND', message: `no endpoint ${call.path}` });
    return true;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://x');
    const proxied = url.pathname.indexOf('/api/2.0/mlflow-artifacts/artifacts');
    const at = url.pathname.indexOf('/api/2.0/mlflow/');
    const artifactsRoot = '/api/2.0/mlflow-artifacts/';
    const prefix = at >= 0 ? url.pathname.slice(0, at) : proxied >= 0 ? url.pathname.slice(0, proxied) : '';
    // Artifact proxy calls are recorded as `artifacts` (a listing) or `artifacts/<path>` (a download).
    const path =
      at >= 0
        ? url.pathname.slice(at + '/api/2.0/mlflow/'.length)
        : proxied >= 0
          ? decodeURIComponent(url.pathname.slice(proxied + artifactsRoot.length))
          : url.pathname;
    let body: Record<string, unknown> = {};
    if (req.method === 'GET') body = Object.fromEntries(url.searchParams);
    else if (raw.length && proxied < 0 && !url.pathname.startsWith('/uc-storage/')) {
      try {
        body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        body = {};
      }
    }
    const call: Call = { method: req.method ?? '', path, prefix, body, status: 0 };
    if (req.headers.authorization) call.authorization = req.headers.authorization;
    this.calls.push(call);
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    };
    if (this.down) return send(503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'server is down' });
    if (this.failures.n > 0) {
      this.failures.n--;
      const s = this.failures.status;
      return send(
        s,
        { error_code: s === 429 ? 'REQUEST_LIMIT_EXCEEDED' : 'INTERNAL_ERROR', message: 'injected' },
        s === 429 ? { 'retry-after': '0' } : {},
      );
    }
    if (url.pathname.startsWith('/uc-storage/') && req.method === 'GET')
      return this.ucStorageRead(url, req, call, send, res);
    if (url.pathname.startsWith('/signed/') && this.databricksHandle(req, res, url, call, send)) return;
    if (this.token) {
      const auth = req.headers.authorization;
      if (!auth) return send(401, { error_code: 'UNAUTHENTICATED', message: 'credentials required' });
      if (auth !== `Bearer ${this.token}`)
        return send(403, { error_code: 'PERMISSION_DENIED', message: 'not allowed' });
    }
    if (this.databricksHandle(req, res, url, call, send)) return;
    if (url.pathname.startsWith('/uc-storage/')) {
      // Blob Storage Put Blob with the user delegation SAS Unity Catalog handed out.
      if (req.method !== 'PUT' || req.headers['x-ms-blob-type'] !== 'BlockBlob')
        return send(400, { error_code: 'InvalidHeaderValue', message: 'x-ms-blob-type: BlockBlob required' });
      if (url.search.slice(1) !== this.ucSas)
        return send(403, { error_code: 'AuthenticationFailed', message: 'SAS does not match' });
      if (this.ucStorageRedirect) {
        // 307 keeps the method and body: a client that followed it would send the bytes there.
        call.status = 307;
        res.writeHead(307, { location: `${this.ucStorageRedirect}${url.pathname}${url.search}` });
        res.end();
        return;
      }
      this.ucFiles.set(decodeURIComponent(url.pathname.slice('/uc-storage/'.length)), raw);
      call.body = { bytes: raw.length };
      return send(201, {});
    }
    if (proxied >= 0 && req.method === 'PUT') {
      // UploadArtifact: the body is the file; the answer is an empty message.
      const rest = decodeURIComponent(
        url.pathname.slice(proxied + '/api/2.0/mlflow-artifacts/artifacts'.length),
      ).replace(/^\//, '');
      if (!rest || rest.split('/').some((part) => part === '..' || part === ''))
        return send(400, { error_code: 'INVALID_PARAMETER_VALUE', message: `invalid artifact path ${rest}` });
      this.artifacts.set(rest, raw);
      call.body = { bytes: raw.length };
      return send(200, {});
    }
    if (proxied >= 0 && req.method === 'GET') {
      const rest = decodeURIComponent(
        url.pathname.slice(proxied + '/api/2.0/mlflow-artifacts/artifacts'.length),
      );
      if (rest === '' || rest === '/') {
        const folder = (url.searchParams.get('path') ?? '').replace(/\/+$/, '');
        const base = folder ? `${folder}/` : '';
        const entries = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
        for (const [p, data] of this.artifacts) {
          if (!p.startsWith(base)) continue;
          const [name, ...deeper] = p.slice(base.length).split('/');
          if (!name) continue;
          entries.set(
            name,
            deeper.length
              ? { path: name, is_dir: true }
              : { path: name, is_dir: false, file_size: data.length },
          );
        }
        return send(200, { files: [...entries.values()].sort((a, b) => a.path.localeCompare(b.path)) });
      }
      const data = this.artifacts.get(rest.replace(/^\//, ''));
      if (!data)
        return send(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `artifact ${rest} not found` });
      call.status = 200;
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(data.length),
      });
      res.end(data);
      return;
    }
    try {
      if (raw.length > 1_048_576) throw invalid('request body exceeds 1 MB');
      send(200, this.route(`${req.method} ${path}`, body));
    } catch (err) {
      if (err instanceof Rejection)
        return send(err.status, { error_code: err.errorCode, message: err.message });
      send(500, { error_code: 'INTERNAL_ERROR', message: (err as Error).message });
    }
  }

  /** Blob Storage's List Blobs and Get Blob on Unity Catalog storage, with either SAS. */
  private ucStorageRead(
    url: URL,
    req: IncomingMessage,
    call: Call,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
    res: ServerResponse,
  ): void {
    const xmlError = (status: number, code: string, message: string) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/xml', 'x-ms-error-code': code });
      res.end(
        `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
      );
    };
    if (req.headers.authorization) return xmlError(400, 'InvalidAuthenticationInfo', 'no bearer tokens here');
    if (this.ucStorageRedirect) {
      call.status = 302;
      res.writeHead(302, { location: `${this.ucStorageRedirect}${url.pathname}${url.search}` });
      res.end();
      return;
    }
    if (this.ucStorageFailures > 0) {
      this.ucStorageFailures--;
      return xmlError(503, 'ServerBusy', 'The server is currently unable to receive requests.');
    }
    const sasMatches = (sas: string) =>
      [...new URLSearchParams(sas)].every(([k, v]) => url.searchParams.get(k) === v);
    if (!sasMatches(this.ucReadSas) && !sasMatches(this.ucSas))
      return xmlError(403, 'AuthenticationFailed', 'SAS does not match');
    const rest = decodeURIComponent(url.pathname.slice('/uc-storage/'.length));
    const [container, ...blobParts] = rest.split('/');
    const headers = (size: number) => ({
      'last-modified': 'Sun, 01 Mar 2026 12:00:00 GMT',
      etag: '"0x8DC0000000000"',
      'x-ms-version': '2021-08-06',
      'content-length': String(size),
    });
    if (blobParts.length === 0 || (blobParts.length === 1 && blobParts[0] === '')) {
      if (url.searchParams.get('comp') !== 'list')
        return send(400, { error_code: 'InvalidQueryParameterValue', message: 'comp=list expected' });
      const prefix = url.searchParams.get('prefix') ?? '';
      const withMetadata = (url.searchParams.get('include') ?? '').split(',').includes('metadata');
      const entries = new Map<string, { size: number; folder: boolean }>();
      for (const [key, data] of this.ucFiles) {
        if (!key.startsWith(`${container}/`)) continue;
        const name = key.slice(container!.length + 1);
        if (!name.startsWith(prefix)) continue;
        entries.set(name, { size: data.length, folder: false });
        // A hierarchical namespace lists each folder under the prefix as an empty blob.
        const parts = name.slice(prefix.length).split('/');
        for (let i = 1; i < parts.length; i++)
          entries.set(`${prefix}${parts.slice(0, i).join('/')}`, { size: 0, folder: true });
      }
      const names = [...entries.keys()].sort();
      const marker = url.searchParams.get('marker') ?? '';
      const from = marker ? names.findIndex((n) => n >= marker) : 0;
      const size = Math.min(this.ucListPageSize, Number(url.searchParams.get('maxresults') ?? 5000));
      const page = from < 0 ? [] : names.slice(from, from + size);
      const next = from >= 0 && from + size < names.length ? names[from + size]! : '';
      const esc = (t: string) =>
        t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
      const blobs = page
        .map((n) => {
          const e = entries.get(n)!;
          const meta =
            withMetadata && e.folder
              ? '<Metadata><hdi_isfolder>true</hdi_isfolder></Metadata>'
              : withMetadata
                ? '<Metadata />'
                : '';
          return `<Blob><Name>${esc(n)}</Name><Properties><Last-Modified>Sun, 01 Mar 2026 12:00:00 GMT</Last-Modified><Etag>0x8DC0000000000</Etag><Content-Length>${e.size}</Content-Length><Content-Type>application/octet-stream</Content-Type><BlobType>BlockBlob</BlobType></Properties>${meta}</Blob>`;
        })
        .join('');
      const body = `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="${esc(this.url)}/uc-storage/" ContainerName="${esc(container!)}"><Prefix>${esc(prefix)}</Prefix>${marker ? `<Marker>${esc(marker)}</Marker>` : ''}<MaxResults>${size}</MaxResults><Blobs>${blobs}</Blobs><NextMarker>${esc(next)}</NextMarker></EnumerationResults>`;
      call.status = 200;
      res.writeHead(200, { 'content-type': 'application/xml', 'x-ms-version': '2021-08-06' });
      res.end(body);
      return;
    }
    const data = this.ucFiles.get(rest);
    if (!data) return xmlError(404, 'BlobNotFound', 'The specified blob does not exist.');
    call.status = 200;
    res.writeHead(200, {
      ...headers(data.length),
      'content-type': 'application/octet-stream',
      'x-ms-blob-type': 'BlockBlob',
    });
    res.end(data);
  }

  /** Unity Catalog's registered-model tags and version search (the mirror's claim on a model). */
  private ucModelRoute(route: string, b: Record<string, unknown>): unknown {
    switch (route) {
      case 'GET unity-catalog/registered-models/get': {
        const m = this.registeredModel(b.name);
        return { registered_model: { name: m.name, tags: this.ucModelTags.get(m.name) ?? [] } };
      }
      case 'POST unity-catalog/registered-models/tags': {
        this.registeredModel(b.name);
        if (typeof b.key !== 'string' || !b.key) throw invalid("Missing value for required parameter 'key'");
        const tags = (this.ucModelTags.get(String(b.name)) ?? []).filter((t) => t.key !== b.key);
        this.ucModelTags.set(String(b.name), [...tags, { key: b.key, value: String(b.value ?? '') }]);
        return {};
      }
      case 'GET unity-catalog/model-versions/search': {
        const m = /^name='([^'\\]*)'$/.exec(String(b.filter ?? ''));
        if (!m) throw invalid(`unsupported filter ${String(b.filter)}`);
        const all = this.models.get(m[1]!)?.versions ?? [];
        const size = Number(b.max_results ?? 10_000);
        const from = Number(b.page_token ?? 0);
        const page = all.slice(from, from + size);
        return {
          model_versions: page,
          ...(from + size < all.length ? { next_page_token: String(from + size) } : {}),
        };
      }
      default:
        return undefined;
    }
  }

  private run(id: unknown): FakeRun {
    const r = this.runs.get(String(id));
    if (!r) throw new Rejection(404, 'RESOURCE_DOES_NOT_EXIST', `Run '${String(id)}' not found`);
    return r;
  }

  private registeredModel(name: unknown): FakeModel {
    const m = this.models.get(String(name));
    if (!m)
      throw new Rejection(
        404,
        'RESOURCE_DOES_NOT_EXIST',
        `Registered Model with name=${String(name)} not found`,
      );
    return m;
  }

  private modelVersion(b: Record<string, unknown>): Record<string, unknown> {
    const v = this.models.get(String(b.name))?.versions.find((x) => x.version === String(b.version));
    if (!v)
      throw new Rejection(
        404,
        'RESOURCE_DOES_NOT_EXIST',
        `Model Version (name=${String(b.name)}, version=${String(b.version)}) not found`,
      );
    return v;
  }

  private route(route: string, b: Record<string, unknown>): unknown {
    switch (route) {
      case 'GET experiments/get-by-name': {
        const e = [...this.experiments.values()].find((x) => x.name === b.experiment_name);
        if (!e)
          throw new Rejection(
            404,
            'RESOURCE_DOES_NOT_EXIST',
            `Could not find experiment with name '${String(b.experiment_name)}'`,
          );
        return { experiment: { lifecycle_stage: 'active', ...e } };
      }
      case 'POST experiments/create': {
        if (typeof b.name !== 'string' || !b.name)
          throw invalid("Missing value for required parameter 'name'");
        if ([...this.experiments.values()].some((x) => x.name === b.name))
          throw new Rejection(400, 'RESOURCE_ALREADY_EXISTS', `Experiment '${b.name}' already exists.`);
        const id = String(++this.seq);
        this.experiments.set(id, { experiment_id: id, name: b.name, tags: (b.tags as Kv[]) ?? [] });
        return { experiment_id: id };
      }
      case 'POST runs/create': {
        if (!this.experiments.has(String(b.experiment_id)))
          throw new Rejection(
            404,
            'RESOURCE_DOES_NOT_EXIST',
            `No Experiment with id=${String(b.experiment_id)} exists`,
          );
        const id = `r${String(++this.seq).padStart(31, '0')}`;
        const run: FakeRun = {
          info: {
            run_id: id,
            run_uuid: id,
            experiment_id: String(b.experiment_id),
            run_name: String(b.run_name ?? id),
            status: 'RUNNING',
            ...(typeof b.start_time === 'number' ? { start_time: b.start_time } : {}),
            lifecycle_stage: 'active',
            artifact_uri: `mlflow-artifacts:/${String(b.experiment_id)}/${id}/artifacts`,
          },
          params: new Map(),
          tags: new Map(((b.tags as Kv[]) ?? []).map((t) => [t.key, t.value])),
          metrics: [],
          inputs: [],
        };
        this.runs.set(id, run);
        return { run: { info: run.info, data: { tags: b.tags ?? [] } } };
      }
      case 'POST runs/search': {
        const ids = (b.experiment_ids as string[] | undefined) ?? [];
        const m = /^tags\.`([^`]+)` = '((?:[^'\\]|\\.)*)'$/.exec(String(b.filter ?? ''));
        if (b.filter && !m) throw invalid(`unsupported filter ${String(b.filter)}`);
        const value = m?.[2]?.replace(/\\(.)/g, '$1');
        const found = [...this.runs.values()].filter(
          (r) => ids.includes(r.info.experiment_id) && (!m || r.tags.get(m[1]!) === value),
        );
        return { runs: found.slice(0, Number(b.max_results ?? 1000)).map((r) => ({ info: r.info })) };
      }
      case 'POST runs/update': {
        const r = this.run(b.run_id);
        if (!['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'].includes(String(b.status)))
          throw invalid(`invalid status ${String(b.status)}`);
        r.info.status = String(b.status);
        if (typeof b.end_time === 'number') r.info.end_time = b.end_time;
        return { run_info: r.info };
      }
      case 'POST runs/log-batch': {
        const r = this.run(b.run_id);
        const metrics = (b.metrics as FakeMetric[] | undefined) ?? [];
        const params = (b.params as Kv[] | undefined) ?? [];
        const tags = (b.tags as Kv[] | undefined) ?? [];
        if (metrics.length > 1000)
          throw invalid(
            `A batch logging request can contain at most 1000 metrics. Got ${metrics.length} metrics.`,
          );
        if (params.length > 100)
          throw invalid(
            `A batch logging request can contain at most 100 params. Got ${params.length} params.`,
          );
        if (tags.length > 100)
          throw invalid(`A batch logging request can contain at most 100 tags. Got ${tags.length} tags.`);
        if (metrics.length + params.length + tags.length > 1000)
          throw invalid('at most 1000 entities per batch');
        for (const e of [...metrics, ...params, ...tags])
          if (bytes(e.key) > 250 || !/^[A-Za-z0-9_\-./ ]+$/.test(e.key))
            throw invalid(`invalid key '${e.key}'`);
        for (const p of params)
          if (bytes(p.value) > 500) throw invalid(`param '${p.key}' value longer than 500 bytes`);
        for (const t of tags)
          if (bytes(t.value) > 5000) throw invalid(`tag '${t.key}' value longer than 5000 bytes`);
        for (const p of params) {
          const had = r.params.get(p.key);
          if (had !== undefined && had !== p.value)
            throw invalid(
              `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${had}' for run ID='${r.info.run_id}'. Attempted logging new value '${p.value}'.`,
            );
        }
        for (const p of params) r.params.set(p.key, p.value);
        for (const t of tags) r.tags.set(t.key, t.value);
        for (const m of metrics) {
          if (typeof m.value !== 'number' || typeof m.timestamp !== 'number')
            throw invalid(`metric '${m.key}' needs value and timestamp`);
          const same = r.metrics.some(
            (x) =>
              x.key === m.key &&
              x.value === m.value &&
              x.timestamp === m.timestamp &&
              x.step === (m.step ?? 0),
          );
          if (!same)
            r.metrics.push({ key: m.key, value: m.value, timestamp: m.timestamp, step: m.step ?? 0 });
        }
        return {};
      }
      case 'POST runs/log-inputs': {
        const r = this.run(b.run_id);
        for (const d of (b.datasets as FakeRun['inputs'] | undefined) ?? []) {
          const ds = d.dataset as { name?: string; digest?: string; source_type?: string; source?: string };
          if (!ds?.name || !ds.digest || !ds.source_type || !ds.source)
            throw invalid('dataset needs name, digest, source_type and source');
          // mlflow/utils/validation.py's dataset and input-tag limits.
          if (ds.name.length > 500) throw invalid('Dataset name exceeds the maximum length of 500');
          if (ds.digest.length > 36) throw invalid('Dataset digest exceeds the maximum length of 36');
          if (ds.source.length > 65535) throw invalid('Dataset source exceeds the maximum length of 65535');
          for (const t of d.tags ?? []) {
            if (t.key.length > 255) throw invalid('Dataset input tag key exceeds the maximum length of 255');
            if (t.value.length > 500)
              throw invalid('Dataset input tag value exceeds the maximum length of 500');
          }
          if (!r.inputs.some((x) => x.dataset.name === ds.name && x.dataset.digest === ds.digest))
            r.inputs.push(d);
        }
        return {};
      }
      case 'POST registered-models/create': {
        const name = String(b.name ?? '');
        if (!name) throw invalid("Missing value for required parameter 'name'");
        if (this.models.has(name))
          throw new Rejection(
            400,
            'RESOURCE_ALREADY_EXISTS',
            `Registered Model (name=${name}) already exists.`,
          );
        this.models.set(name, { name, versions: [], aliases: new Map() });
        return { registered_model: { name } };
      }
      case 'POST model-versions/create': {
        const m = this.registeredModel(b.name);
        const v = {
          name: m.name,
          version: String(m.versions.length + 1),
          source: b.source,
          run_id: b.run_id,
          run_link: b.run_link,
          tags: b.tags ?? [],
          status: 'READY',
        };
        m.versions.push(v);
        return { model_version: v };
      }
      case 'GET model-versions/search': {
        const m = /^name='((?:[^'\\]|\\.)*)' and run_id='((?:[^'\\]|\\.)*)'$/.exec(String(b.filter ?? ''));
        if (!m) throw invalid(`unsupported filter ${String(b.filter)}`);
        const unq = (v: string) => v.replace(/\\(.)/g, '$1');
        const versions = this.models.get(unq(m[1]!))?.versions ?? [];
        return { model_versions: versions.filter((v) => v.run_id === unq(m[2]!)) };
      }
      case 'POST registered-models/alias': {
        const m = this.registeredModel(b.name);
        if (!m.versions.some((v) => v.version === String(b.version)))
          throw invalid(`version ${String(b.version)} does not exist`);
        m.aliases.set(String(b.alias), String(b.version));
        return {};
      }
      case 'GET runs/get': {
        const r = this.run(b.run_id);
        return {
          run: {
            info: r.info,
            data: {
              params: [...r.params].map(([key, value]) => ({ key, value })),
              tags: [...r.tags].map(([key, value]) => ({ key, value })),
            },
          },
        };
      }
      case 'GET model-versions/get':
      case 'GET model-versions/get-download-uri': {
        const v = this.modelVersion(b);
        const m = this.models.get(String(b.name))!;
        if (route === 'GET model-versions/get-download-uri')
          return { artifact_uri: v.download_uri ?? String(v.source) };
        const { download_uri: _hidden, ...shown } = v;
        return {
          model_version: {
            ...shown,
            aliases: [...m.aliases].filter(([, x]) => x === v.version).map(([a]) => a),
          },
        };
      }
      case 'GET registered-models/alias': {
        const m = this.models.get(String(b.name));
        const version = m?.aliases.get(String(b.alias));
        if (!m || !version)
          throw new Rejection(
            404,
            'RESOURCE_DOES_NOT_EXIST',
            `Registered model alias ${String(b.alias)} not found.`,
          );
        return this.route('GET model-versions/get', { name: m.name, version });
      }
      case 'POST unity-catalog/registered-models/create': {
        if (!/^[^.]+\.[^.]+\.[^.]+$/.test(String(b.name ?? '')))
          throw invalid(`Unity Catalog model names have three parts: ${String(b.name)}`);
        const made = this.route('POST registered-models/create', b);
        if (Array.isArray(b.tags) && b.tags.length) this.ucModelTags.set(String(b.name), b.tags as Kv[]);
        return made;
      }
      case 'POST unity-catalog/model-versions/create': {
        const made = this.route('POST model-versions/create', b) as {
          model_version: Record<string, unknown>;
        };
        const v = made.model_version;
        // Unity Catalog's versions answer with their description (model-versions/search reads it).
        if (b.description !== undefined) v.description = b.description;
        v.status = 'PENDING_REGISTRATION';
        v.storage_location = `abfss://uc@fakeuc.dfs.core.windows.net/models/${String(b.name)}/versions/${String(v.version)}`;
        return { model_version: v };
      }
      case 'POST unity-catalog/model-versions/generate-temporary-credentials': {
        const v = this.modelVersion(b);
        if (v.status === 'PENDING_REGISTRATION' && b.operation !== 'MODEL_VERSION_OPERATION_READ_WRITE')
          throw invalid(`operation ${String(b.operation)} on a pending version`);
        if (this.ucCredentials) return { credentials: this.ucCredentials(String(b.operation)) };
        if (b.operation === 'MODEL_VERSION_OPERATION_READ')
          return {
            credentials: {
              azure_user_delegation_sas: { sas_token: this.ucReadSas },
              expiration_time: Date.now() + 15 * 60_000,
            },
          };
        return {
          credentials: {
            azure_user_delegation_sas: { sas_token: this.ucSas },
            expiration_time: Date.now() + 15 * 60_000,
          },
        };
      }
      case 'POST unity-catalog/model-versions/finalize': {
        const v = this.modelVersion(b);
        const at = String(v.storage_location).replace(/^abfss:\/\/([^@]+)@[^/]+\//, '$1/');
        if (!this.ucFiles.has(`${at}/MLmodel`))
          throw invalid(`no MLmodel file at ${String(v.storage_location)}`);
        v.status = 'READY';
        return { model_version: v };
      }
      case 'POST unity-catalog/registered-models/alias': {
        const v = this.modelVersion(b);
        if (v.status !== 'READY') throw invalid(`version ${String(b.version)} is ${String(v.status)}`);
        return this.route('POST registered-models/alias', b);
      }
      case 'GET unity-catalog/registered-models/alias':
        return this.route('GET registered-models/alias', b);
      case 'GET unity-catalog/model-versions/get':
        return this.route('GET model-versions/get', b);
      case 'GET artifacts/list':
      case 'POST artifacts/credentials-for-read':
        return this.databricksRoute(route, b);
      default: {
        const uc = this.ucModelRoute(route, b);
        if (uc !== undefined) return uc;
        throw new Rejection(404, 'ENDPOINT_NOT_FOUND', `no endpoint ${route}`);
      }
    }
  }
}
