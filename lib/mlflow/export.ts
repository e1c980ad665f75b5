import { ValidationError } from '../errors';
import { ARTIFACT_SIDECAR_FILE, isModelFolderUri, openModelFolder } from '../mlmodel/blobFolder';
import type { ModelVersion } from '../registry/records';
import type { ArtifactStore } from '../storage/blob';
import { builtInModelFolder } from '../training/models/mlflowFolder';
import type { ZipFile } from './zip';

/** A registry version as an MLflow model folder, opened and checked, ready to stream. */
export interface ExportedFolder {
  /** The version's digest (the folder's manifest digest, or the legacy JSON's SHA-256). */
  digest: string;
  /** `stored`: the folder as registered; `converted`: a legacy JSON model exported to ONNX now. */
  origin: 'stored' | 'converted';
  paths: string[];
  /** The files in path order, each verified against the manifest as it is read. */
  files(): AsyncGenerator<ZipFile>;
}

/**
 * Opens a model version as the MLflow model folder `mlflow.pyfunc` / `mlflow.onnx` and Azure ML
 * load (docs/mlflow.md): a stored folder through its manifest (refused unless it hashes to the
 * version's digest; each file verified when read), without Sluice's own sidecar file. A version
 * stored as a legacy JSON model (before folders) is read verified and converted by the built-in
 * ONNX export; a model the export cannot convert is a 409 `mlflow_export_unavailable` naming why.
 * Everything that can fail before the first file is checked here, before a byte is sent.
 */
export async function openExportFolder(
  store: Pick<ArtifactStore, 'getBuffer' | 'put' | 'uri' | 'parseUri'>,
  version: ModelVersion,
): Promise<ExportedFolder> {
  if (version.artifact || isModelFolderUri(version.artifactUri)) {
    const folder = await openModelFolder(store, version.artifactUri, version.modelDigest);
    const paths = folder.manifest.map((f) => f.path).filter((p) => p !== ARTIFACT_SIDECAR_FILE);
    return {
      digest: version.modelDigest,
      origin: 'stored',
      paths,
      async *files() {
        for (const path of paths) yield { path, bytes: await folder.read(path) };
      },
    };
  }
  const { data } = await store.getBuffer(version.artifactUri, { sha256: version.modelDigest });
  let converted;
  try {
    converted = builtInModelFolder(data);
  } catch (err) {
    throw new ValidationError(
      'mlflow_export_unavailable',
      `version ${version.version} of ${version.modelName} is a ${version.algorithm} model stored as JSON that the ONNX export cannot convert: ${(err as Error).message}`,
      { status: 409 },
    );
  }
  const files = converted.files.map((f) => ({ path: f.path, bytes: f.bytes }));
  return {
    digest: version.modelDigest,
    origin: 'converted',
    paths: files.map((f) => f.path),
    async *files() {
      yield* files;
    },
  };
}
