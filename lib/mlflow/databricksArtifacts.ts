import { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { NonRetriableError, TransientError, ValidationError } from '../errors';
import { folderPathProblem } from '../mlmodel/blobFolder';
import type { ArtifactFile, Fetch, MlflowClient } from './client';
import { MlflowRejected } from './client';

/**
 * Reading a model folder that a Databricks workspace holds (docs/mlflow.md, "Models logged in
 * Databricks"), for promoting it through Sluice's gate. Three stores, each through the workspace's
 * own REST API with the token Sluice already uses for `MLFLOW_TRACKING_URI=databricks`:
 *
 * - **run artifacts** (`dbfs:/databricks/mlflow-tracking/<experiment>/<run>/artifacts/<path>`, what
 *   `mlflow.<flavor>.log_model` leaves in a notebook): listed with MLflow's `GET artifacts/list`
 *   (`run_id`, `path`, `page_token`), read with the signed URIs `POST artifacts/credentials-for-read`
 *   hands out (databricks_artifacts.proto, GetCredentialsForRead: `run_id`, `path` (repeated),
 *   `page_token` → `credential_infos` [{`run_id`, `path`, `signed_uri`, `type`, `headers`}],
 *   `next_page_token`). The DBFS API cannot read this access-controlled root; MLflow's own client
 *   does it this way too. Signed URIs go only to Azure Storage hosts, never with Sluice's token, and
 *   no message carries one.
 * - **other DBFS paths** (`dbfs:/mnt/…`, `dbfs:/FileStore/…`): `GET /api/2.0/dbfs/list?path=` and
 *   `GET /api/2.0/dbfs/read?path=&offset=&length=` (base64 `data`, at most 1 MB a read).
 * - **Unity Catalog volumes** (`/Volumes/<catalog>/<schema>/<volume>/…`, or `dbfs:/Volumes/…`): the
 *   Files API, `GET /api/2.0/fs/directories/Volumes/…` (`contents`, `next_page_token`) and
 *   `GET /api/2.0/fs/files/Volumes/…` (the bytes).
 *
 * A reader answers the artifact proxy's two calls (`listArtifacts`, `openArtifact`) for paths under
 * one location, so promote.ts lists, bounds and downloads exactly as it does through the proxy. Every
 * entry a store lists must sit directly in the folder listed: anything else is refused
 * (`mlflow_artifact_path_invalid`), so nothing outside the model folder is ever read. API calls get
 * the MLflow client's bounded retry of 429/5xx; signed URI downloads get their own bounded retry.
 */

/** Where a model folder is in a Databricks workspace (the canonical location string is `root`). */
export type DatabricksLocation =
  | { store: 'run'; root: string; runId: string; path: string }
  | { store: 'dbfs'; root: string; path: string }
  | { store: 'volume'; root: string; path: string };

const FIELD = 'candidate.mlflow';
const RUN_ROOT =
  /^dbfs:\/databricks\/mlflow-tracking\/([0-9A-Za-z_-]{1,64})\/([0-9A-Za-z-]{1,64})\/artifacts(?:\/(.*))?$/;
/** One read of the DBFS API: its documented maximum (1 MB; more is MAX_READ_SIZE_EXCEEDED). */
export const DBFS_READ_BYTES = 1_048_576;
/** Paths asked for in one credentials-for-read request. */
const CREDENTIAL_BATCH = 100;
/** Pages of one listing (1,000 entries a page on the Files API): bounds a server that never stops paging. */
const MAX_PAGES = 100;

/** Whether a location names a Databricks store (so the refusal, when not configured, can say why). */
export function isDatabricksLocation(location: string): boolean {
  return /^dbfs:/i.test(location) || location.startsWith('/Volumes/');
}

function invalid(location: string, why: string): ValidationError {
  return new ValidationError('mlflow_artifacts_unreachable', `${location.slice(0, 300)}: ${why}`, {
    field: FIELD,
  });
}

/**
 * The store and path of a Databricks location, or a ValidationError naming why Sluice cannot read
 * it: a `dbfs://<profile>@…` of another workspace, a workspace registry copy
 * (`dbfs:/databricks/mlflow-registry/…`, read through the version's source instead:
 * {@link registrySourceLocation}), another access-controlled `dbfs:/databricks/…` root, or a path with
 * `..`, `.` or empty segments.
 */
export function parseDatabricksLocation(location: string): DatabricksLocation {
  const trimmed = location.replace(/\/+$/, '');
  if (/^dbfs:\/\//i.test(trimmed))
    throw invalid(
      location,
      'a dbfs:// location with an authority names another workspace (a databricks profile), which a Function App does not have',
    );
  const run = RUN_ROOT.exec(trimmed);
  if (run) {
    const rel = run[3] ?? '';
    const problem = rel ? folderPathProblem(rel) : undefined;
    if (problem) throw invalid(location, `the artifact path has ${problem}`);
    return { store: 'run', root: trimmed, runId: run[2]!, path: rel };
  }
  const volume = /^(?:dbfs:)?\/Volumes\/(.+)$/.exec(trimmed);
  if (volume) {
    const problem = folderPathProblem(volume[1]!);
    if (problem) throw invalid(location, `the volume path has ${problem}`);
    if (volume[1]!.split('/').length < 3)
      throw invalid(location, 'a volume path is /Volumes/<catalog>/<schema>/<volume>/<folder>');
    const root = `/Volumes/${volume[1]!}`;
    return { store: 'volume', root, path: root };
  }
  const dbfs = /^dbfs:\/(.*)$/i.exec(trimmed);
  if (!dbfs) throw invalid(location, 'not a dbfs:/ or /Volumes/ location');
  const rest = dbfs[1]!.replace(/^\/+/, '');
  const problem = folderPathProblem(rest);
  if (problem) throw invalid(location, `the DBFS path has ${problem}`);
  if (/^databricks\/mlflow-registry(\/|$)/.test(rest))
    throw invalid(
      location,
      "a workspace model registry copy, which Sluice reads through the version's source (a run's dbfs:/databricks/mlflow-tracking/ artifacts); this version's source is not one",
    );
  if (/^databricks(\/|$)/.test(rest))
    throw invalid(
      location,
      'dbfs:/databricks/ is access-controlled by the workspace; only run artifacts under dbfs:/databricks/mlflow-tracking/<experiment>/<run>/artifacts are read (through MLflow)',
    );
  return { store: 'dbfs', root: `dbfs:/${rest}`, path: `/${rest}` };
}

/**
 * A workspace registry version's files are at `dbfs:/databricks/mlflow-registry/<id>/…`, which only
 * the registry's own artifact API reads. The same files are the version's source, a run's
 * artifacts: that location is read instead (`dbfs:/databricks/mlflow-tracking/…` as it is,
 * `runs:/<run>/<path>` through the run's artifact root). Any other location is returned unchanged.
 */
export async function registrySourceLocation(
  location: string,
  source: string | undefined,
  runArtifactRoot: (runId: string) => Promise<string | undefined>,
): Promise<string> {
  if (!/^dbfs:\/+databricks\/mlflow-registry\//i.test(location) || !source) return location;
  if (RUN_ROOT.test(source.replace(/\/+$/, ''))) return source;
  const run = /^runs:\/([0-9A-Za-z-]{1,64})\/(.+)$/.exec(source);
  if (run) {
    const root = await runArtifactRoot(run[1]!);
    if (root && RUN_ROOT.test(root.replace(/\/+$/, '')))
      return `${root.replace(/\/+$/, '')}/${run[2]!.replace(/^\/+|\/+$/g, '')}`;
  }
  return location;
}

export interface DatabricksArtifactOptions {
  /**
   * The tracking client on the workspace (`MLFLOW_TRACKING_URI=databricks`): the MLflow, DBFS and
   * Files API calls go through it, with its token and its bounded retry.
   */
  client: Pick<MlflowClient, 'call'>;
  /** For signed URIs (default: global fetch). */
  fetch?: Fetch;
  /**
   * Where a signed URI that passed the Azure Storage host check is fetched (tests: the fake's
   * loopback). Default: the URI itself.
   */
  signedUrl?: (uri: URL) => string;
  /** Attempts per signed URI download for 429/5xx and network failures (default 4). */
  maxAttempts?: number;
  firstDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** What promote.ts needs of a store: the artifact proxy's two calls. */
export interface ArtifactReader {
  listArtifacts(folder: string): Promise<ArtifactFile[]>;
  openArtifact(file: string): Promise<ReadableStream<Uint8Array>>;
}

interface Credential {
  signed_uri?: string;
  type?: string;
  path?: string;
  headers?: { name?: string; value?: string }[];
}

/** Azure Storage's blob and ADLS Gen2 endpoints, public and sovereign clouds. */
const AZURE_STORAGE_HOST =
  /^[a-z0-9]{3,24}\.(blob|dfs)\.(core\.windows\.net|core\.chinacloudapi\.cn|core\.usgovcloudapi\.net)$/;

/**
 * Checks a signed URI before anything is sent to it: https, an Azure Storage host (the workspace's
 * storage on Azure Databricks), no user info. The refusal names the host only, never the URI (its
 * query is the credential).
 */
export function checkSignedUri(uri: string, file: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new NonRetriableError(
      'mlflow_signed_uri_refused',
      `Databricks gave ${file} a signed URI that is not a URL`,
    );
  }
  if (url.protocol !== 'https:' || url.username || url.password || !AZURE_STORAGE_HOST.test(url.hostname))
    throw new NonRetriableError(
      'mlflow_signed_uri_refused',
      `Databricks gave ${file} a signed URI on ${url.protocol}//${url.hostname.slice(0, 100)}, which is not Azure Storage; Sluice reads signed URIs on Azure Storage (https://<account>.blob|dfs.core.windows.net) only`,
    );
  return url;
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

/**
 * A reader of the folder at `location` (a canonical `root` of {@link parseDatabricksLocation}).
 * `listArtifacts` and `openArtifact` take `root` or paths under it; each listing answers names in
 * the folder (as the artifact proxy does), with sizes.
 */
export function databricksArtifactReader(
  options: DatabricksArtifactOptions,
  location: string,
): ArtifactReader {
  const loc = parseDatabricksLocation(location);
  const relOf = (p: string): string => {
    if (p === loc.root) return '';
    if (!p.startsWith(`${loc.root}/`))
      throw new NonRetriableError(
        'mlflow_artifact_path_invalid',
        `${p.slice(0, 300)} is outside ${loc.root}`,
      );
    const rel = p.slice(loc.root.length + 1);
    const problem = folderPathProblem(rel);
    if (problem)
      throw new NonRetriableError(
        'mlflow_artifact_path_invalid',
        `${loc.root}: the path ${JSON.stringify(rel)} has ${problem}`,
      );
    return rel;
  };
  /** An entry's name, when its listed path is directly in `folder` (absolute or folder-relative). */
  const nameIn = (folder: string, listed: string | undefined): string => {
    const p = (listed ?? '').replace(/\/+$/, '');
    const prefix = folder ? `${folder}/` : '';
    const name = p.startsWith(prefix) ? p.slice(prefix.length) : '';
    if (!name || name.includes('/') || folderPathProblem(name))
      throw new NonRetriableError(
        'mlflow_artifact_path_invalid',
        `${loc.root}: the listing of ${folder || '/'} has an entry outside it: ${JSON.stringify(p.slice(0, 300))}`,
      );
    return name;
  };
  const join = (a: string, b: string) => (a && b ? `${a}/${b}` : a || b);

  if (loc.store === 'run') return runReader(options, loc, relOf, nameIn, join);
  if (loc.store === 'dbfs') {
    return {
      async listArtifacts(folder) {
        const abs = join(loc.path, relOf(folder));
        const r = await options.client.call<{
          files?: { path?: string; is_dir?: boolean; file_size?: number }[];
        }>('GET', 'list', { path: abs }, { root: 'dbfs' });
        return (r.files ?? []).map((f) => ({
          path: nameIn(abs, f.path),
          is_dir: f.is_dir === true,
          ...(f.is_dir ? {} : { file_size: Number(f.file_size ?? 0) }),
        }));
      },
      async openArtifact(file) {
        const abs = join(loc.path, relOf(file));
        return dbfsStream(options.client, abs);
      },
    };
  }
  return {
    async listArtifacts(folder) {
      const abs = join(loc.path, relOf(folder));
      const out: ArtifactFile[] = [];
      let token: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const r = await options.client.call<{
          contents?: { path?: string; name?: string; is_directory?: boolean; file_size?: number }[];
          next_page_token?: string;
        }>('GET', `directories${encodePath(abs)}`, token ? { page_token: token } : {}, { root: 'fs' });
        for (const e of r.contents ?? [])
          out.push({
            path: nameIn(abs, e.path ?? (e.name ? `${abs}/${e.name}` : undefined)),
            is_dir: e.is_directory === true,
            ...(e.is_directory ? {} : { file_size: Number(e.file_size ?? 0) }),
          });
        token = r.next_page_token || undefined;
        if (!token) return out;
      }
      throw new NonRetriableError('model_output_invalid', `${abs} lists more than ${MAX_PAGES} pages`);
    },
    async openArtifact(file) {
      const abs = join(loc.path, relOf(file));
      const res = await options.client.call<Response>(
        'GET',
        `files${encodePath(abs)}`,
        {},
        { root: 'fs', raw: true },
      );
      if (!res.body) throw new TransientError('mlflow_unavailable', `the Files API sent no body for ${abs}`);
      return res.body;
    },
  };
}

/** A DBFS file as a stream of `dbfs/read` chunks (1 MB each), read as the consumer pulls. */
function dbfsStream(client: DatabricksArtifactOptions['client'], abs: string): ReadableStream<Uint8Array> {
  let offset = 0;
  // node:stream/web's class (what Readable.fromWeb takes), whatever realm the caller runs in.
  return new NodeReadableStream<Uint8Array>({
    async pull(controller) {
      const r = await client.call<{ bytes_read?: number | string; data?: string }>(
        'GET',
        'read',
        { path: abs, offset: String(offset), length: String(DBFS_READ_BYTES) },
        { root: 'dbfs' },
      );
      const chunk = Buffer.from(r.data ?? '', 'base64');
      const said = Number(r.bytes_read ?? chunk.length);
      if (chunk.length !== said || chunk.length > DBFS_READ_BYTES)
        throw new TransientError(
          'mlflow_unavailable',
          `DBFS read of ${abs} at ${offset} answered ${chunk.length} bytes but said ${said}`,
        );
      if (chunk.length === 0) {
        controller.close();
        return;
      }
      offset += chunk.length;
      controller.enqueue(new Uint8Array(chunk));
      if (chunk.length < DBFS_READ_BYTES) controller.close();
    },
  }) as ReadableStream<Uint8Array>;
}

function runReader(
  options: DatabricksArtifactOptions,
  loc: Extract<DatabricksLocation, { store: 'run' }>,
  relOf: (p: string) => string,
  nameIn: (folder: string, listed: string | undefined) => string,
  join: (a: string, b: string) => string,
): ArtifactReader {
  // Per download: files listed so far (run-relative), and signed URIs asked for in batches.
  const listed: string[] = [];
  const signed = new Map<string, Credential>();
  const f = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  async function credentialsFor(runPath: string): Promise<Credential> {
    const have = signed.get(runPath);
    if (have) return have;
    // This file and the next listed ones not yet signed: one request per batch, not per file.
    const at = listed.indexOf(runPath);
    const batch = [runPath, ...listed.slice(at + 1).filter((p) => !signed.has(p))].slice(0, CREDENTIAL_BATCH);
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = await options.client.call<{ credential_infos?: Credential[]; next_page_token?: string }>(
        'POST',
        'artifacts/credentials-for-read',
        { run_id: loc.runId, path: batch, ...(token ? { page_token: token } : {}) },
      );
      for (const c of r.credential_infos ?? []) if (c.path && batch.includes(c.path)) signed.set(c.path, c);
      token = r.next_page_token || undefined;
      if (!token) break;
    }
    const got = signed.get(runPath);
    if (!got?.signed_uri)
      throw new NonRetriableError(
        'mlflow_artifact_no_credential',
        `Databricks gave no read credential for ${runPath} of run ${loc.runId}`,
      );
    return got;
  }

  async function download(runPath: string): Promise<ReadableStream<Uint8Array>> {
    const max = options.maxAttempts ?? 4;
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      const cred = await credentialsFor(runPath);
      const url = checkSignedUri(cred.signed_uri!, runPath);
      const headers: Record<string, string> = {};
      for (const h of cred.headers ?? [])
        if (h.name && /^[A-Za-z0-9-]{1,100}$/.test(h.name) && !/^(authorization|host|cookie)$/i.test(h.name))
          headers[h.name] = h.value ?? '';
      let res: Response | undefined;
      let why: string;
      try {
        res = await f(options.signedUrl ? options.signedUrl(url) : url.href, {
          headers,
          // Never followed: a redirect would take the signed request (and its headers, the
          // encryption key among them) to whatever host the answer names.
          redirect: 'manual',
          signal: AbortSignal.timeout(10 * 60_000),
        });
        why = `answered ${res.status}`;
      } catch (err) {
        // Never the error itself: fetch puts the whole URL, signature included, into some messages.
        why = `failed: ${(err as Error).name}`;
      }
      if (res?.ok && res.body) return res.body;
      await res?.body?.cancel();
      const status = res?.status ?? 0;
      if (status >= 300 && status < 400)
        throw new NonRetriableError(
          'mlflow_storage_redirect_refused',
          `reading ${runPath} of run ${loc.runId} from its signed URI on ${url.hostname} answered ${status}, a redirect${locationHost(res!)}, which Sluice does not follow`,
        );
      if ((status === 403 || status === 401) && !refreshed) {
        // A signed URI that expired while earlier files downloaded: ask for a fresh one, once.
        refreshed = true;
        signed.delete(runPath);
        continue;
      }
      const transient = status === 0 || status === 408 || status === 429 || status >= 500;
      if (!transient)
        throw new NonRetriableError(
          'mlflow_artifact_download_failed',
          `reading ${runPath} of run ${loc.runId} from its signed URI on ${url.hostname} ${why}`,
        );
      if (attempt >= max)
        throw new TransientError(
          'mlflow_unavailable',
          `reading ${runPath} of run ${loc.runId} from its signed URI on ${url.hostname} ${why} (${max} attempts)`,
        );
      await sleep(Math.min(10_000, (options.firstDelayMs ?? 500) * 2 ** (attempt - 1)));
    }
  }

  return {
    async listArtifacts(folder) {
      const runPath = join(loc.path, relOf(folder));
      const out: ArtifactFile[] = [];
      let token: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const r = await options.client.call<{ files?: ArtifactFile[]; next_page_token?: string }>(
          'GET',
          'artifacts/list',
          {
            run_id: loc.runId,
            path: runPath,
            ...(token ? { page_token: token } : {}),
          },
        );
        for (const e of r.files ?? []) {
          const name = nameIn(runPath, e.path);
          out.push({ ...e, path: name });
          if (!e.is_dir) listed.push(join(runPath, name));
        }
        token = r.next_page_token || undefined;
        if (!token) return out;
      }
      throw new NonRetriableError('model_output_invalid', `${loc.root} lists more than ${MAX_PAGES} pages`);
    },
    async openArtifact(file) {
      return download(join(loc.path, relOf(file)));
    },
  };
}

/**
 * A refusal of the workspace while the folder is looked at, when a run starts: unknown path
 * (RESOURCE_DOES_NOT_EXIST, NOT_FOUND, 404) → 400 `mlflow_model_not_found`; the identity not allowed
 * on the path (403) → 400 `mlflow_artifacts_forbidden` naming what to grant; any other refusal of
 * the store → 400 with its code. Other errors (an outage, 401) are left to the caller.
 */
export function databricksStartProblem(err: unknown, uri: string, location: string): unknown {
  const where = `${uri}'s files at ${location.slice(0, 300)}`;
  if (err instanceof MlflowRejected) {
    if (err.status === 404 || err.errorCode === 'RESOURCE_DOES_NOT_EXIST' || err.errorCode === 'NOT_FOUND')
      return new ValidationError('mlflow_model_not_found', `Databricks has no ${where} (${err.message})`, {
        field: FIELD,
      });
    if (err.status === 403)
      return new ValidationError(
        'mlflow_artifacts_forbidden',
        `Databricks does not let Sluice read ${where}: grant the app's identity (or token) read access (READ VOLUME on a volume, CAN READ on the run's experiment, or the DBFS path) (${err.message})`,
        { field: FIELD },
      );
    if (err.status !== 401)
      return new ValidationError(err.code, `Databricks refused ${where}: ${err.message}`, { field: FIELD });
  }
  if (
    err instanceof NonRetriableError &&
    !(err instanceof ValidationError) &&
    !(err instanceof MlflowRejected)
  )
    return new ValidationError(err.code, `${where}: ${err.message}`, { field: FIELD });
  return err;
}

/** ` to <host>` of a redirect's Location (the host only: the rest may carry a signature), or nothing. */
function locationHost(res: Response): string {
  const location = res.headers.get('location');
  if (!location) return '';
  try {
    return ` to ${new URL(location, res.url || undefined).host}`;
  } catch {
    return '';
  }
}
