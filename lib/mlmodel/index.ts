/**
 * MLflow model folders (what a training job writes to SLUICE_OUTPUT) and ONNX scoring: the checks
 * run before anything is registered, the folder's manifest and digest, and sessions cached by digest.
 */
export type { CheckedModelFolder, ModelFolderExpectation } from './check';
export { checkModelFolder, checkPredictions } from './check';
export type { FolderLimits, ManifestEntry } from './folder';
export { defaultMaxFiles, defaultModelMaxBytes, manifestDigest, readManifest } from './folder';
export type { MLmodelInfo } from './mlmodelFile';
export { parseMLmodel } from './mlmodelFile';
export type { FeatureSpec, ModelTask, OnnxInterface, OnnxModelOptions, Scores } from './onnxModel';
export { matchInputs, matchOutputs, OnnxModel } from './onnxModel';
export type { OnnxModelSource, OnnxModelsOptions } from './onnxModels';
export { OnnxModels } from './onnxModels';
