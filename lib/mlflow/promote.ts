import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import type { MlflowCandidate } from '../contracts/mlflowCandidate';
import type { DatasetContract } from '../contracts/datasetContract';
import type { JobResult } from '../contracts/trainingJob';
import type { TrainingSpec } from '../contracts/trainingSpec';
import { inferDatasetContract } from '../data/checking/inferDatasetContract';
import { loadColumnar } from '../data/datasets';
import { NonRetriableError, ValidationError } from '../errors';
import { folderPathProblem } from '../mlmodel/blobFolder';
import type { ByteCount } from '../mlmodel/folder';
import { byteLimit, defaultMaxFiles, defaultModelMaxBytes } from '../mlmodel/folder';
import type { ArtifactStore } from '../storage/blob';
import { collectJobModel } from '../training/userJob/output';
import { writeJobData } from '../training/userJob/jobData';
import type { MlflowClient } from './client';
import { MlflowRejected } from './client';
import type { UcReadOptions } from './ucRead';
import { storeName } from './storeName';
import { downloadUcFolder, outsideUnityCatalog, resolveUcCandidate } from './ucRead';
import type { ArtifactReader, DatabricksArtifactOptions } from './databricksArtifacts';
import {
  databricksArtifactReader,
  databricksStartProblem,
  isDatabricksLocation,
  parseDatabricksLocation,
  registrySourceLocation,
} from './databricksArtifacts';

/**
 * Promote a model trained elsewhere (docs/mlflow.md): resolve an MLflow model URI when the run
 * starts (so an unknown model is a 400 then, not a late failure), and, in the run's train step,
 * download the model folder through the tracking server's artifact proxy and check it exactly as a
 * user job's output is checked before anything is stored.
 */

/** What the user may name: a registered version, a registry alias, or a folder a run logged. */
export type ModelUri =
  | { kind: 'version'; name: string; version: string }
  | { kind: 'alias'; name: string; alias: string }
  | { kind: 'run'; runId: string; path: string };

const FIELD = 'candidate.mlflow';
const modelName = String.raw`[^/@\s]{1,500}`;

/**
 * Parses `models:/<name>/<version>`, `models:/<name>@<alias>` or `runs:/<run_id>/<path>` (MLflow's
 * own URI forms); anything else is a ValidationError naming the field. Stage URIs
 * (`models:/churn/Production`, `models:/churn/latest`) are refused: stages are deprecated, and
 * "latest" moves under the run.
 */
export function parseModelUri(uri: string): ModelUri {
  const version = new RegExp(`^models:/(${modelName})/([0-9]{1,10})$`).exec(uri);
  if (version) return { kind: 'version', name: version[1]!, version: String(Number(version[2])) };
  const alias = new RegExp(`^models:/(${modelName})@([A-Za-z0-9_-]{1,255})$`).exec(uri);
  if (alias) return { kind: 'alias', name: alias[1]!, alias: alias[2]! };
  const stage = new RegExp(`^models:/(${modelName})/([A-Za-z][\\w-]*)$`).exec(uri);
  if (stage) {
    throw new ValidationError(
      'mlflow_uri_invalid',
      `${uri} names a stage ("${stage[2]}"), which moves and is deprecated in MLflow; name a version (models:/${stage[1]}/<version>) or an alias (models:/${stage[1]}@<alias>)`,
      { field: FIELD },
    );
  }
  const run = /^runs:\/([0-9A-Za-z-]{1,64})\/(.+)$/.exec(uri);
  if (run) {
    const folder = run[2]!.replace(/\/+$/, '');
    const problem = folderPathProblem(folder);
    if (problem)
      throw new ValidationError('mlflow_uri_invalid', `${uri}: the artifact path has ${problem}`, {
        field: FIELD,
      });
    return { kind: 'run', runId: run[1]!, path: folder };
  }
  throw new ValidationError(
    'mlflow_uri_invalid',
    `${JSON.stringify(uri.slice(0, 200))} is not an MLflow model URI; use models:/<name>/<version>, models:/<name>@<alias> or runs:/<run_id>/<path>`,
    { field: FIELD },
  );
}

/**
 * The path under the tracking server's artifact proxy of an `mlflow-artifacts:` URI
 * (`mlflow-artifacts:/1/<run>/artifacts/model`, or with a host, which is ignored: downloads always go
 * to the configured tracking server, with its credentials); undefined for any other scheme.
 */
export function artifactProxyPath(uri: string): string | undefined {
  const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/+(.*?)\/*$/.exec(uri);
  if (!m || !m[1]) return undefined;
  return folderPathProblem(m[1]) ? undefined : m[1];
}

export interface PromoteDeps {
  /** The tracking server: runs and the artifact proxy. */
  tracking: Pick<MlflowClient, 'getRun' | 'listArtifacts' | 'openArtifact'>;
  /** The model registry (MLFLOW_REGISTRY_URI, else the tracking server). */
  registry: Pick<MlflowClient, 'getModelVersion' | 'getModelVersionByAlias' | 'getModelVersionDownloadUri'> &
    Partial<Pick<MlflowClient, 'call' | 'unityCatalog'>>;
  /** MLFLOW_REGISTRY_URI=databricks-uc: MLFLOW_UC_SCHEMA (for hints) and how storage is reached (tests). */
  unityCatalog?: UcReadOptions & { schema?: string; maxBytes?: number };
  /**
   * Set when MLFLOW_TRACKING_URI is `databricks`: folders in the workspace's own stores (run
   * artifacts under dbfs:/databricks/mlflow-tracking, other dbfs:/ paths, /Volumes/) are read
   * through its API (lib/mlflow/databricksArtifacts.ts). Unset, such locations are refused.
   */
  databricks?: DatabricksArtifactOptions;
}

/**
 * The reader of a candidate's folder: the tracking server's artifact proxy, or, for a location in
 * a Databricks workspace, that workspace's API (refused, naming why, when the tracking server is
 * not that workspace).
 */
function readerFor(deps: Pick<PromoteDeps, 'tracking' | 'databricks'>, folder: string): ArtifactReader {
  if (!isDatabricksLocation(folder)) return deps.tracking;
  if (!deps.databricks)
    throw new ValidationError(
      'mlflow_artifacts_unreachable',
      `${folder.slice(0, 300)} is in a ${folder.startsWith('/Volumes/') ? 'Unity Catalog volume (/Volumes/)' : storeName(folder)} store of a Databricks workspace, which Sluice reads only when MLFLOW_TRACKING_URI is databricks (the workspace's own API, with its token); the tracking server configured is not a Databricks workspace`,
      { field: FIELD },
    );
  return databricksArtifactReader(deps.databricks, folder);
}

/** MLflow's refusals at start, as the caller's 4xx (unknown model) or a 502 (MLflow refused Sluice). */
function startProblem(err: unknown, what: string): never {
  if (err instanceof MlflowRejected) {
    if (err.errorCode === 'RESOURCE_DOES_NOT_EXIST' || err.status === 404) {
      throw new ValidationError('mlflow_model_not_found', `MLflow has no ${what} (${err.message})`, {
        field: FIELD,
        status: 400,
      });
    }
    if (err.status === 401 || err.status === 403) {
      throw new ValidationError(
        err.code,
        `MLflow refused Sluice's credentials while looking up ${what} (check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD, or the identity's role): ${err.message}`,
        { status: 502 },
      );
    }
    throw new ValidationError(err.code, `MLflow refused ${what}: ${err.message}`, { field: FIELD });
  }
  throw err;
}

/**
 * Resolves a model URI to the folder it names, pinned: an alias to its version now. Checks that
 * the folder is reachable through the artifact proxy and has an MLmodel file. Refusals name the
 * URI: unknown model, version, alias or run (`mlflow_model_not_found`), artifacts Sluice cannot read
 * (`mlflow_artifacts_unreachable`), a folder that is not an MLflow model (`mlflow_not_a_model`).
 */
export async function resolveMlflowCandidate(deps: PromoteDeps, uri: string): Promise<MlflowCandidate> {
  const parsed = parseModelUri(uri);
  let location: string;
  let source: string | undefined;
  let pinned: Pick<MlflowCandidate, 'name' | 'version' | 'runId'>;
  if (parsed.kind === 'run') {
    const info = await deps.tracking
      .getRun(parsed.runId)
      .catch((e) => startProblem(e, `run ${parsed.runId}`));
    if (!info.artifact_uri)
      throw new ValidationError(
        'mlflow_artifacts_unreachable',
        `MLflow run ${parsed.runId} has no artifact_uri`,
        {
          field: FIELD,
        },
      );
    location = `${info.artifact_uri.replace(/\/+$/, '')}/${parsed.path}`;
    pinned = { runId: parsed.runId };
  } else if (deps.registry.unityCatalog && deps.registry.call) {
    // Unity Catalog holds the files itself: read with temporary credentials (lib/mlflow/ucRead.ts).
    const uc = { call: deps.registry.call.bind(deps.registry) };
    return resolveUcCandidate(uc, parsed, uri, startProblem, deps.unityCatalog);
  } else {
    const mv =
      parsed.kind === 'version'
        ? await deps.registry
            .getModelVersion(parsed.name, parsed.version)
            .catch((e) => startProblem(outsideUnityCatalog(e, parsed.name, uri), `model version ${uri}`))
        : await deps.registry
            .getModelVersionByAlias(parsed.name, parsed.alias)
            .catch((e) => startProblem(outsideUnityCatalog(e, parsed.name, uri), `alias ${uri}`));
    location = await deps.registry
      .getModelVersionDownloadUri(mv.name ?? parsed.name, mv.version)
      .catch((e) => startProblem(e, `the files of ${uri}`));
    source = mv.source;
    pinned = {
      name: mv.name ?? parsed.name,
      version: String(mv.version),
      ...(mv.run_id ? { runId: mv.run_id } : {}),
    };
  }
  if (deps.databricks && isDatabricksLocation(location))
    location = await registrySourceLocation(location, source, async (runId) =>
      deps.tracking
        .getRun(runId)
        .then((r) => r.artifact_uri)
        .catch((e) => startProblem(e, `run ${runId}`)),
    );
  // A Databricks store is named by its location (lib/mlflow/databricksArtifacts.ts); the artifact
  // proxy by its path.
  const databricks = isDatabricksLocation(location);
  const reader = readerFor(deps, location);
  const artifactPath = databricks ? parseDatabricksLocation(location).root : artifactProxyPath(location);
  if (!artifactPath) {
    throw new ValidationError(
      'mlflow_artifacts_unreachable',
      `${uri}'s files are at ${location.slice(0, 300)}, in a ${storeName(location)} store, which Sluice does not read; Sluice downloads models only through the tracking server's artifact proxy (mlflow-artifacts:/…, mlflow server --serve-artifacts, the default since MLflow 2.0)`,
      { field: FIELD },
    );
  }
  const files = await reader
    .listArtifacts(artifactPath)
    .catch((e) =>
      startProblem(databricks ? databricksStartProblem(e, uri, location) : e, `the files of ${uri}`),
    );
  if (!files.some((f) => !f.is_dir && path.posix.basename(f.path) === 'MLmodel')) {
    throw new ValidationError(
      'mlflow_not_a_model',
      `${uri} is not an MLflow model folder: ${artifactPath} has no MLmodel file${
        files.length
          ? ` (it has ${files
              .slice(0, 5)
              .map((f) => path.posix.basename(f.path))
              .join(', ')})`
          : ' (it is empty)'
      }`,
      { field: FIELD },
    );
  }
  return { uri, artifactPath, ...pinned };
}

/**
 * Downloads the folder at `folder` (artifact proxy path) into `dir`, keeping relative paths. The
 * model-folder limits hold before a byte is written (the listing's sizes) and while downloading
 * (bytes counted, so a file bigger than listed stops at `maxBytes`): `model_too_large`; more than
 * `maxFiles` files or a bad name: `model_output_invalid`.
 */
export async function downloadArtifactFolder(
  client: ArtifactReader,
  folder: string,
  dir: string,
  limits: { maxBytes: number; maxFiles?: number },
): Promise<{ files: number; bytes: number }> {
  const maxFiles = limits.maxFiles ?? defaultMaxFiles;
  const listed: { rel: string; size: number }[] = [];
  let total = 0;
  const pending = [''];
  let listings = 0;
  while (pending.length) {
    const rel = pending.shift()!;
    // Each listing is one request: a deep tree of empty folders is bounded like the files are.
    if (++listings > maxFiles)
      throw new NonRetriableError('model_output_invalid', `${folder} has more than ${maxFiles} folders`);
    for (const entry of await client.listArtifacts(rel ? `${folder}/${rel}` : folder)) {
      // The proxy lists names in the folder; a server that answers whole paths gives the same last segment.
      const name = path.posix.basename(entry.path);
      const child = rel ? `${rel}/${name}` : name;
      const problem = folderPathProblem(child);
      if (problem)
        throw new NonRetriableError(
          'model_output_invalid',
          `${folder} has an artifact with a bad path (${problem}): ${JSON.stringify(child)}`,
        );
      if (entry.is_dir) {
        pending.push(child);
        continue;
      }
      const size = Number(entry.file_size ?? 0);
      listed.push({ rel: child, size: Number.isFinite(size) ? size : 0 });
      total += Number.isFinite(size) ? size : 0;
      if (listed.length > maxFiles)
        throw new NonRetriableError('model_output_invalid', `${folder} has more than ${maxFiles} files`);
      if (total > limits.maxBytes)
        throw new NonRetriableError(
          'model_too_large',
          `${folder} is over the model size limit of ${limits.maxBytes} bytes (at least ${total} bytes)`,
        );
    }
  }
  if (listed.length === 0)
    throw new NonRetriableError(
      'model_output_empty',
      `${folder} has no files (an MLflow model folder is expected)`,
    );
  await mkdir(dir, { recursive: true });
  const written: ByteCount = { bytes: 0 };
  for (const f of listed) {
    const target = path.join(dir, ...f.rel.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    const body = await client.openArtifact(`${folder}/${f.rel}`);
    const limit = byteLimit(
      written,
      limits.maxBytes,
      () =>
        `${folder} is over the model size limit of ${limits.maxBytes} bytes (${f.rel} is bigger than listed)`,
    );
    await pipeline(Readable.fromWeb(body as WebReadableStream<Uint8Array>), limit, createWriteStream(target));
  }
  return { files: listed.length, bytes: written.bytes };
}

export interface ImportDeps {
  store: ArtifactStore;
  tracking: PromoteDeps['tracking'];
  /** The registry, for a Unity Catalog candidate (`registry: 'databricks-uc'`). */
  registry?: Partial<Pick<MlflowClient, 'call' | 'unityCatalog'>>;
  unityCatalog?: UcReadOptions;
  /** As in {@link PromoteDeps}: set when the tracking server is a Databricks workspace. */
  databricks?: DatabricksArtifactOptions;
  contractOf?: (pipeline: string, version?: number) => Promise<DatasetContract | undefined>;
  /** The model folder's size limit (default 512 MiB, as for a user job's output). */
  maxModelBytes?: number;
  /** Scratch space (default: the OS temp folder). */
  tmpRoot?: string;
}

function taskOf(spec: TrainingSpec): 'classification' | 'regression' | undefined {
  if (spec.algorithm === 'logistic_regression') return 'classification';
  if (spec.algorithm === 'ridge') return 'regression';
  return spec.task;
}

/**
 * The train step of a promoted run: the run's data split as the pipeline's spec splits it (the
 * split a user job would get), the model folder downloaded and checked against its features, task
 * and classes on sample rows, then stored under its digest: the same JobResult a training job
 * gives, with algorithm `mlflow`. Idempotent: the stored folder is content-addressed.
 */
export async function importMlflowModel(
  deps: ImportDeps,
  input: {
    candidate: MlflowCandidate;
    spec: TrainingSpec;
    dataset: { uri: string; sha256: string };
    pipeline?: { name: string; version: number };
  },
): Promise<JobResult> {
  const { spec } = input;
  const scratch = await mkdtemp(path.join(deps.tmpRoot ?? tmpdir(), 'sluice-import-'));
  try {
    const table = await loadColumnar(deps.store, input.dataset);
    const contract = input.pipeline
      ? await deps.contractOf?.(input.pipeline.name, input.pipeline.version)
      : undefined;
    const task = taskOf(spec);
    const data = await writeJobData(path.join(scratch, 'data'), {
      table,
      contract: contract ?? inferDatasetContract(table),
      target: spec.target,
      features: spec.features,
      seed: spec.seed,
      split: spec.split,
      ...(task ? { task } : {}),
    });
    const maxBytes = deps.maxModelBytes ?? defaultModelMaxBytes;
    const modelDir = path.join(scratch, 'model');
    if (input.candidate.registry === 'databricks-uc') {
      const registry = deps.registry;
      if (!registry?.unityCatalog || !registry.call)
        throw new NonRetriableError(
          'mlflow_not_configured',
          `this run promotes the Unity Catalog model ${input.candidate.uri}, but MLFLOW_REGISTRY_URI is no longer databricks-uc`,
        );
      const uc = { call: registry.call.bind(registry) };
      await downloadUcFolder(uc, input.candidate, modelDir, { maxBytes }, deps.unityCatalog);
    } else {
      const reader = readerFor(deps, input.candidate.artifactPath);
      await downloadArtifactFolder(reader, input.candidate.artifactPath, modelDir, { maxBytes });
    }
    const result = await collectJobModel(deps.store, modelDir, data, maxBytes);
    return { ...result, algorithm: 'mlflow' };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
