import { parse as parseYaml } from 'yaml';
import type { ModelArtifact, ModelFeature } from '../contracts/modelArtifact';
import { modelArtifactSchema } from '../contracts/modelArtifact';
import { NonRetriableError } from '../errors';
import type { FolderStore, StoredModelFolder } from '../mlmodel/blobFolder';
import { ARTIFACT_SIDECAR_FILE, isModelFolderUri, openModelFolder } from '../mlmodel/blobFolder';
import { parseMLmodel } from '../mlmodel/mlmodelFile';
import type { FeatureColumn, Scores } from '../mlmodel/onnxModel';
import type { OnnxModels } from '../mlmodel/onnxModels';
import type { ColumnarDataset } from '../training/dataset';
import { datasetFromRecords } from '../training/dataset';
import { loadVerifiedModel } from '../training/models/artifact';
import type { ModelJson } from '../training/models/format';
import { BUILT_IN_JSON_FILE, builtInModelFolder } from '../training/models/mlflowFolder';
import type { LoadedModel } from '../training/models/predict';
import { loadModel } from '../training/models/predict';

/**
 * One way to score any model Sluice knows, whoever trained it: a legacy Sluice JSON artifact
 * (registry versions from before model folders), an MLflow folder with an ONNX flavor (built-in
 * models and users' ONNX models, through onnxruntime with sessions cached by digest), or a
 * python_function-only folder (scored by the pipeline's `score` command, which the caller injects).
 * Evaluation and predict take a {@link Scorer} and never ask which it is.
 */

/** A stored model: where it is, the digest it must hash to, and what Sluice knows of it. */
export interface ModelRef {
  /** The legacy JSON's URI, or the folder manifest's URI. */
  uri: string;
  digest: string;
  /** Absent: a legacy Sluice JSON artifact. */
  artifact?: ModelArtifact;
}

/** What a scorer returns: per row, class probabilities (row-major n × K, in `classes` order) or values. */
export type ModelScores =
  { probabilities: Float64Array; values?: undefined } | { values: Float64Array; probabilities?: undefined };

export interface Scorer {
  /** How it scores: the TS predict of a legacy JSON, onnxruntime, or the `score` command. */
  readonly kind: 'json' | 'onnx' | 'python_function';
  readonly digest: string;
  readonly task: 'classification' | 'regression';
  readonly target: string;
  /** Classification: the labels of the probability columns. */
  readonly classes?: readonly string[];
  /** In the order the model takes them. */
  readonly features: readonly ModelFeature[];
  /** The Sluice model document, when the model is a built-in one (legacy JSON, or a folder's model.json). */
  readonly definition?: ModelJson;
  /** Scores the dataset's rows (every feature must be a column). */
  scoreDataset(ds: ColumnarDataset): Promise<ModelScores>;
  /** Scores rows keyed by feature name (null = missing). */
  scoreRows(rows: readonly Record<string, unknown>[]): Promise<ModelScores>;
}

/**
 * Scores a python_function-only model folder: the pipeline's `score` command run over the rows
 * (lib/training/userJob/score.ts). Given by the caller that has the spec; absent, such a model
 * cannot be scored (`score_command_required`).
 */
export type PythonFunctionScorer = (input: {
  folder: StoredModelFolder;
  artifact: ModelArtifact;
  ds: ColumnarDataset;
}) => Promise<Scores>;

export interface ScorerDeps {
  store: FolderStore;
  /** The process's one ONNX session cache (lib/services.ts). */
  onnx: OnnxModels;
  pythonFunction?: PythonFunctionScorer;
}

const featuresOfJson = (m: ModelJson): ModelFeature[] =>
  m.features.map((f) => ({ name: f.name, kind: f.type === 'numeric' ? 'number' : 'string' }));

/** The dataset's rows as objects keyed by feature (numbers as numbers, NaN/missing as null). */
export function rowsOfDataset(
  ds: ColumnarDataset,
  features: readonly ModelFeature[],
): Record<string, unknown>[] {
  const getters = features.map((f) => {
    const col = ds.columns.find((c) => c.name === f.name);
    if (!col) {
      throw new NonRetriableError(
        'missing_column',
        `the evaluation rows have no column "${f.name}", a feature of the model`,
      );
    }
    if (col.type === 'numeric') {
      const v = col.values;
      return f.kind === 'number'
        ? (i: number) => (Number.isNaN(v[i]!) ? null : v[i]!)
        : (i: number) => (Number.isNaN(v[i]!) ? null : String(v[i]!));
    }
    const { codes, levels } = col;
    return (i: number) => (codes[i]! < 0 ? null : levels[codes[i]!]!);
  });
  const names = features.map((f) => f.name);
  const rows = new Array<Record<string, unknown>>(ds.rowCount);
  for (let i = 0; i < ds.rowCount; i++) {
    const row: Record<string, unknown> = {};
    for (let j = 0; j < names.length; j++) row[names[j]!] = getters[j]!(i);
    rows[i] = row;
  }
  return rows;
}

/**
 * The dataset's feature columns as the ONNX scorer takes them: numbers for a `number` feature
 * (NaN = missing; a categorical column's levels read as numbers), strings for a `string` one
 * ('' = missing; a numeric column's values as decimal strings).
 */
export function columnsOfDataset(ds: ColumnarDataset, features: readonly ModelFeature[]): FeatureColumn[] {
  return features.map((f) => {
    const col = ds.columns.find((c) => c.name === f.name);
    if (!col) {
      throw new NonRetriableError(
        'missing_column',
        `the evaluation rows have no column "${f.name}", a feature of the model`,
      );
    }
    if (col.type === 'numeric') {
      if (f.kind === 'number') return col.values;
      return Array.from(col.values, (v) => (Number.isNaN(v) ? '' : String(v)));
    }
    const { codes, levels } = col;
    if (f.kind === 'string') return Array.from(codes, (k) => (k < 0 ? '' : levels[k]!));
    const asNumbers = levels.map((l) => (l.trim() === '' ? NaN : Number(l)));
    const bad = levels.find((l, k) => Number.isNaN(asNumbers[k]!) && l.trim() !== '');
    if (bad !== undefined) {
      throw new NonRetriableError(
        'row_invalid',
        `feature ${f.name} must be a number, but the evaluation rows have ${JSON.stringify(bad)}`,
      );
    }
    return Float64Array.from(codes, (k) => (k < 0 ? NaN : asNumbers[k]!));
  });
}

/** Scores from a model run as typed arrays, the probability columns in `classes` order. */
export function toModelScores(
  scores: Scores,
  n: number,
  classes: readonly string[] | undefined,
): ModelScores {
  if (!classes) {
    if (!scores.values || scores.values.length !== n) {
      throw new NonRetriableError('predictions_invalid', `the model gave no value for each of the ${n} rows`);
    }
    return { values: Float64Array.from(scores.values) };
  }
  const P = scores.probabilities;
  if (!P || P.length !== n) {
    throw new NonRetriableError(
      'predictions_invalid',
      `the model gave no class probabilities for each of the ${n} rows`,
    );
  }
  const from = scores.classes ?? classes;
  const K = classes.length;
  const map = classes.map((c) => from.indexOf(c));
  if (from.length !== K || map.some((j) => j < 0)) {
    throw new NonRetriableError(
      'predictions_invalid',
      `the model's probability columns (${from.join(', ')}) are not its classes (${classes.join(', ')})`,
    );
  }
  const out = new Float64Array(n * K);
  for (let i = 0; i < n; i++) {
    const row = P[i]!;
    if (row.length !== K) {
      throw new NonRetriableError(
        'predictions_invalid',
        `row ${i} has ${row.length} probabilities, not ${K}`,
      );
    }
    for (let k = 0; k < K; k++) out[i * K + k] = row[map[k]!]!;
  }
  return { probabilities: out };
}

/** A loaded Sluice JSON model as a scorer (the TS predict). */
export function jsonScorer(model: LoadedModel, digest: string): Scorer {
  const def = model.definition;
  const score = (ds: ColumnarDataset): ModelScores =>
    model.classes ? { probabilities: model.predictProba(ds) } : { values: model.predict(ds) };
  return {
    kind: 'json',
    digest,
    task: model.classes ? 'classification' : 'regression',
    target: def.target.name,
    ...(model.classes ? { classes: model.classes } : {}),
    features: featuresOfJson(def),
    definition: def,
    scoreDataset: (ds) => Promise.resolve(score(ds)),
    scoreRows: (rows) => Promise.resolve(score(datasetFromRecords(rows, model.columnTypes))),
  };
}

/** The `sluice` flavor's model.json of a built-in model's folder, if it has one. */
async function builtInDefinition(folder: StoredModelFolder, mlmodel: string): Promise<ModelJson | undefined> {
  const doc = parseYaml(mlmodel) as { flavors?: { sluice?: { data?: unknown } } } | null;
  const file = doc?.flavors?.sluice?.data;
  if (typeof file !== 'string' || !folder.has(file)) return undefined;
  return loadModel(JSON.parse((await folder.read(file)).toString('utf8'))).definition;
}

/**
 * What Sluice knows of a stored model: the artifact that came with it, or, for a model folder that
 * came without one, the description stored in the folder: a wide user model's ARTIFACT_SIDECAR_FILE,
 * or the built-in model's own `model.json` (a wide built-in model, or a run of an older pipeline
 * revision whose body does not pass the artifact on). Undefined for a legacy JSON model.
 */
export async function describeModel(store: FolderStore, ref: ModelRef): Promise<ModelArtifact | undefined> {
  if (ref.artifact) return ref.artifact;
  if (!isModelFolderUri(ref.uri)) return undefined;
  return describeFolder(await openModelFolder(store, ref.uri, ref.digest), ref.uri);
}

/** {@link describeModel} of a folder already opened. */
async function describeFolder(folder: StoredModelFolder, uri: string): Promise<ModelArtifact> {
  if (folder.has(ARTIFACT_SIDECAR_FILE)) {
    // A wide user model: its description was stored in the folder (verified with it) instead.
    const parsed = modelArtifactSchema.safeParse(
      JSON.parse((await folder.read(ARTIFACT_SIDECAR_FILE)).toString('utf8')),
    );
    if (!parsed.success) {
      throw new NonRetriableError('invalid_model', `${uri} has a malformed ${ARTIFACT_SIDECAR_FILE}`);
    }
    return parsed.data;
  }
  if (!folder.has(BUILT_IN_JSON_FILE)) {
    throw new NonRetriableError(
      'invalid_model',
      `${uri} is a model folder that came without its description, and not a built-in model's`,
    );
  }
  return builtInModelFolder(await folder.read(BUILT_IN_JSON_FILE)).artifact;
}

/**
 * Opens the model `ref` names, verified against its digest: a legacy JSON through
 * `loadVerifiedModel`, a folder through `openModelFolder` (manifest and every file read checked).
 */
export async function loadScorer(deps: ScorerDeps, ref: ModelRef): Promise<Scorer> {
  if (!isModelFolderUri(ref.uri)) {
    const { data } = await deps.store.getBuffer(ref.uri, { sha256: ref.digest });
    return jsonScorer(loadVerifiedModel(data, ref.digest), ref.digest);
  }
  // Opened once: the description (when it did not come with the ref) is read from the same folder.
  const folder = await openModelFolder(deps.store, ref.uri, ref.digest);
  const artifact = ref.artifact ?? (await describeFolder(folder, ref.uri));
  const common = {
    digest: ref.digest,
    task: artifact.task,
    target: artifact.target,
    ...(artifact.classes ? { classes: artifact.classes } : {}),
    features: artifact.features,
  };
  if (artifact.task === 'classification' && !artifact.classes) {
    throw new NonRetriableError('invalid_model', `the classifier ${ref.uri} names no classes`);
  }
  if (artifact.flavor === 'python_function') {
    const scoreCommand = deps.pythonFunction;
    const byCommand = async (ds: ColumnarDataset): Promise<ModelScores> => {
      if (!scoreCommand) {
        throw new NonRetriableError(
          'score_command_required',
          `model ${ref.digest} has no ONNX flavor (python_function only); it is scored by the pipeline's score command, and none was given`,
        );
      }
      return toModelScores(await scoreCommand({ folder, artifact, ds }), ds.rowCount, artifact.classes);
    };
    return {
      kind: 'python_function',
      ...common,
      scoreDataset: byCommand,
      scoreRows: (rows) =>
        byCommand(
          datasetFromRecords(
            rows,
            Object.fromEntries(
              artifact.features.map((f) => [f.name, f.kind === 'number' ? 'numeric' : 'categorical']),
            ),
          ),
        ),
    };
  }
  const onnxPath = artifact.onnxPath;
  if (!onnxPath || !folder.has(onnxPath)) {
    throw new NonRetriableError(
      'invalid_model',
      `the model folder ${ref.uri} has no ONNX file ${onnxPath ?? '(none named)'}`,
    );
  }
  const mlmodel = (await folder.read('MLmodel')).toString('utf8');
  parseMLmodel(mlmodel);
  const definition = await builtInDefinition(folder, mlmodel);
  const source = {
    digest: ref.digest,
    load: () => folder.read(onnxPath),
    features: artifact.features,
    task: artifact.task,
    ...(artifact.classes ? { classes: artifact.classes } : {}),
  };
  // Loaded now, so a model onnxruntime refuses fails here rather than on its first rows.
  await deps.onnx.model(source);
  const scoreRows = async (rows: readonly Record<string, unknown>[]): Promise<ModelScores> =>
    toModelScores(await deps.onnx.score(source, rows), rows.length, artifact.classes);
  return {
    kind: 'onnx',
    ...common,
    ...(definition ? { definition } : {}),
    scoreDataset: async (ds) =>
      toModelScores(
        await deps.onnx.scoreColumns(source, columnsOfDataset(ds, artifact.features), ds.rowCount),
        ds.rowCount,
        artifact.classes,
      ),
    scoreRows,
  };
}
