import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { SluiceVariable } from '../../contracts/job';
import { JOB_CONTRACT_VERSION } from '../../contracts/job';
import type { AzuremlJobSettings } from '../../contracts/backendJobs';
import { NonRetriableError } from '../../errors';
import type { ManifestEntry } from '../../mlmodel/folder';
import { manifestDigest, readManifest } from '../../mlmodel/folder';
import { confineCodeFolder } from '../userJob/codePolicy';
import { parseCommand } from '../userJob/command';
import type { JobData } from '../userJob/jobData';
import { jobDataFiles } from '../userJob/jobData';
import type { AzureMlClient } from './azuremlClient';
import { STORAGE_SCOPE } from './azuremlClient';

/**
 * The pieces of an Azure ML command job that runs a user's own code under `sluice.job/v1`: the code
 * asset, the environment, the compute, the inputs and output, and the command line with the
 * contract's variables bound to Azure ML's `${{inputs.*}}` / `${{outputs.*}}` paths.
 */

/** The job's inputs (all `uri_file`), by the variable that names their mounted path. */
export const PATH_INPUTS = {
  SLUICE_TRAIN: 'train',
  SLUICE_VALIDATION: 'validation',
  SLUICE_HOLDOUT: 'holdout',
  SLUICE_TRAIN_PARQUET: 'train_parquet',
  SLUICE_VALIDATION_PARQUET: 'validation_parquet',
  SLUICE_HOLDOUT_PARQUET: 'holdout_parquet',
  SLUICE_CONTRACT: 'contract',
} as const satisfies Partial<Record<SluiceVariable, string>>;
/** The job's one output, a `uri_folder`: SLUICE_OUTPUT. */
export const MODEL_OUTPUT = 'model';

type PathVariable = keyof typeof PATH_INPUTS;
const isPathVariable = (v: SluiceVariable): v is PathVariable => Object.hasOwn(PATH_INPUTS, v);

/** Azure ML's binding of a path variable: `${{inputs.train}}`, `${{outputs.model}}`. */
export function bindingOf(variable: SluiceVariable): string | undefined {
  if (variable === 'SLUICE_OUTPUT') return `\${{outputs.${MODEL_OUTPUT}}}`;
  return isPathVariable(variable) ? `\${{inputs.${PATH_INPUTS[variable]}}}` : undefined;
}

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** One word for a POSIX shell: kept as is when it has nothing special, else single-quoted. */
export const shellQuote = (s: string): string => (SAFE_WORD.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The user's command as the shell line Azure ML runs in the code folder. Sluice splits it into
 * words itself (as on every backend), then writes each word back shell-quoted, so nothing in it is
 * interpreted by the job's shell. `${SLUICE_TRAIN}` and the other path placeholders become Azure ML
 * bindings (`"${{inputs.train}}"`), which Azure ML replaces by the mounted path before the shell
 * sees the line; the other placeholders become their values. `env` sets the path variables for the
 * process (the values of the others are in the job's `environmentVariables`).
 */
export function azuremlCommandLine(command: string, values: Partial<Record<SluiceVariable, string>>): string {
  const words = parseCommand(command).map((word) =>
    word
      .map((p) => {
        if ('text' in p) return p.text === '' ? "''" : shellQuote(p.text);
        const binding = bindingOf(p.variable);
        if (binding) return `"${binding}"`;
        const v = values[p.variable];
        if (v === undefined)
          throw new NonRetriableError('unknown_placeholder', `\${${p.variable}} has no value for this job`);
        return v === '' ? "''" : shellQuote(v);
      })
      .join(''),
  );
  const env = [
    ...Object.keys(PATH_INPUTS).map((v) => `${v}="${bindingOf(v as SluiceVariable)!}"`),
    `SLUICE_OUTPUT="${bindingOf('SLUICE_OUTPUT')!}"`,
  ];
  return ['env', ...env, ...words].join(' ');
}

/** The contract's variables that are values, not paths: the job's `environmentVariables`. */
export function valueVariables(
  jobId: string,
  data: Pick<JobData, 'target' | 'features' | 'task' | 'seed'>,
  hyperparameters: Record<string, unknown>,
): Partial<Record<SluiceVariable, string>> & Record<string, string> {
  return {
    SLUICE_JOB_ID: jobId,
    SLUICE_TARGET: data.target,
    SLUICE_FEATURES: JSON.stringify(data.features),
    SLUICE_TASK: data.task,
    SLUICE_HYPERPARAMETERS: JSON.stringify(hyperparameters),
    SLUICE_SEED: String(data.seed),
    PYTHONUNBUFFERED: '1',
  };
}

/** The staged files of the job's data, by input name: the local file, and its name under `data/`. */
export function dataFiles(data: JobData): { input: string; local: string; name: string }[] {
  const local: Record<PathVariable, string> = jobDataFiles(data);
  return (Object.keys(PATH_INPUTS) as PathVariable[]).map((v) => ({
    input: PATH_INPUTS[v],
    local: local[v],
    name: path.basename(local[v]),
  }));
}

/**
 * `jobs/<jobId>/userjob.json`: what Sluice must remember between submitting a user job and
 * collecting its model (the expectation the folder is checked against), written before the job is
 * created. Its presence also tells `status` that the job runs user code.
 */
export const userJobRecordSchema = z.object({
  contract: z.literal(JOB_CONTRACT_VERSION),
  jobId: z.string(),
  submittedAt: z.string(),
  data: z.object({
    target: z.string(),
    features: z.array(z.string()),
    featureKinds: z.array(z.object({ name: z.string(), kind: z.enum(['number', 'string']) })),
    task: z.enum(['classification', 'regression']),
    classes: z.array(z.string()).optional(),
    seed: z.number().int(),
    rows: z.object({ train: z.number(), validation: z.number(), holdout: z.number() }),
    sample: z.array(z.record(z.string(), z.unknown())),
  }),
  codeId: z.string(),
  /** The uploaded code folder's manifest digest (the code asset is named after it); none for an existing asset. */
  codeDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  environmentId: z.string(),
  timeLimitSeconds: z.number().int().positive(),
});
export type UserJobRecord = z.infer<typeof userJobRecordSchema>;

/** The JobData fields `collectJobModel` reads, from the record. */
export function jobDataOf(record: UserJobRecord) {
  const d = record.data;
  const part = (rows: number) => ({ csv: '', parquet: '', rows });
  return {
    target: d.target,
    featureKinds: d.featureKinds,
    task: d.task,
    ...(d.classes ? { classes: d.classes } : {}),
    sample: d.sample,
    train: part(d.rows.train),
    validation: part(d.rows.validation),
    holdout: part(d.rows.holdout),
  };
}

// ---- assets ---------------------------------------------------------------------------------

const ASSET = /^azureml:([A-Za-z0-9][A-Za-z0-9_.-]{0,254})(?::([A-Za-z0-9][A-Za-z0-9_.-]{0,99})|@latest)$/;

/** Whether `ref` names an Azure ML asset (not a local folder or an image). */
export const isAssetReference = (ref: string): boolean =>
  ref.startsWith('azureml:') || ref.startsWith('/subscriptions/');

/**
 * An asset reference as the ARM id a job takes: `azureml:name:version` → the workspace's
 * `…/{kind}/name/versions/version`; `azureml:name@latest` → its latest version (read from the
 * asset's container); `azureml://registries/…` and ARM ids pass as they are.
 */
export async function assetId(
  client: AzureMlClient,
  kind: 'codes' | 'environments',
  ref: string,
): Promise<string> {
  if (ref.startsWith('/subscriptions/') || ref.startsWith('azureml://')) return ref;
  const m = ASSET.exec(ref);
  if (!m)
    throw new NonRetriableError(
      'azureml_asset_invalid',
      `"${ref}" is not an asset reference (azureml:<name>:<version>, azureml:<name>@latest, azureml://registries/… or an ARM id)`,
    );
  const [, name, version] = m;
  if (version) return client.armId(kind, name!, 'versions', version);
  const container = (await client.tryGet(client.armId(kind, name!), `read ${kind} ${name}`)) as
    { properties?: { latestVersion?: string } } | undefined;
  const latest = container?.properties?.latestVersion;
  if (!latest)
    throw new NonRetriableError(
      'azureml_asset_not_found',
      `the workspace has no ${kind === 'codes' ? 'code' : 'environment'} asset "${name}" with a version`,
    );
  return client.armId(kind, name!, 'versions', latest);
}

const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/;

/**
 * The environment of a user job. An asset reference is used as it is. A Docker image gets an
 * environment version of its own in the workspace, `sluice-image:<first 32 hex of SHA-256(image)>`,
 * created once and reused by every later job with the same image: the jobs API takes only an
 * environment id, and a content-derived version keeps one asset per image instead of one per job.
 */
export async function resolveEnvironment(client: AzureMlClient, environment: string): Promise<string> {
  if (isAssetReference(environment)) return assetId(client, 'environments', environment);
  if (!IMAGE.test(environment) || environment.length > 1024)
    throw new NonRetriableError(
      'azureml_environment_invalid',
      `azureml.environment "${environment}" is neither an environment asset (azureml:…) nor a Docker image reference`,
    );
  const version = createHash('sha256').update(environment).digest('hex').slice(0, 32);
  const id = client.armId('environments', 'sluice-image', 'versions', version);
  const existing = await client.tryGet(id, `read environment sluice-image:${version}`);
  if (existing) return id;
  await client.arm('PUT', id, `create environment sluice-image:${version} for ${environment}`, {
    properties: {
      image: environment,
      osType: 'Linux',
      isAnonymous: false,
      description: `Sluice: user jobs on the Docker image ${environment}`,
      tags: { 'sluice.image': environment.slice(0, 256) },
    },
  });
  return id;
}

/** Where the job runs: a cluster (`computeId`) or serverless compute (`resources`). */
export function computeOf(
  client: AzureMlClient,
  settings: AzuremlJobSettings | undefined,
  defaults: { computeId?: string; instanceType: string },
): { computeId: string } | { resources: { instanceCount: number; instanceType: string } } {
  const serverless = (instanceType: string) => ({ resources: { instanceCount: 1, instanceType } });
  const cluster = (c: string) => ({
    computeId: c.startsWith('/') ? c : client.armId('computes', c.replace(/^azureml:/, '')),
  });
  if (settings?.compute) return cluster(settings.compute);
  if (settings?.instanceType) return serverless(settings.instanceType);
  if (defaults.computeId) return cluster(defaults.computeId);
  return serverless(defaults.instanceType);
}

/** Folders of a code folder that are not uploaded, wherever they are. */
export const SKIPPED_FOLDERS = new Set(['.git', '__pycache__', '.ipynb_checkpoints']);
const UPLOAD_CONCURRENCY = 8;

/** Azure ML's own limit for a code snapshot. */
export const CODE_MAX_BYTES = 300 * 1024 * 1024;

export interface CodeUploadOptions {
  /** Resolves a relative `code` folder (default: the process's working folder). */
  baseDir?: string;
  /**
   * Blob endpoint of the workspace's storage, e.g. `https://stmlx.blob.core.windows.net`; by
   * default from the `workspaceblobstore` datastore (`https://<accountName>.blob.<endpoint>`).
   */
  storageEndpoint?: string;
  maxBytes?: number;
  /**
   * USER_CODE_ROOT, absolute: a folder outside it is refused (`code_outside_root`) before anything
   * is read. Submits through `createServices` are checked there as well.
   */
  codeRoot?: string;
}

/** The storage suffixes of Azure's clouds: a datastore naming another host gets no Storage token. */
export const AZURE_STORAGE_SUFFIXES = ['core.windows.net', 'core.chinacloudapi.cn', 'core.usgovcloudapi.net'];

/**
 * The Blob endpoint of a workspace datastore, which the app sends its Storage token (and, for code,
 * the user's files) to. The datastore is workspace data anyone with write access to the workspace
 * can change, so it must name https, a plain storage account name and one of Azure's storage
 * suffixes; anything else is `datastore_untrusted`. `configured` (the backend's
 * workspaceStorageEndpoint, a setting of the app: tests' fake) is used as it is.
 */
export function datastoreBlobEndpoint(
  ds: { accountName?: string; endpoint?: string; protocol?: string },
  configured?: string,
): string {
  if (configured) return configured.replace(/\/$/, '');
  const protocol = ds.protocol ?? 'https';
  const suffix = (ds.endpoint ?? 'core.windows.net').toLowerCase();
  const account = ds.accountName ?? '';
  if (protocol !== 'https' || !AZURE_STORAGE_SUFFIXES.includes(suffix) || !/^[a-z0-9]{3,24}$/.test(account))
    throw new NonRetriableError(
      'datastore_untrusted',
      `the workspace datastore points at ${protocol}://${account}.blob.${suffix}, which is not an https endpoint of an Azure storage account (${AZURE_STORAGE_SUFFIXES.join(', ')}); Sluice sends its Storage token only there`,
    );
  return `https://${account}.blob.${suffix}`;
}

/**
 * The code of a user job as a code asset id. An asset reference (`azureml:…`) is used as it is. A
 * folder is uploaded the way the Azure ML SDK uploads one: its files to the workspace's default
 * datastore under `LocalUpload/<digest>/` (the app's identity writes there with a Storage token),
 * then a code version `sluice-code-<first 32 hex of the digest>:1` pointing at them. The digest is
 * the folder's manifest digest (every file's path, size and SHA-256), so an unchanged folder is
 * found and reused, never uploaded twice, and a changed one gets a new asset.
 */
export async function resolveCode(
  client: AzureMlClient,
  code: string,
  options: CodeUploadOptions = {},
): Promise<string> {
  if (isAssetReference(code)) return assetId(client, 'codes', code);
  // Whatever is in the folder leaves the host for the workspace: only folders inside USER_CODE_ROOT.
  const dir = options.codeRoot
    ? await confineCodeFolder(code, options.codeRoot, options.baseDir)
    : path.resolve(options.baseDir ?? process.cwd(), code);
  const s = await stat(dir).catch(() => undefined);
  if (!s?.isDirectory())
    throw new NonRetriableError(
      'code_folder_missing',
      `the code folder ${dir} ${s ? 'is not a folder' : 'does not exist'} (give a folder, or an asset as "azureml:<name>:<version>")`,
    );
  const maxBytes = options.maxBytes ?? CODE_MAX_BYTES;
  let manifest: { manifest: ManifestEntry[]; digest: string };
  try {
    const read = await readManifest(dir, { maxBytes });
    // Version-control and interpreter caches are not code: leaving them out keeps a checkout's
    // history off the compute and the digest stable across runs that only compiled .pyc files.
    const kept = read.manifest.filter((f) => !f.path.split('/').some((seg) => SKIPPED_FOLDERS.has(seg)));
    if (kept.length === 0)
      throw new NonRetriableError('code_folder_invalid', `the code folder ${dir} has no files to upload`);
    manifest = { manifest: kept, digest: manifestDigest(kept) };
  } catch (err) {
    if (err instanceof NonRetriableError && err.code === 'code_folder_invalid') throw err;
    if (err instanceof NonRetriableError)
      throw new NonRetriableError(
        'code_folder_invalid',
        `the code folder ${dir} cannot be uploaded: ${err.message.replace(/model folder/g, 'folder')}`,
      );
    throw err;
  }
  const name = `sluice-code-${manifest.digest.slice(0, 32)}`;
  const id = client.armId('codes', name, 'versions', '1');
  if (await client.tryGet(id, `read code ${name}`)) return id;

  const store = (await client.tryGet(
    'datastores/workspaceblobstore',
    'read the workspaceblobstore datastore',
  )) as
    | { properties?: { accountName?: string; containerName?: string; endpoint?: string; protocol?: string } }
    | undefined;
  const ds = store?.properties;
  if (!ds?.accountName || !ds.containerName)
    throw new NonRetriableError(
      'azureml_datastore_missing',
      'the workspace has no workspaceblobstore datastore with an account and container to upload code to',
    );
  const endpoint = datastoreBlobEndpoint(ds, options.storageEndpoint);
  const folderUri = `${endpoint}/${ds.containerName}/LocalUpload/${manifest.digest}`;
  const upload = async (file: ManifestEntry) => {
    const bytes = await readFile(path.join(dir, ...file.path.split('/')));
    const url = `${folderUri}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
    const res = await client.send('PUT', url, {
      raw: bytes,
      scope: STORAGE_SCOPE,
      headers: {
        'x-ms-blob-type': 'BlockBlob',
        'x-ms-version': '2023-11-03',
        'content-type': 'application/octet-stream',
      },
    });
    if (res.status !== 201)
      throw client.fail(`upload ${file.path} to the workspace storage ${ds.accountName}`, res, {
        forbiddenHint: `the app's identity needs Storage Blob Data Contributor on ${ds.accountName}`,
      });
  };
  // A few uploads at a time: many small files are mostly round trips.
  const queue = [...manifest.manifest];
  await Promise.all(
    Array.from({ length: Math.min(UPLOAD_CONCURRENCY, queue.length) }, async () => {
      for (let file = queue.shift(); file; file = queue.shift()) await upload(file);
    }),
  );
  await client.arm('PUT', id, `create code ${name}`, {
    properties: {
      codeUri: folderUri,
      isAnonymous: true,
      description: `Sluice: the code folder ${path.basename(dir)}`,
      tags: { 'sluice.codeDigest': manifest.digest },
    },
  });
  return id;
}

/** The log Azure ML keeps of a command job's stdout and stderr, in the workspace's artifact store. */
export const jobLogPath = (jobId: string): string => `ExperimentRun/dcid.${jobId}/user_logs/std_log.txt`;
const LOG_TAIL_BYTES = 64 * 1024;

/**
 * The last lines of a job's log (`user_logs/std_log.txt` in the `workspaceartifactstore`
 * datastore), read with the app's Storage token; best effort: anything that stands in the way (no
 * such datastore, no log, no access) gives no lines rather than hiding why the job failed.
 */
export async function jobLogTail(
  client: AzureMlClient,
  jobId: string,
  options: { storageEndpoint?: string; lines?: number } = {},
): Promise<string[]> {
  try {
    const store = (await client.tryGet(
      'datastores/workspaceartifactstore',
      'read the artifact datastore',
    )) as
      | {
          properties?: { accountName?: string; containerName?: string; endpoint?: string; protocol?: string };
        }
      | undefined;
    const ds = store?.properties;
    if (!ds?.accountName || !ds.containerName) return [];
    const endpoint = datastoreBlobEndpoint(ds, options.storageEndpoint);
    const url = `${endpoint}/${ds.containerName}/${jobLogPath(jobId).split('/').map(encodeURIComponent).join('/')}`;
    const headers = { 'x-ms-version': '2023-11-03' };
    const head = await client.send('HEAD', url, { scope: STORAGE_SCOPE, headers });
    const size = Number(head.headers.get('content-length'));
    if (head.status !== 200 || !Number.isFinite(size) || size <= 0) return [];
    const from = Math.max(0, size - LOG_TAIL_BYTES);
    const res = await client.send('GET', url, {
      scope: STORAGE_SCOPE,
      headers: { ...headers, 'x-ms-range': `bytes=${from}-${size - 1}` },
    });
    if (res.status !== 200 && res.status !== 206) return [];
    const lines = res.text.split(/\r?\n/);
    if (from > 0) lines.shift(); // the first line was cut
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-(options.lines ?? 50)).map((l) => (l.length > 2_000 ? `${l.slice(0, 2_000)}…` : l));
  } catch {
    return [];
  }
}
