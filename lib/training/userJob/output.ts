import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ModelArtifact } from '../../contracts/modelArtifact';
import type { JobResult, TrainingJobRequest } from '../../contracts/trainingJob';
import { isCustomSpec } from '../../contracts/trainingSpec';
import { inferDatasetContract } from '../../data/checking/inferDatasetContract';
import { loadColumnar } from '../../data/datasets';
import { NonRetriableError } from '../../errors';
import { ARTIFACT_SIDECAR_FILE, folderPathProblem, storeModelFolder } from '../../mlmodel/blobFolder';
import type { CheckedModelFolder } from '../../mlmodel/check';
import type * as ModelCheck from '../../mlmodel/check';
import type { ByteCount, FolderLimits } from '../../mlmodel/folder';
import { byteLimit, defaultMaxFiles } from '../../mlmodel/folder';
import type { ArtifactStore, BlobLocation } from '../../storage/blob';
import { inlineArtifact } from '../models/mlflowFolder';
import type { JobData } from './jobData';
import { writeJobData } from './jobData';
import type { CachedJobData, JobDataCacheOptions } from './jobDataCache';
import { cachedJobData, jobDataKey } from './jobDataCache';

// Loaded when a folder is checked: the local worker loads the model check (YAML, the ONNX runtime)
// while the user's process runs, not before it starts.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const modelCheck = (): typeof ModelCheck => require('../../mlmodel/check') as typeof ModelCheck;

/**
 * The two ends of a user job that every backend shares: the job's data prepared from the run's
 * validated dataset (the same split the built-in algorithms and the evaluation use), and the model
 * folder the job wrote, checked and stored under its digest with the result the pipeline carries
 * on. Local jobs check their output where they ran; remote ones (Azure ML, Databricks) download it
 * first (`downloadBlobPrefix`) and then `collectJobModel`.
 */

/**
 * Reads the run's columnar dataset (verified against its digest) and writes the split files of
 * `sluice.job/v1` into `dir`. The columnar form is already conformed to the pipeline's dataset
 * contract at ingestion; the contract itself goes to the job as SLUICE_CONTRACT (inferred from the
 * table when the request carries none, for runs without a pinned pipeline).
 */
export async function prepareJobData(
  store: ArtifactStore,
  request: TrainingJobRequest,
  dir: string,
): Promise<JobData> {
  return writeRequestData(store, customSpec(request), request, dir);
}

/**
 * `prepareJobData` through the job data cache (lib/training/userJob/jobDataCache.ts): a job on a
 * dataset, contract, columns, task, seed and split a recent job had gets that job's files without
 * the dataset being read; `cache: false` writes them as `prepareJobData` does.
 */
export async function prepareCachedJobData(
  store: ArtifactStore,
  request: TrainingJobRequest,
  dir: string,
  cache: JobDataCacheOptions | false = {},
): Promise<CachedJobData> {
  const spec = customSpec(request);
  if (cache === false) return { data: await writeRequestData(store, spec, request, dir), cache: 'uncached' };
  const key = jobDataKey({
    datasetSha256: request.dataset.sha256,
    contract: request.contract ?? null,
    target: spec.target,
    features: spec.features,
    ...(spec.task ? { task: spec.task } : {}),
    seed: spec.seed,
    split: spec.split,
  });
  return cachedJobData(key, dir, (into) => writeRequestData(store, spec, request, into), cache);
}

function customSpec(request: TrainingJobRequest) {
  const { spec } = request;
  if (!isCustomSpec(spec)) {
    throw new NonRetriableError(
      'not_a_custom_job',
      `job ${request.jobId} trains ${spec.algorithm}, not custom code`,
    );
  }
  return spec;
}

async function writeRequestData(
  store: ArtifactStore,
  spec: ReturnType<typeof customSpec>,
  request: TrainingJobRequest,
  dir: string,
): Promise<JobData> {
  const table = await loadColumnar(store, request.dataset);
  return writeJobData(dir, {
    table,
    contract: request.contract ?? inferDatasetContract(table),
    target: spec.target,
    features: spec.features,
    seed: spec.seed,
    split: spec.split,
    ...(spec.task ? { task: spec.task } : {}),
  });
}

/** What the registry and the scorers need to know of a checked folder. */
export function artifactOf(data: JobData, checked: CheckedModelFolder): ModelArtifact {
  const classes = checked.classes ?? data.classes;
  return {
    format: 'mlflow',
    flavor: checked.flavor,
    ...(checked.onnxPath ? { onnxPath: checked.onnxPath } : {}),
    task: data.task,
    target: data.target,
    features: data.featureKinds.map((f) => ({ name: f.name, kind: f.kind })),
    ...(data.task === 'classification' && classes ? { classes: [...classes] } : {}),
    ...(checked.inputLayout ? { inputLayout: checked.inputLayout } : {}),
    files: checked.manifest.length,
    bytes: checked.manifest.reduce((n, f) => n + f.bytes, 0),
  };
}

/**
 * Stores a folder that passed `checkModelFolder` (refused if it changed since) and builds the job
 * result: the folder's manifest URI and digest, the job's own metrics.json under `metrics.job`, the
 * split's row counts, and the artifact description — inline when it fits `inlineArtifact`'s bound,
 * otherwise stored in the folder as ARTIFACT_SIDECAR_FILE (the stored digest then covers it).
 */
export async function storeCheckedModel(
  store: Pick<ArtifactStore, 'put' | 'getBuffer' | 'uri' | 'parseUri'>,
  outputDir: string,
  data: JobData,
  checked: CheckedModelFolder,
): Promise<JobResult> {
  const bytes = checked.manifest.reduce((n, f) => n + f.bytes, 0);
  if (checked.manifest.some((f) => f.path === ARTIFACT_SIDECAR_FILE)) {
    throw new NonRetriableError(
      'model_output_invalid',
      `the model folder has a file named ${ARTIFACT_SIDECAR_FILE}, a name Sluice reserves for its own`,
    );
  }
  // A wide model's description (every feature and class) would push the job result and the
  // evaluate/register payloads past their bound: past MAX_INLINE_ARTIFACT_BYTES it goes into the
  // stored folder instead (covered by the folder's digest) and readers take it from there.
  const artifact = artifactOf(data, checked);
  const inline = inlineArtifact(artifact);
  const stored = await storeModelFolder(
    store,
    outputDir,
    { maxBytes: bytes, maxFiles: checked.manifest.length },
    checked.digest,
    inline ? [] : [{ path: ARTIFACT_SIDECAR_FILE, bytes: Buffer.from(JSON.stringify(artifact), 'utf8') }],
  );
  return {
    modelUri: stored.uri,
    modelDigest: stored.digest,
    algorithm: 'custom',
    task: data.task,
    metrics: checked.metrics ? { job: { ...checked.metrics } } : {},
    rows: { train: data.train.rows, validation: data.validation.rows, holdout: data.holdout.rows },
    iterations: 0,
    converged: true,
    ...(inline ? { artifact: inline } : {}),
  };
}

/** Checks a model folder a remote job wrote (already downloaded to `outputDir`) and stores it. */
export async function collectJobModel(
  store: Pick<ArtifactStore, 'put' | 'getBuffer' | 'uri' | 'parseUri'>,
  outputDir: string,
  data: Pick<
    JobData,
    'featureKinds' | 'task' | 'classes' | 'sample' | 'target' | 'train' | 'validation' | 'holdout'
  >,
  maxBytes: number,
): Promise<JobResult> {
  const checked = await modelCheck().checkModelFolder(outputDir, {
    features: data.featureKinds,
    task: data.task,
    ...(data.classes ? { classes: data.classes } : {}),
    maxBytes,
    sample: data.sample,
  });
  return storeCheckedModel(store, outputDir, data as JobData, checked);
}

/**
 * Downloads every blob under `prefix` (a remote job's output folder) into `dir`, keeping the
 * relative paths. The folder check's limits hold before a byte is written: more than `maxFiles`
 * blobs or `maxBytes` bytes, a path that would leave `dir`, or nothing at all → NonRetriableError;
 * and while downloading, bytes are counted so a blob that grew after the listing stops the download
 * at `maxBytes` (`model_too_large`).
 */
export async function downloadBlobPrefix(
  store: Pick<ArtifactStore, 'list' | 'getStream'>,
  prefix: BlobLocation,
  dir: string,
  limits: FolderLimits,
): Promise<{ files: number; bytes: number }> {
  const base = prefix.path.replace(/\/*$/, '/');
  const maxFiles = limits.maxFiles ?? defaultMaxFiles;
  const listed: { path: string; rel: string; size: number }[] = [];
  let total = 0;
  for await (const blob of store.list(prefix.container, base)) {
    const rel = blob.path.slice(base.length);
    if (rel === '' || rel.endsWith('/')) continue; // folder placeholders (hierarchical namespace)
    const problem = folderPathProblem(rel);
    if (problem) {
      throw new NonRetriableError(
        'model_output_invalid',
        `the job's output has a blob with a bad path (${problem}): ${JSON.stringify(rel)}`,
      );
    }
    listed.push({ path: blob.path, rel, size: blob.size });
    total += blob.size;
    if (listed.length > maxFiles) {
      throw new NonRetriableError('model_output_invalid', `the job's output has more than ${maxFiles} files`);
    }
    if (total > limits.maxBytes) {
      throw new NonRetriableError(
        'model_too_large',
        `the job's output is over its size limit of ${limits.maxBytes} bytes (at least ${total} bytes)`,
      );
    }
  }
  if (listed.length === 0) {
    throw new NonRetriableError(
      'model_output_empty',
      `the job wrote nothing to ${prefix.container}/${base} (an MLflow model folder is expected there)`,
    );
  }
  await mkdir(dir, { recursive: true });
  // The listing can be stale (a job still writing, or rewriting its output): count what is really
  // downloaded and stop as soon as the folder goes past its limit, whatever the listing said.
  const written: ByteCount = { bytes: 0 };
  for (const f of listed) {
    const target = path.join(dir, ...f.rel.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    const { stream } = await store.getStream({ container: prefix.container, path: f.path });
    const limit = byteLimit(
      written,
      limits.maxBytes,
      () =>
        `the job's output is over its size limit of ${limits.maxBytes} bytes (${f.rel} grew after it was listed)`,
    );
    await pipeline(stream, limit, createWriteStream(target));
  }
  return { files: listed.length, bytes: written.bytes };
}
