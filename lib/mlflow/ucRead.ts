import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BlobItem, StoragePipelineOptions } from '@azure/storage-blob';
import { AnonymousCredential, ContainerClient, RestError } from '@azure/storage-blob';
import type { MlflowCandidate } from '../contracts/mlflowCandidate';
import { NonRetriableError, TransientError, ValidationError } from '../errors';
import { folderPathProblem } from '../mlmodel/blobFolder';
import type { ByteCount } from '../mlmodel/folder';
import { byteLimit, defaultMaxFiles, defaultModelMaxBytes } from '../mlmodel/folder';
import type { MlflowClient, ModelVersion } from './client';
import { MlflowRejected } from './client';
import { storeName } from './storeName';
import { abfssBlobContainer, UC_MODEL_NAME } from './unityCatalog';

/**
 * Promote a model version from Databricks Unity Catalog (MLFLOW_REGISTRY_URI=databricks-uc;
 * docs/mlflow.md, "Promote a model trained elsewhere"), the way MLflow's own client reads one
 * (UnityCatalogModelsArtifactRepository; databricks_uc_registry_messages.proto):
 *
 * 1. the version (`unity-catalog/model-versions/get`) or the version an alias points at
 *    (`unity-catalog/registered-models/alias`), READY, with its `storage_location`;
 * 2. temporary credentials for it, operation MODEL_VERSION_OPERATION_READ: on Azure a user
 *    delegation SAS for that location;
 * 3. its files listed (Blob Storage List Blobs) and read (Get Blob) with the SAS, on the Blob
 *    endpoint of the `abfss://` location's account only (the SAS goes to Azure Storage hosts only).
 *
 * No error message carries the SAS: storage failures are reported by status and error code only.
 */

const FIELD = 'candidate.mlflow';

export interface UcReadOptions {
  /**
   * A storage location's container URL and path (default: the `abfss://` location on the Blob
   * endpoint). Only ever called for a location on an Azure Storage host.
   */
  blobContainer?: (storageLocation: string) => { containerUrl: string; prefix: string };
  /** The storage client's retries of 5xx, 429 and network failures (default: the SDK's, 4 tries). */
  retry?: { maxTries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
}

type UcClient = Pick<MlflowClient, 'call'>;
type UcVersion = ModelVersion & { storage_location?: string };

/** One file of a version's folder: its blob name and path in the folder. */
interface UcFile {
  blob: string;
  rel: string;
  size: number;
}

const credentialKinds: Record<string, string> = {
  aws_temp_credentials: 'Amazon S3 credentials',
  gcp_oauth_token: 'a Google Cloud Storage token',
  r2_temp_credentials: 'Cloudflare R2 credentials',
};

/**
 * The READ SAS of a version. Default storage (read through presigned URLs) and any other cloud's
 * credentials are refused, `mlflow_uc_storage_unsupported`, naming what Unity Catalog answered.
 */
async function readSas(client: UcClient, name: string, version: string): Promise<string> {
  const r = await client.call<{
    credentials?: {
      azure_user_delegation_sas?: { sas_token?: string };
      storage_mode?: string;
      [kind: string]: unknown;
    };
  }>('POST', 'unity-catalog/model-versions/generate-temporary-credentials', {
    name,
    version,
    operation: 'MODEL_VERSION_OPERATION_READ',
  });
  const c = r.credentials ?? {};
  if (c.storage_mode === 'DEFAULT_STORAGE')
    throw new NonRetriableError(
      'mlflow_uc_storage_unsupported',
      `${name} version ${version} is in Databricks default storage, which is read through presigned URLs, not an Azure SAS; Sluice reads Unity Catalog models from Azure storage (abfss://) only`,
    );
  const sas = c.azure_user_delegation_sas?.sas_token;
  if (!sas) {
    const kinds = Object.keys(c)
      .filter((k) => !['expiration_time', 'storage_mode', 'encryption_details'].includes(k))
      .map((k) => credentialKinds[k] ?? k);
    throw new NonRetriableError(
      'mlflow_uc_storage_unsupported',
      `Unity Catalog answered ${kinds.join(', ') || 'no credentials'} for reading ${name} version ${version}; Sluice reads with an Azure user delegation SAS only`,
    );
  }
  return sas.replace(/^\?/, '');
}

/** ` to <host>` of a redirect's Location (the host only: the rest may carry a signature), or nothing. */
function redirectTarget(err: unknown): string {
  const location = err instanceof RestError ? err.response?.headers.get('location') : undefined;
  if (!location) return '';
  try {
    return ` to ${new URL(location).host}`;
  } catch {
    return '';
  }
}

/**
 * The storage client's options: the SDK's pipeline follows a 3xx answer to a GET by default (its
 * redirect policy, @azure/core-rest-pipeline `redirectOptions`), taking the request, SAS in the
 * query, wherever the answer points. Sluice follows none: with no redirect allowed, a 3xx comes
 * back as an error ({@link storageError}, `mlflow_storage_redirect_refused`).
 * `StoragePipelineOptions` does not declare `redirectOptions`, but the storage client hands its
 * options to core-client's `createClientPipeline` as they are (test/integration/mlflow tests it).
 */
export function storageClientOptions(retry: UcReadOptions['retry']): StoragePipelineOptions {
  const noRedirects = { redirectOptions: { maxRetries: 0 } };
  return { ...noRedirects, retryOptions: { maxTries: 4, ...retry } };
}

/** A storage failure without its message (the SDK's and fetch's messages may carry the URL, SAS included). */
function storageError(err: unknown, what: string): Error {
  if (err instanceof NonRetriableError || err instanceof TransientError) return err;
  const status = err instanceof RestError ? err.statusCode : undefined;
  const raw =
    err instanceof RestError
      ? err.code
      : ((err as { cause?: { code?: unknown } }).cause?.code ?? (err as Error).name);
  const code = typeof raw === 'string' && /^[A-Za-z0-9_]{1,60}$/.test(raw) ? ` ${raw}` : '';
  if (status !== undefined && status >= 300 && status < 400)
    return new NonRetriableError(
      'mlflow_storage_redirect_refused',
      `${what}: storage answered ${status}, a redirect${redirectTarget(err)}, which Sluice does not follow (the SAS is for the storage location's own account)`,
    );
  if (status === 401 || status === 403)
    return new NonRetriableError(
      'mlflow_uc_storage_refused',
      `Unity Catalog storage refused the temporary READ credentials while ${what} (${status}${code})`,
    );
  if (status === 404)
    return new NonRetriableError('mlflow_uc_file_missing', `${what}: storage answered 404${code}`);
  if (status !== undefined && status < 500 && status !== 408 && status !== 429)
    return new NonRetriableError('mlflow_uc_download_failed', `${what}: storage answered ${status}${code}`);
  return new TransientError(
    'mlflow_uc_download_failed',
    `${what} failed (${status === undefined ? 'no answer' : status}${code})`,
  );
}

/** A folder marker of a hierarchical-namespace account (listed as an empty blob), not a file. */
const isDirectory = (b: BlobItem) =>
  b.metadata?.hdi_isfolder === 'true' ||
  (b.properties as { resourceType?: string }).resourceType === 'directory';

/**
 * The files of version `version` of `name` at `location`, listed with a fresh READ SAS. The
 * model-folder limits hold on the listing (`model_too_large`, `model_output_invalid` for too many
 * files or a path that escapes the folder), before a byte is read.
 */
async function listVersion(
  client: UcClient,
  name: string,
  version: string,
  location: string,
  limits: { maxBytes: number; maxFiles: number },
  options: UcReadOptions,
): Promise<{ container: ContainerClient; files: UcFile[] }> {
  // The allow-list holds whatever maps the location (tests point it at a local server): the SAS is
  // asked for only once the location is known to be Azure Storage's.
  const azure = abfssBlobContainer(location);
  const { containerUrl, prefix } = options.blobContainer ? options.blobContainer(location) : azure;
  const sas = await readSas(client, name, version);
  const container = new ContainerClient(
    `${containerUrl}?${sas}`,
    new AnonymousCredential(),
    storageClientOptions(options.retry),
  );
  const base = prefix ? `${prefix}/` : '';
  const what = `${name} version ${version}`;
  const files: UcFile[] = [];
  let total = 0;
  try {
    for await (const page of container
      // The whole listing is bounded (a storage that stops answering must not hold the step).
      .listBlobsFlat({ prefix: base, includeMetadata: true, abortSignal: AbortSignal.timeout(5 * 60_000) })
      .byPage({ maxPageSize: 5_000 })) {
      for (const item of page.segment.blobItems) {
        if (isDirectory(item)) continue;
        const rel = item.name.slice(base.length);
        const problem = folderPathProblem(rel);
        if (problem)
          throw new NonRetriableError(
            'model_output_invalid',
            `${what} has a file with a bad path (${problem}): ${JSON.stringify(rel.slice(0, 200))}`,
          );
        const size = item.properties.contentLength ?? 0;
        files.push({ blob: item.name, rel, size });
        total += size;
        if (files.length > limits.maxFiles)
          throw new NonRetriableError(
            'model_output_invalid',
            `${what} has more than ${limits.maxFiles} files`,
          );
        if (total > limits.maxBytes)
          throw new NonRetriableError(
            'model_too_large',
            `${what} is over the model size limit of ${limits.maxBytes} bytes (at least ${total} bytes)`,
          );
      }
    }
  } catch (err) {
    throw storageError(err, `listing the files of ${what}`);
  }
  return { container, files };
}

/**
 * The Unity Catalog version a `models:/<catalog>.<schema>.<model>/<version>` or `…@<alias>` URI
 * names, pinned and checked when the run starts: READY, in Azure storage, readable with READ
 * credentials, within the model-folder limits and with an MLmodel file. Each refusal is a 400 naming
 * the URI (`mlflow_model_not_found` through `refuse`, `mlflow_uc_version_not_ready`,
 * `mlflow_uc_storage_unsupported`, `model_too_large`, `mlflow_not_a_model`); storage refusing the
 * credentials Unity Catalog handed out is a 502 (`mlflow_uc_storage_refused`).
 */
export async function resolveUcCandidate(
  client: UcClient,
  parsed: { kind: 'version'; name: string; version: string } | { kind: 'alias'; name: string; alias: string },
  uri: string,
  refuse: (err: unknown, what: string) => never,
  options: UcReadOptions & { schema?: string; maxBytes?: number; maxFiles?: number } = {},
): Promise<MlflowCandidate> {
  if (!UC_MODEL_NAME.test(parsed.name))
    throw new ValidationError(
      'mlflow_uri_invalid',
      `${uri}: MLFLOW_REGISTRY_URI is databricks-uc, whose models have three-level names, <catalog>.<schema>.<model>${
        options.schema ? ` (for example models:/${options.schema}.${parsed.name.toLowerCase()}/…)` : ''
      }`,
      { field: FIELD },
    );
  const got =
    parsed.kind === 'version'
      ? await client
          .call<{ model_version: UcVersion }>('GET', 'unity-catalog/model-versions/get', {
            name: parsed.name,
            version: parsed.version,
          })
          .catch((e) => refuse(e, `model version ${uri}`))
      : await client
          .call<{ model_version: UcVersion }>('GET', 'unity-catalog/registered-models/alias', {
            name: parsed.name,
            alias: parsed.alias,
          })
          .catch((e) => refuse(e, `alias ${uri}`));
  const mv = got.model_version;
  const name = mv.name ?? parsed.name;
  const version = String(mv.version);
  if (mv.status !== 'READY')
    throw new ValidationError(
      'mlflow_uc_version_not_ready',
      `${uri} is version ${version} of ${name}, which Unity Catalog has as ${mv.status ?? 'no status'}, not READY: its files are not complete`,
      { field: FIELD },
    );
  const location = mv.storage_location;
  if (!location)
    throw new ValidationError(
      'mlflow_artifacts_unreachable',
      `Unity Catalog gave ${uri} (version ${version} of ${name}) no storage_location`,
      { field: FIELD },
    );
  let listed: UcFile[];
  try {
    listed = (
      await listVersion(
        client,
        name,
        version,
        location,
        { maxBytes: options.maxBytes ?? defaultModelMaxBytes, maxFiles: options.maxFiles ?? defaultMaxFiles },
        options,
      )
    ).files;
  } catch (err) {
    if (err instanceof MlflowRejected) refuse(err, `the files of ${uri}`);
    if (err instanceof NonRetriableError) {
      const detail =
        err.code === 'mlflow_uc_storage_unsupported' && err.message.includes(location)
          ? `${err.message} (the location is in ${ucStore(location)})`
          : err.message;
      throw new ValidationError(err.code, `${uri}: ${detail}`, {
        field: FIELD,
        // Storage's doing, not the caller's: refusing the SAS, or answering with a redirect.
        status:
          err.code === 'mlflow_uc_storage_refused' || err.code === 'mlflow_storage_redirect_refused'
            ? 502
            : 400,
      });
    }
    throw err;
  }
  if (!listed.some((f) => f.rel === 'MLmodel'))
    throw new ValidationError(
      'mlflow_not_a_model',
      `${uri} is not an MLflow model folder: version ${version} of ${name} has no MLmodel file${
        listed.length
          ? ` (it has ${listed
              .slice(0, 5)
              .map((f) => f.rel)
              .join(', ')})`
          : ' (it is empty)'
      }`,
      { field: FIELD },
    );
  return {
    uri,
    artifactPath: location,
    name,
    version,
    ...(mv.run_id ? { runId: mv.run_id } : {}),
    registry: 'databricks-uc',
  };
}

/** The store a Unity Catalog storage location names: an abfss:// one refused is on a host that is not Azure's. */
function ucStore(location: string): string {
  return /^abfss:/i.test(location)
    ? 'Azure Data Lake Storage on a host that is not Azure Storage (abfss:)'
    : storeName(location);
}

/**
 * A three-level name that the registry (not Unity Catalog) does not have: refused naming
 * MLFLOW_REGISTRY_URI, since Unity Catalog models are read with `databricks-uc`. Any other error as
 * it was. (A registry that has a model of that name, dots and all, serves it as usual.)
 */
export function outsideUnityCatalog(err: unknown, name: string, uri: string): unknown {
  if (
    UC_MODEL_NAME.test(name) &&
    err instanceof MlflowRejected &&
    (err.errorCode === 'RESOURCE_DOES_NOT_EXIST' || err.status === 404)
  )
    return new ValidationError(
      'mlflow_registry_not_unity_catalog',
      `${uri} names a Unity Catalog model (<catalog>.<schema>.<model>), and the registry Sluice reads has no model ${name}: Unity Catalog models are read with MLFLOW_REGISTRY_URI=databricks-uc (with MLFLOW_TRACKING_URI=databricks and DATABRICKS_HOST)`,
      { field: FIELD, status: 400 },
    );
  return err;
}

/**
 * The train step's download of a Unity Catalog candidate into `dir`: a fresh READ SAS (the one
 * checked at start has expired by now), the listing checked against the limits, then each file read
 * with its bytes counted, so a file bigger than listed stops at `maxBytes` (`model_too_large`).
 */
export async function downloadUcFolder(
  client: UcClient,
  candidate: MlflowCandidate,
  dir: string,
  limits: { maxBytes: number; maxFiles?: number },
  options: UcReadOptions = {},
): Promise<{ files: number; bytes: number }> {
  const { name, version } = candidate;
  if (!name || !version)
    throw new NonRetriableError(
      'mlflow_uc_candidate_invalid',
      `${candidate.uri} was resolved without a version`,
    );
  const maxFiles = limits.maxFiles ?? defaultMaxFiles;
  const { container, files } = await listVersion(
    client,
    name,
    version,
    candidate.artifactPath,
    { maxBytes: limits.maxBytes, maxFiles },
    options,
  );
  if (files.length === 0)
    throw new NonRetriableError('model_output_empty', `${name} version ${version} has no files`);
  await mkdir(dir, { recursive: true });
  const written: ByteCount = { bytes: 0 };
  for (const f of files) {
    const target = path.join(dir, ...f.rel.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    const what = `reading ${f.rel} of ${name} version ${version}`;
    try {
      const res = await container
        .getBlobClient(f.blob)
        .download(0, undefined, { abortSignal: AbortSignal.timeout(10 * 60_000) });
      if (!res.readableStreamBody) throw new TransientError('mlflow_uc_download_failed', `${what}: no body`);
      const limit = byteLimit(
        written,
        limits.maxBytes,
        () =>
          `${name} version ${version} is over the model size limit of ${limits.maxBytes} bytes (${f.rel} is bigger than listed)`,
      );
      await pipeline(res.readableStreamBody, limit, createWriteStream(target));
    } catch (err) {
      throw storageError(err, what);
    }
  }
  return { files: files.length, bytes: written.bytes };
}
