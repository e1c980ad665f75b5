import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { ModelArtifact } from '../../contracts/modelArtifact';
import type { JobResult } from '../../contracts/trainingJob';
import { jobResultSchema } from '../../contracts/trainingJob';
import { NonRetriableError } from '../../errors';
import { isModelFolderUri, storeModelFolder } from '../../mlmodel/blobFolder';
import type { CheckedModelFolder } from '../../mlmodel/check';
import { checkModelFolder } from '../../mlmodel/check';
import { defaultMaxFiles } from '../../mlmodel/folder';
import type { Scores } from '../../mlmodel/onnxModel';
import resources from '../../resources.json';
import type { ArtifactStore, BlobLocation } from '../../storage/blob';
import { datasetFromRecords } from '../dataset';
import type { ModelJson } from '../models/format';
import { BUILT_IN_JSON_FILE, inlineArtifact } from '../models/mlflowFolder';
import type { LoadedModel } from '../models/predict';
import { loadModel } from '../models/predict';
import { downloadBlobPrefix } from '../userJob/output';
import { jobPath } from './types';

/**
 * The Azure ML worker mode's model, collected. The Sluice worker run as an Azure ML command job has
 * no Blob access of its own: it writes the built-in model's MLflow folder (MLmodel, model.onnx,
 * model.json) to `<out>/model/` of its output folder (`model/` of the job's own output container in
 * the artifact account, `source`) and reports `<out>/model.json` with the JSON's SHA-256. When Azure ML says Completed, the
 * backend downloads that folder, checks it is the model the worker reported, and stores it as every
 * other path does (`storeModelFolder`), so evaluation and predict score it through ONNX:
 *
 * - `model.json` hashes to the digest the worker reported (the folder is the job's own model);
 * - it is a valid Sluice model document, of the task and algorithm reported;
 * - MLmodel parses and has the `onnx` flavor; the ONNX loads, takes the model's features and has
 *   the outputs its task needs (`checkModelFolder`);
 * - on rows made from the model's own features, the ONNX scores equal the JSON model's within 1e-6
 *   (the worker exports float64 graphs): the graph is the model, not another one.
 *
 * The outcome is recorded once in `jobs/<jobId>/model-collected.json` (first writer wins), so a
 * second poll neither downloads nor stores again. A worker output without `model/` (a worker from
 * before model folders, or a model with no ONNX export) keeps the reported JSON artifact.
 */

export const WORKER_MODEL_SUBFOLDER = 'model';
export const COLLECTED_RECORD = 'model-collected.json';
/** How far the ONNX graph's scores may be from the JSON model's on the check rows. */
export const WORKER_ONNX_TOLERANCE = 1e-6;
const SAMPLE_ROWS = 8;

const jobsContainer = resources.blobContainers.jobs;

const collectedRecordSchema = z.union([
  z.object({ jobId: z.string(), collectedAt: z.string(), result: jobResultSchema }),
  z.object({
    jobId: z.string(),
    collectedAt: z.string(),
    error: z.object({ code: z.string(), message: z.string() }),
  }),
]);
export type CollectedRecord = z.infer<typeof collectedRecordSchema>;

export type WorkerModelStore = Pick<
  ArtifactStore,
  'put' | 'getBuffer' | 'uri' | 'parseUri' | 'list' | 'getStream' | 'tryGetJson'
>;

export interface CollectWorkerModelOptions {
  /** The folder's size limit in bytes. */
  maxBytes: number;
  now?: () => number;
  /**
   * The worker's output folder (`model/` is read under it): the job's own output container on
   * Azure ML; default `jobs/<jobId>/`.
   */
  source?: BlobLocation;
}

/** What the backend gets: the result to report, or the reason the job fails. */
export type WorkerModelOutcome =
  { ok: true; result: JobResult } | { ok: false; error: { code: string; message: string } };

const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Rows built from the model's own features: numbers spread around 0, categories in turn. */
export function checkRows(model: ModelJson, rows = SAMPLE_ROWS): Record<string, unknown>[] {
  return Array.from({ length: rows }, (_, i) =>
    Object.fromEntries(
      model.features.map((f, j) => [
        f.name,
        f.type === 'numeric'
          ? (i - rows / 2) * 0.75 * (j + 1) + 0.1 * j
          : f.categories.length > 0
            ? f.categories[(i + j) % f.categories.length]
            : 'unseen',
      ]),
    ),
  );
}

/** Refuses an ONNX graph whose scores are not the JSON model's on `rows`. */
export function checkSameScores(
  model: LoadedModel,
  rows: readonly Record<string, unknown>[],
  scores: Scores,
  tolerance = WORKER_ONNX_TOLERANCE,
): void {
  const ds = datasetFromRecords(rows, model.columnTypes);
  const differ = (what: string, row: number, onnx: number, json: number): NonRetriableError =>
    new NonRetriableError(
      'onnx_model_mismatch',
      `the worker's model.onnx gives ${what} ${onnx} for check row ${row}, its model.json ${json}; they are not the same model`,
    );
  const classes = model.classes;
  if (classes) {
    const proba = model.predictProba(ds);
    const k = classes.length;
    const order = scores.classes ?? classes;
    if (!scores.probabilities || order.length !== k || !classes.every((c) => order.includes(c))) {
      throw new NonRetriableError(
        'onnx_outputs_mismatch',
        `the worker's model.onnx does not give probabilities for the classes ${classes.join(', ')}`,
      );
    }
    scores.probabilities.forEach((p, i) => {
      classes.forEach((c, ci) => {
        const onnx = p[order.indexOf(c)]!;
        const json = proba[i * k + ci]!;
        if (!(Math.abs(onnx - json) <= tolerance)) throw differ(`P(${c})`, i, onnx, json);
      });
    });
    return;
  }
  const values = model.predict(ds);
  if (!scores.values || scores.values.length !== rows.length) {
    throw new NonRetriableError('onnx_outputs_mismatch', `the worker's model.onnx gives no value per row`);
  }
  scores.values.forEach((onnx, i) => {
    const json = values[i]!;
    if (!(Math.abs(onnx - json) <= tolerance * Math.max(1, Math.abs(json))))
      throw differ('the value', i, onnx, json);
  });
}

/** The artifact of a checked built-in folder: the model's own description, the folder's size. */
export function workerArtifact(model: ModelJson, checked: CheckedModelFolder): ModelArtifact {
  const classes = model.target.classes;
  return {
    format: 'mlflow',
    flavor: 'onnx',
    onnxPath: checked.onnxPath!,
    task: classes ? 'classification' : 'regression',
    target: model.target.name,
    features: model.features.map((f) => ({
      name: f.name,
      kind: f.type === 'numeric' ? ('number' as const) : ('string' as const),
    })),
    ...(classes ? { classes: [...classes] } : {}),
    ...(checked.inputLayout ? { inputLayout: checked.inputLayout } : {}),
    files: checked.manifest.length,
    bytes: checked.manifest.reduce((n, f) => n + f.bytes, 0),
  };
}

/**
 * Checks the folder the worker wrote, downloaded to `dir`, against what it reported, and stores it.
 * Every refusal is a NonRetriableError with its code.
 */
export async function storeWorkerFolder(
  store: Pick<ArtifactStore, 'put' | 'getBuffer' | 'uri' | 'parseUri'>,
  dir: string,
  reported: JobResult,
  maxBytes: number,
): Promise<JobResult> {
  let json: Buffer;
  try {
    json = await readFile(path.join(dir, BUILT_IN_JSON_FILE));
  } catch {
    throw new NonRetriableError(
      'model_output_invalid',
      `the worker's model folder has no ${BUILT_IN_JSON_FILE}`,
    );
  }
  if (sha256Hex(json) !== reported.modelDigest) {
    throw new NonRetriableError(
      'model_digest_mismatch',
      `the worker's ${BUILT_IN_JSON_FILE} hashes to ${sha256Hex(json)}, not the digest it reported (${reported.modelDigest})`,
    );
  }
  let model: LoadedModel;
  try {
    model = loadModel(JSON.parse(json.toString('utf8')));
  } catch (err) {
    throw new NonRetriableError(
      'model_output_invalid',
      `the worker's ${BUILT_IN_JSON_FILE} is not a Sluice model: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const def = model.definition;
  const task = def.target.classes ? 'classification' : 'regression';
  if (reported.task !== def.task || reported.algorithm !== def.algorithm) {
    throw new NonRetriableError(
      'model_output_invalid',
      `the worker reported a ${reported.task} ${reported.algorithm} model, its ${BUILT_IN_JSON_FILE} is a ${def.task} ${def.algorithm} one`,
    );
  }
  const sample = checkRows(def);
  const checked = await checkModelFolder(dir, {
    features: def.features.map((f) => ({ name: f.name, kind: f.type === 'numeric' ? 'number' : 'string' })),
    task,
    ...(def.target.classes ? { classes: [...def.target.classes] } : {}),
    maxBytes,
    sample,
  });
  if (checked.flavor !== 'onnx' || !checked.onnxPath || !checked.sampleScores) {
    throw new NonRetriableError(
      'onnx_invalid',
      `the worker's MLmodel has no onnx flavor (flavor ${checked.flavor}); a built-in model's folder always has one`,
    );
  }
  checkSameScores(model, sample, checked.sampleScores);
  const stored = await storeModelFolder(
    store,
    dir,
    { maxBytes, maxFiles: checked.manifest.length },
    checked.digest,
  );
  const artifact = inlineArtifact(workerArtifact(def, checked));
  return {
    ...reported,
    modelUri: stored.uri,
    modelDigest: stored.digest,
    ...(artifact ? { artifact } : {}),
  };
}

const recordRef = (jobId: string): BlobLocation => ({
  container: jobsContainer,
  path: jobPath(jobId, COLLECTED_RECORD),
});

async function readRecord(store: WorkerModelStore, jobId: string): Promise<CollectedRecord | undefined> {
  const found = await store.tryGetJson(recordRef(jobId));
  if (!found) return undefined;
  const parsed = collectedRecordSchema.safeParse(found.value);
  if (!parsed.success) {
    throw new NonRetriableError(
      'job_record_invalid',
      `${jobsContainer}/${jobPath(jobId, COLLECTED_RECORD)}: ${parsed.error.message}`,
    );
  }
  return parsed.data;
}

const outcomeOf = (r: CollectedRecord): WorkerModelOutcome =>
  'result' in r ? { ok: true, result: r.result } : { ok: false, error: r.error };

/**
 * The result of a completed worker job, its model folder collected once (see the file's comment).
 * A storage hiccup throws (the next poll tries again); a bad folder is recorded as the failure.
 */
export async function collectWorkerModel(
  store: WorkerModelStore,
  jobId: string,
  reported: JobResult,
  options: CollectWorkerModelOptions,
): Promise<WorkerModelOutcome> {
  const recorded = await readRecord(store, jobId);
  if (recorded) return outcomeOf(recorded);
  // A worker that stored its folder itself has nothing left to collect.
  if (reported.artifact || isModelFolderUri(reported.modelUri)) return { ok: true, result: reported };

  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-azureml-worker-'));
  let outcome: WorkerModelOutcome;
  try {
    try {
      const source = options.source ?? { container: jobsContainer, path: jobPath(jobId, '') };
      await downloadBlobPrefix(
        store,
        { container: source.container, path: `${source.path}${WORKER_MODEL_SUBFOLDER}/` },
        dir,
        { maxBytes: options.maxBytes, maxFiles: defaultMaxFiles },
      );
    } catch (err) {
      // No model/ folder: an older worker, or a model without an ONNX export. The JSON stays.
      if (err instanceof NonRetriableError && err.code === 'model_output_empty') {
        return { ok: true, result: reported };
      }
      throw err;
    }
    outcome = { ok: true, result: await storeWorkerFolder(store, dir, reported, options.maxBytes) };
  } catch (err) {
    if (!(err instanceof NonRetriableError)) throw err;
    outcome = { ok: false, error: { code: err.code, message: err.message } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const record: CollectedRecord = {
    jobId,
    collectedAt: new Date((options.now ?? Date.now)()).toISOString(),
    ...(outcome.ok ? { result: outcome.result } : { error: outcome.error }),
  } as CollectedRecord;
  await store.put(recordRef(jobId), JSON.stringify(record), {
    contentType: 'application/json',
    condition: 'create',
  });
  // Another poll may have recorded first: its record is the outcome.
  const winner = await readRecord(store, jobId);
  return winner ? outcomeOf(winner) : outcome;
}
