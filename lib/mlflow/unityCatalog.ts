import { NonRetriableError, TransientError } from '../errors';
import type { Fetch, MlflowClient, ModelVersion } from './client';
import { MlflowRejected } from './client';
import type { ExportedFolder } from './export';
import type { KeyValue } from './limits';

/**
 * A model version in Databricks Unity Catalog's MLflow registry (`MLFLOW_REGISTRY_URI=databricks-uc`,
 * names `<catalog>.<schema>.<model>`), the way MLflow's own client registers one. Databricks'
 * REST reference does not document these calls (its SDK says creating versions needs the MLflow
 * client); the paths and fields are those of MLflow's protos (databricks_uc_registry_service.proto,
 * databricks_uc_registry_messages.proto), under `/api/2.0/mlflow/unity-catalog/`:
 *
 * 1. `registered-models/create`, tagged with the Sluice model it mirrors (RESOURCE_ALREADY_EXISTS:
 *    read back and claimed, {@link claimUcModel}, when the mirror registers);
 * 2. `model-versions/create`: the version, PENDING_REGISTRATION, with its `storage_location`;
 * 3. `model-versions/generate-temporary-credentials` (operation MODEL_VERSION_OPERATION_READ_WRITE):
 *    on Azure a user delegation SAS for that location;
 * 4. each file of the folder written under the location with the SAS (Blob Storage Put Blob);
 * 5. `model-versions/finalize`: the version becomes READY.
 *
 * The mirror (lib/mlflow/mirror.ts) registers a deployed version this way when MLFLOW_REGISTRY_URI
 * is `databricks-uc`, under MLFLOW_UC_SCHEMA ({@link ucModelName}); the alias then goes through
 * `unity-catalog/registered-models/alias` (MlflowClient routes its registry calls there). Reading a
 * version back (promote from Unity Catalog) is lib/mlflow/ucRead.ts.
 */

/** Three-level Unity Catalog model names: `<catalog>.<schema>.<model>`. */
export const UC_MODEL_NAME = /^[^.\s/]+\.[^.\s/]+\.[^.\s/]+$/;

/**
 * The Unity Catalog name of a Sluice model under `<catalog>.<schema>` (MLFLOW_UC_SCHEMA): Unity
 * Catalog keeps lower-case letters, digits and `_`, so Sluice's name is lower-cased and its `.` and
 * `-` become `_` (`Churn-EU.v2` → `main.ml.churn_eu_v2`). Two registry names that differ only there
 * meet on one Unity Catalog model; the mirror refuses the second ({@link claimUcModel}). Pipeline
 * model names (lower-case letters, digits and `-`) never meet: only `-` is rewritten, and `_` is not
 * one of their characters.
 */
export function ucModelName(schema: string, sluiceName: string): string {
  return `${schema}.${sluiceName.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}

export interface UcRegisterOptions {
  fetch?: Fetch;
  /**
   * The Blob Storage URL of one file under a version's storage location (default: an `abfss://`
   * location's account and container on the blob endpoint, `https://<account>.blob.core.windows.net`).
   */
  blobUrl?: (storageLocation: string, file: string) => string;
}

/** `abfss://<container>@<account>.dfs.<suffix>/<path>` + file → `https://<account>.blob.<suffix>/<container>/<path>/<file>`. */
export function abfssBlobUrl(storageLocation: string, file: string): string {
  const { containerUrl, prefix } = abfssBlobContainer(storageLocation);
  const parts = [...prefix.split('/').filter(Boolean), ...file.split('/')];
  return `${containerUrl}/${parts.map(encodeURIComponent).join('/')}`;
}

/**
 * `abfss://<container>@<account>.dfs.<suffix>/<path>` → the container on the Blob endpoint,
 * `https://<account>.blob.<suffix>/<container>`, and `<path>` (no leading or trailing `/`). Only
 * Azure Storage endpoints: the SAS Unity Catalog hands out is appended to these URLs, so a location
 * naming any other host must not receive it (`mlflow_uc_storage_unsupported`).
 */
export function abfssBlobContainer(storageLocation: string): { containerUrl: string; prefix: string } {
  const m =
    /^abfss:\/\/([a-z0-9-]+)@([a-z0-9]+)\.dfs\.(core\.windows\.net|core\.chinacloudapi\.cn|core\.usgovcloudapi\.net)(?:\/(.*))?$/.exec(
      storageLocation,
    );
  if (!m)
    throw new NonRetriableError(
      'mlflow_uc_storage_unsupported',
      `the Unity Catalog storage location ${storageLocation} is not an abfss:// location (Azure); Sluice reads and writes model files in Azure storage only`,
    );
  const [, container, account, suffix, path] = m;
  return {
    containerUrl: `https://${account}.blob.${suffix}/${encodeURIComponent(container!)}`,
    prefix: (path ?? '').split('/').filter(Boolean).join('/'),
  };
}

type UcClient = Pick<MlflowClient, 'call'>;
type UcVersion = ModelVersion & { storage_location?: string };

/**
 * Registers `folder` as a new version of the Unity Catalog model `name` and answers it READY.
 * `onCreated` is told the version's number as soon as Unity Catalog made it (PENDING_REGISTRATION),
 * so a caller that stores it can finish that version after a failure ({@link completeUcVersion})
 * instead of leaving it pending and making another (versions are numbered by the server).
 */
export async function registerUcVersion(
  client: UcClient,
  req: { name: string; source: string; run_id?: string; description?: string; tags?: KeyValue[] },
  folder: ExportedFolder,
  options: UcRegisterOptions & {
    onCreated?: (version: string) => Promise<void>;
    /** The Sluice model the registered model mirrors: it must be that model's ({@link claimUcModel}). */
    owner?: string;
  } = {},
): Promise<ModelVersion> {
  if (!UC_MODEL_NAME.test(req.name))
    throw new NonRetriableError(
      'mlflow_uc_name_invalid',
      `Unity Catalog model names have three parts, <catalog>.<schema>.<model>: ${req.name}`,
    );
  if (options.owner !== undefined) await claimUcModel(client, req.name, options.owner);
  else
    try {
      await client.call('POST', 'unity-catalog/registered-models/create', { name: req.name });
    } catch (err) {
      if (!(err instanceof MlflowRejected && err.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw err;
    }
  const created = await client.call<{ model_version: UcVersion }>(
    'POST',
    'unity-catalog/model-versions/create',
    req,
    { retry: false },
  );
  await options.onCreated?.(created.model_version.version);
  return writeAndFinalize(client, req.name, created.model_version, folder, options);
}

/** The registered model's tag naming the Sluice model it mirrors. */
export const UC_OWNER_TAG = 'sluice.model';
/** A model version tag every version Sluice registers carries (lib/mlflow/sections.ts). */
const SLUICE_VERSION_TAG = 'sluice.version';
/** Pages of `model-versions/search` read when deciding whether an untagged model is Sluice's. */
const MAX_VERSION_PAGES = 10;

type UcVersionSummary = { version: string; description?: string; tags?: KeyValue[] };

/**
 * Whether version `v` of an untagged Unity Catalog model is one Sluice registered for Sluice model
 * `sluiceName`: the `sluice.version` tag and the description the mirror has always written,
 * `Sluice <sluiceName> version <n>, …` (mirror.ts), or a version tag {@link UC_OWNER_TAG} =
 * `sluiceName` set by hand. The description names the Sluice model exactly (case and
 * punctuation), which the Unity Catalog name does not.
 */
export function isSluiceVersionOf(v: UcVersionSummary, sluiceName: string): boolean {
  if (!v.tags?.some((t) => t.key === SLUICE_VERSION_TAG)) return false;
  if (v.tags.some((t) => t.key === UC_OWNER_TAG && t.value === sluiceName)) return true;
  return (v.description ?? '').startsWith(`Sluice ${sluiceName} version `);
}

/**
 * Makes sure the Unity Catalog model `name` is the copy of Sluice model `sluiceName` and of no
 * other: Unity Catalog names are lower-case with `_` (ucModelName), so two names can land on one,
 * and a model of that name may already be someone else's. Created with the tag
 * {@link UC_OWNER_TAG} = `sluiceName`; when it exists (RESOURCE_ALREADY_EXISTS) it is read
 * (`registered-models/get`):
 * - tagged `sluiceName`: Sluice's own;
 * - tagged with another name: refused, `mlflow_uc_name_collision`, naming both;
 * - untagged: adopted (the tag set with `registered-models/tags`) only when it holds versions and
 *   every one was registered by Sluice for `sluiceName` ({@link isSluiceVersionOf}: a model Sluice
 *   made before it tagged models); otherwise refused, `mlflow_uc_model_not_sluice`. Not the
 *   `sluice.version` tag alone: two Sluice names meeting on one Unity Catalog name before models
 *   were tagged (`Churn-EU`, `churn.eu`) both carry it, and the first to mirror would take the
 *   other's model. Not an empty model either: anyone may have created it (Sluice always creates
 *   its own tagged); a team hands one to Sluice by setting the tag `sluice.model` by hand.
 */
export async function claimUcModel(client: UcClient, name: string, sluiceName: string): Promise<void> {
  try {
    await client.call('POST', 'unity-catalog/registered-models/create', {
      name,
      tags: [{ key: UC_OWNER_TAG, value: sluiceName }],
    });
    return;
  } catch (err) {
    if (!(err instanceof MlflowRejected && err.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw err;
  }
  const got = await client.call<{ registered_model?: { tags?: KeyValue[] } }>(
    'GET',
    'unity-catalog/registered-models/get',
    { name },
  );
  const owner = got.registered_model?.tags?.find((t) => t.key === UC_OWNER_TAG)?.value;
  if (owner === sluiceName) return;
  if (owner !== undefined)
    throw new NonRetriableError(
      'mlflow_uc_name_collision',
      `Sluice model ${sluiceName} maps to the Unity Catalog model ${name}, which already mirrors Sluice model ${owner} (its ${UC_OWNER_TAG} tag): Unity Catalog names are lower-case with "." and "-" as "_", so both land there. Rename one of the two Sluice models, or register them under another MLFLOW_UC_SCHEMA`,
    );
  const foreign: string[] = [];
  let seen = 0;
  let pageToken: string | undefined;
  for (let page = 0; page < MAX_VERSION_PAGES; page++) {
    const found = await client.call<{
      model_versions?: UcVersionSummary[];
      next_page_token?: string;
    }>('GET', 'unity-catalog/model-versions/search', {
      filter: `name='${name}'`,
      max_results: '1000',
      ...(pageToken ? { page_token: pageToken } : {}),
    });
    for (const v of found.model_versions ?? []) {
      seen++;
      if (!isSluiceVersionOf(v, sluiceName)) foreign.push(v.version);
    }
    pageToken = found.next_page_token || undefined;
    if (!pageToken || foreign.length) break;
  }
  if (foreign.length || pageToken || seen === 0)
    throw new NonRetriableError(
      'mlflow_uc_model_not_sluice',
      `the Unity Catalog model ${name} (where Sluice model ${sluiceName} goes) exists without a ${UC_OWNER_TAG} tag and ${
        foreign.length
          ? `holds versions Sluice did not register (${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''}) as Sluice model ${sluiceName}`
          : pageToken
            ? 'holds more versions than Sluice reads to check'
            : 'holds no versions (Sluice tags every model it creates, so someone else made this one)'
      }: Sluice adds no versions to it and moves none of its aliases. If the model is Sluice's copy, set its tag ${UC_OWNER_TAG}=${sluiceName}; otherwise register Sluice's models under another MLFLOW_UC_SCHEMA`,
    );
  await client.call('POST', 'unity-catalog/registered-models/tags', {
    name,
    key: UC_OWNER_TAG,
    value: sluiceName,
  });
}

/**
 * Finishes version `version` of `name` made by an earlier, interrupted {@link registerUcVersion}:
 * read back (`unity-catalog/model-versions/get`); READY as it is, PENDING_REGISTRATION written again
 * (Put Blob replaces a file) and finalized; any other status (FAILED_REGISTRATION) refused.
 */
export async function completeUcVersion(
  client: UcClient,
  name: string,
  version: string,
  folder: ExportedFolder,
  options: UcRegisterOptions = {},
): Promise<ModelVersion> {
  const got = await client.call<{ model_version: UcVersion }>('GET', 'unity-catalog/model-versions/get', {
    name,
    version,
  });
  const mv = got.model_version;
  if (mv.status === 'READY') return mv;
  if (mv.status !== 'PENDING_REGISTRATION')
    throw new NonRetriableError(
      'mlflow_uc_version_failed',
      `Unity Catalog version ${version} of ${name} is ${mv.status ?? 'in no known status'}, not pending: it cannot be finished`,
    );
  return writeAndFinalize(client, name, mv, folder, options);
}

/** Temporary credentials, each file written with them, then finalize: the version READY. */
async function writeAndFinalize(
  client: UcClient,
  name: string,
  mv: UcVersion,
  folder: ExportedFolder,
  options: UcRegisterOptions,
): Promise<ModelVersion> {
  const req = { name };
  if (!mv.storage_location)
    throw new TransientError(
      'mlflow_uc_no_storage_location',
      `Unity Catalog gave version ${mv.version} of ${req.name} no storage_location`,
    );
  const creds = await client.call<{
    credentials?: { azure_user_delegation_sas?: { sas_token?: string }; [kind: string]: unknown };
  }>('POST', 'unity-catalog/model-versions/generate-temporary-credentials', {
    name: req.name,
    version: mv.version,
    operation: 'MODEL_VERSION_OPERATION_READ_WRITE',
  });
  const sas = creds.credentials?.azure_user_delegation_sas?.sas_token;
  if (!sas) {
    const kind = Object.keys(creds.credentials ?? {}).filter((k) => k !== 'expiration_time');
    throw new NonRetriableError(
      'mlflow_uc_storage_unsupported',
      `Unity Catalog answered ${kind.join(', ') || 'no'} credentials for ${req.name} version ${mv.version}; Sluice writes with an Azure user delegation SAS only`,
    );
  }
  const f = options.fetch ?? fetch;
  const urlOf = options.blobUrl ?? abfssBlobUrl;
  const location = mv.storage_location;
  for await (const file of folder.files()) {
    const url = `${urlOf(location, file.path)}?${sas.replace(/^\?/, '')}`;
    let res: Response;
    try {
      res = await f(url, {
        method: 'PUT',
        headers: {
          'x-ms-blob-type': 'BlockBlob',
          'x-ms-version': '2021-08-06',
          'content-type': 'application/octet-stream',
        },
        body: file.bytes,
        // A 307/308 would send the model's bytes wherever it points: answered as any other non-201.
        redirect: 'manual',
        signal: AbortSignal.timeout(10 * 60_000),
      });
    } catch (err) {
      throw new TransientError(
        'mlflow_uc_upload_failed',
        // Never the error's message or the error itself: fetch puts the whole URL, SAS included,
        // into some of its messages.
        `writing ${file.path} failed: ${(err as Error).name}${networkCode(err)}`,
      );
    }
    await res.body?.cancel();
    if (res.status !== 201) {
      const Err = res.status >= 500 || res.status === 429 ? TransientError : NonRetriableError;
      throw new Err(
        'mlflow_uc_upload_failed',
        `writing ${file.path} of ${req.name} version ${mv.version} to Unity Catalog storage answered ${res.status}`,
      );
    }
  }
  const finalized = await client.call<{ model_version: ModelVersion }>(
    'POST',
    'unity-catalog/model-versions/finalize',
    { name: req.name, version: mv.version },
  );
  if (finalized.model_version.status !== 'READY')
    throw new TransientError(
      'mlflow_uc_not_ready',
      `Unity Catalog version ${mv.version} of ${req.name} is ${finalized.model_version.status ?? 'not READY'} after finalize`,
    );
  return finalized.model_version;
}

/** ` (ECONNRESET)` from a fetch failure's cause, or nothing. */
function networkCode(err: unknown): string {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? ` (${code})` : '';
}
