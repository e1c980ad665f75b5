import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { NonRetriableError } from '../errors';
import type { FolderLimits, ManifestEntry } from './folder';
import { readManifest } from './folder';
import { parseMLmodel } from './mlmodelFile';
import type { FeatureSpec, ModelTask, OnnxInterface, Scores } from './onnxModel';
import { OnnxModel } from './onnxModel';

/** What the job was asked to train, which its model folder must fit. */
export interface ModelFolderExpectation {
  /** Order = the job's SLUICE_FEATURES. */
  features: FeatureSpec[];
  task: ModelTask;
  /** Known class labels, when the contract names them. */
  classes?: string[];
  /** The whole folder's size limit in bytes. */
  maxBytes: number;
  /** At most this many files (default 10,000). */
  maxFiles?: number;
  /** Rows to score once: NaN/Inf values and bad probabilities fail the check. */
  sample?: Record<string, unknown>[];
}

/** A model folder that passed every check. */
export interface CheckedModelFolder {
  /** SHA-256 over the manifest (approval binds to it); see `manifestDigest`. */
  digest: string;
  /** Every file, sorted by path. */
  manifest: ManifestEntry[];
  /** python_function only = no ONNX; such a model is evaluated by its `score` command. */
  flavor: 'onnx' | 'python_function';
  /** Relative path of the .onnx file. */
  onnxPath?: string;
  inputLayout?: 'per-feature' | 'tensor';
  signature?: { inputs: unknown[]; outputs: unknown[] };
  /** metrics.json, validated (name → finite number). */
  metrics?: Record<string, number>;
  /** The outputs read: label/probabilities for a classifier, value for a regressor. */
  outputs?: Pick<OnnxInterface, 'label' | 'probabilities' | 'value' | 'zipMapped'>;
  /** The probability columns' classes, when the model names them (ZipMap). */
  classes?: string[];
  /** Rows of the sample that were scored. */
  sampleRows?: number;
  /** What the model answered for the sample rows, in their order (shown to people; already checked). */
  sampleScores?: Scores;
}

/** Relative tolerance for a probability row's sum (float32 softmax outputs). */
const sumTolerance = 1e-3;
const rangeTolerance = 1e-6;

/**
 * The job's metrics travel on the job result (and evaluate/register payloads, bounded at 16 KB):
 * at most 100 metrics with names up to 64 characters, from a metrics.json of at most 64 KiB.
 */
export const MAX_METRICS = 100;
export const MAX_METRIC_NAME = 64;
export const MAX_METRICS_FILE_BYTES = 64 * 1024;

function parseMetrics(text: string): Record<string, number> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new NonRetriableError('metrics_invalid', 'metrics.json is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new NonRetriableError('metrics_invalid', 'metrics.json must be an object of metric name → number');
  }
  const entries = Object.entries(doc);
  if (entries.length > MAX_METRICS) {
    throw new NonRetriableError(
      'metrics_invalid',
      `metrics.json has ${entries.length} metrics; at most ${MAX_METRICS} are allowed`,
    );
  }
  const metrics: Record<string, number> = {};
  for (const [name, value] of entries) {
    if (name.trim() === '' || name.length > MAX_METRIC_NAME) {
      throw new NonRetriableError(
        'metrics_invalid',
        `metrics.json has an empty or over-long metric name (at most ${MAX_METRIC_NAME} characters): ${JSON.stringify(name.slice(0, MAX_METRIC_NAME))}${name.length > MAX_METRIC_NAME ? '…' : ''}`,
      );
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new NonRetriableError(
        'metrics_invalid',
        `metrics.json: ${name} must be a finite number, got ${JSON.stringify(value)}`,
      );
    }
    metrics[name] = value;
  }
  return metrics;
}

/** Checks scores of the sample: finite values; probabilities in [0, 1] summing to 1; known labels. */
export function checkPredictions(scores: Scores, classes?: readonly string[]): void {
  const bad = (message: string): NonRetriableError => new NonRetriableError('predictions_invalid', message);
  scores.values?.forEach((v, i) => {
    if (!Number.isFinite(v)) throw bad(`the model predicts ${v} for sample row ${i}`);
  });
  scores.probabilities?.forEach((p, i) => {
    let sum = 0;
    for (const x of p) {
      if (!Number.isFinite(x)) throw bad(`the model gives probability ${x} for sample row ${i}`);
      if (x < -rangeTolerance || x > 1 + rangeTolerance) {
        throw bad(`the model gives probability ${x}, outside [0, 1], for sample row ${i}`);
      }
      sum += x;
    }
    if (Math.abs(sum - 1) > sumTolerance) {
      throw bad(`the probabilities of sample row ${i} sum to ${sum}, not 1`);
    }
  });
  if (classes) {
    const known = new Set(classes);
    scores.labels?.forEach((l, i) => {
      if (!known.has(l))
        throw bad(
          `the model predicts label ${JSON.stringify(l)} for sample row ${i}, not one of the classes`,
        );
    });
  }
}

/**
 * A column-based MLflow signature (`[{"name": "age", "type": "double"}, …]`, what `mlflow.sklearn`
 * and autologging write) names the columns the model reads. Each one it requires must be a feature
 * Sluice hands the job and the score command: a model that reads a column the contract does not have
 * fails on the first prediction, so it fails here instead, before anything is registered. Extra
 * features are fine (MLflow drops columns the signature does not name). Tensor-based signatures (what
 * ONNX models carry) name graph inputs, which the ONNX check compares with the features itself.
 */
export function checkSignatureColumns(
  signature: { inputs: unknown[] } | undefined,
  features: readonly FeatureSpec[],
): void {
  if (!signature) return;
  const columns = signature.inputs.filter(
    (i): i is { name: string; type?: unknown; required?: unknown } =>
      typeof i === 'object' && i !== null && typeof (i as { name?: unknown }).name === 'string',
  );
  const columnBased =
    columns.length === signature.inputs.length &&
    columns.length > 0 &&
    columns.every((c) => c.type !== 'tensor');
  if (!columnBased) return;
  const have = new Set(features.map((f) => f.name));
  const missing = columns.filter((c) => c.required !== false && !have.has(c.name)).map((c) => c.name);
  if (missing.length > 0) {
    throw new NonRetriableError(
      'signature_mismatch',
      `the MLmodel signature requires column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, ` +
        `which ${missing.length > 1 ? 'are' : 'is'} not among the features (${features.map((f) => f.name).join(', ')})`,
    );
  }
}

/**
 * Reads and checks what a training job wrote to SLUICE_OUTPUT, an MLflow model folder, before
 * anything is registered. Each failure is a NonRetriableError with its code: model_output_empty,
 * model_output_invalid, model_too_large, mlmodel_missing, mlmodel_invalid, onnx_invalid,
 * signature_mismatch, onnx_inputs_mismatch, onnx_outputs_mismatch, predictions_invalid, metrics_invalid.
 */
export async function checkModelFolder(
  dir: string,
  expectation: ModelFolderExpectation,
): Promise<CheckedModelFolder> {
  const limits: FolderLimits = { maxBytes: expectation.maxBytes, maxFiles: expectation.maxFiles };
  const { manifest, digest } = await readManifest(dir, limits);
  const has = (p: string): boolean => manifest.some((e) => e.path === p);
  if (!has('MLmodel')) {
    throw new NonRetriableError(
      'mlmodel_missing',
      `the model folder has no MLmodel file (found: ${manifest
        .slice(0, 10)
        .map((e) => e.path)
        .join(', ')}${manifest.length > 10 ? ', …' : ''})`,
    );
  }
  const info = parseMLmodel(await readFile(path.join(dir, 'MLmodel'), 'utf8'));
  const checked: CheckedModelFolder = { digest, manifest, flavor: info.flavor };
  if (info.signature) checked.signature = info.signature;
  checkSignatureColumns(info.signature, expectation.features);
  const metricsEntry = manifest.find((e) => e.path === 'metrics.json');
  if (metricsEntry && metricsEntry.bytes > MAX_METRICS_FILE_BYTES) {
    throw new NonRetriableError(
      'metrics_invalid',
      `metrics.json is ${metricsEntry.bytes} bytes; at most ${MAX_METRICS_FILE_BYTES} are allowed`,
    );
  }
  if (metricsEntry) checked.metrics = parseMetrics(await readFile(path.join(dir, 'metrics.json'), 'utf8'));
  if (info.flavor === 'python_function') return checked;

  const onnxPath = info.onnxPath!;
  if (!has(onnxPath)) {
    throw new NonRetriableError(
      'onnx_invalid',
      `MLmodel names the ONNX file ${onnxPath}, which the folder does not have`,
    );
  }
  checked.onnxPath = onnxPath;
  const model = await OnnxModel.load(await readFile(path.join(dir, onnxPath)), expectation);
  try {
    checked.inputLayout = model.io.layout;
    checked.outputs = {
      label: model.io.label,
      probabilities: model.io.probabilities,
      value: model.io.value,
      zipMapped: model.io.zipMapped,
    };
    if (model.io.classes) checked.classes = model.io.classes;
    if (expectation.sample && expectation.sample.length > 0) {
      let scores: Scores;
      try {
        scores = await model.score(expectation.sample);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'onnx_run_failed') throw err;
        throw new NonRetriableError(
          'predictions_invalid',
          `scoring the sample failed: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      checkPredictions(scores, expectation.classes);
      checked.sampleRows = expectation.sample.length;
      checked.sampleScores = scores;
    }
  } finally {
    await model.release();
  }
  return checked;
}
