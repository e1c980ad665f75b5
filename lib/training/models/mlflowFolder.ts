import { stringify as toYaml } from 'yaml';
import type { ModelArtifact } from '../../contracts/modelArtifact';
import type { ValueInfo } from '../../onnx/model';
import type { FolderFile } from '../../mlmodel/blobFolder';
import type { ModelJson } from './format';
import { onnxSignature, toOnnx } from './onnxExport';
import { loadModel } from './predict';

/**
 * A built-in model as an MLflow model folder, the same shape a user's job writes to SLUICE_OUTPUT,
 * so evaluation and predict score every model through one ONNX path:
 *
 * - `MLmodel`: an `onnx` flavor naming `model.onnx` (plus `python_function` through `mlflow.onnx`,
 *   so `mlflow.pyfunc.load_model` opens it too), a `sluice` flavor naming `model.json`, and the
 *   signature (one tensor per feature, the graph's outputs);
 * - `model.onnx`: {@link toOnnx} with float64 numeric inputs, so the ONNX scores equal the TS predict
 *   within 1e-6 on any data (docs/training.md, "Built-in models as ONNX");
 * - `model.json`: the Sluice model document, kept for explanations and as the legacy reader's input.
 */
export const BUILT_IN_ONNX_FILE = 'model.onnx';
export const BUILT_IN_JSON_FILE = 'model.json';

/** MLflow's tensor-spec dtype of an ONNX element type. */
const dtypeOf = (t: ValueInfo['type']): string =>
  t === 'double' ? 'float64' : t === 'float' ? 'float32' : t === 'int64' ? 'int64' : 'str';

/** The MLflow signature part (a JSON string in MLmodel) of the graph's inputs or outputs. */
const signaturePart = (values: readonly ValueInfo[]): string =>
  JSON.stringify(
    values.map((v) => ({
      type: 'tensor',
      'tensor-spec': {
        dtype: dtypeOf(v.type),
        shape: v.shape.map((d) => (typeof d === 'number' ? d : -1)),
      },
      name: v.name,
    })),
  );

/** The MLmodel text of a built-in model. Deterministic (no timestamps, no run id). */
export function builtInMLmodel(model: ModelJson): string {
  const signature = onnxSignature(model, { numericInputs: 'double' });
  return toYaml({
    artifact_path: 'model',
    flavors: {
      onnx: { data: BUILT_IN_ONNX_FILE, providers: ['CPUExecutionProvider'] },
      python_function: { loader_module: 'mlflow.onnx', data: BUILT_IN_ONNX_FILE, env: null },
      sluice: {
        data: BUILT_IN_JSON_FILE,
        format: model.format,
        format_version: model.formatVersion,
        algorithm: model.algorithm,
        task: model.task,
      },
    },
    signature: { inputs: signaturePart(signature.inputs), outputs: signaturePart(signature.outputs) },
  });
}

export interface BuiltInModelFolder {
  files: FolderFile[];
  /** What the job result, the evaluate and register inputs and the registry version carry. */
  artifact: ModelArtifact;
}

/**
 * The folder files of a built-in model and what Sluice records of them. `json` is the model
 * document's exact bytes (the worker's serialization), kept as they are in `model.json`.
 */
export function builtInModelFolder(json: Uint8Array): BuiltInModelFolder {
  const model = loadModel(JSON.parse(Buffer.from(json).toString('utf8'))).definition;
  const files: FolderFile[] = [
    { path: 'MLmodel', bytes: Buffer.from(builtInMLmodel(model), 'utf8') },
    { path: BUILT_IN_ONNX_FILE, bytes: toOnnx(model, { numericInputs: 'double' }) },
    { path: BUILT_IN_JSON_FILE, bytes: json },
  ];
  const classes = model.target.classes;
  return {
    files,
    artifact: {
      format: 'mlflow',
      flavor: 'onnx',
      onnxPath: BUILT_IN_ONNX_FILE,
      task: classes ? 'classification' : 'regression',
      target: model.target.name,
      features: model.features.map((f) => ({
        name: f.name,
        kind: f.type === 'numeric' ? ('number' as const) : ('string' as const),
      })),
      ...(classes ? { classes: [...classes] } : {}),
      inputLayout: 'per-feature',
      files: files.length,
      bytes: files.reduce((s, f) => s + f.bytes.byteLength, 0),
    },
  };
}

/**
 * Activity payloads stay under 16 KB, and the artifact lists every feature (about 48 bytes each):
 * past this size the job result leaves it out, and evaluation, registration and predict describe
 * the folder from its model.json instead (lib/scoring `describeModel`).
 */
export const MAX_INLINE_ARTIFACT_BYTES = 4096;

/** The artifact to put on the job result, or undefined when it is too big to travel (see above). */
export function inlineArtifact(artifact: ModelArtifact): ModelArtifact | undefined {
  return JSON.stringify(artifact).length <= MAX_INLINE_ARTIFACT_BYTES ? artifact : undefined;
}
