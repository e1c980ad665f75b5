import { z } from 'zod';

/**
 * What Sluice knows of a model stored as an MLflow model folder (what a `sluice.job/v1` job writes to
 * SLUICE_OUTPUT, and what the built-in algorithms write too): enough to score it without opening it
 * first. It travels on the job result, the evaluate and register inputs and the registry version. A
 * model without it is a legacy Sluice JSON artifact (registry versions from before model folders).
 *
 * In Blob a folder is stored under `models/mlflow/<digest>/` with its manifest beside it at
 * `models/mlflow/<digest>.manifest.json`; `artifactUri` names the manifest, and the digest is
 * lib/mlmodel `manifestDigest` of it (approval binds to it). See lib/mlmodel/blobFolder.ts.
 */
export const modelFeatureSchema = z.object({
  name: z.string().min(1),
  /** How the model takes it: numbers (float inputs) or strings. */
  kind: z.enum(['number', 'string']),
});
export type ModelFeature = z.infer<typeof modelFeatureSchema>;

export const modelArtifactSchema = z.object({
  format: z.literal('mlflow'),
  /** `onnx`: scored by onnxruntime; `python_function` only: scored by the pipeline's `score` command. */
  flavor: z.enum(['onnx', 'python_function']),
  /** The ONNX file inside the folder (onnx flavor). */
  onnxPath: z.string().min(1).optional(),
  task: z.enum(['classification', 'regression']),
  target: z.string().min(1),
  /** In the order the model takes them (the job's SLUICE_FEATURES). */
  features: z.array(modelFeatureSchema).min(1),
  /** Classification: the class labels, in the order of the probability columns. */
  classes: z.array(z.string()).optional(),
  inputLayout: z.enum(['per-feature', 'tensor']).optional(),
  /** Files and total bytes of the folder. */
  files: z.number().int().min(1),
  bytes: z.number().int().min(0),
});
export type ModelArtifact = z.infer<typeof modelArtifactSchema>;
