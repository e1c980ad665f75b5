import { getConfig } from '../config';
import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
} from '../contracts/pipeline';
import { modelNameOf } from '../pipelines/definition';
import { getRunDeps } from '../runs/deps';
import type { ArtifactStore } from '../storage/blob';
import { getArtifactStore } from '../storage/blob';
import { getTrainingDeps } from '../training/deps';
import type { DatasetContract } from '../contracts/datasetContract';
import type { BlobDigest } from './datasets';
import type { IngestLimits } from './limits';
import { limitsFromConfig } from './limits';

/** What the data activities and the dataset endpoints need; injected in tests. */
export interface DataDeps {
  store: ArtifactStore;
  limits: IngestLimits;
  /** The dataset contract of a stored pipeline version (undefined when there is no such pipeline). */
  contractOf(pipeline: string, version?: number): Promise<DatasetContract | undefined>;
  /**
   * The columnar dataset the pipeline's production model was trained on (the drift reference), as
   * recorded on its registry version; undefined before a first deployment. Runs get it from the
   * resolveReference activity; the dataset check asks here.
   */
  productionReference?(pipeline: string): Promise<{ columnar: BlobDigest } | undefined>;
}

let deps: Promise<DataDeps> | undefined;

/** Built once per process from the app settings. */
export function getDataDeps(): Promise<DataDeps> {
  deps ??= (async (): Promise<DataDeps> => {
    const config = getConfig();
    const store = getArtifactStore(config);
    if (config.ARTIFACT_STORAGE_CONNECTION) await store.ensureContainers();
    return {
      store,
      limits: limitsFromConfig(config),
      contractOf: async (name, version) =>
        (await (await getRunDeps(config)).pipelines.get(name, version))?.definition.dataset,
      productionReference: async (name) => {
        const stored = await (await getRunDeps(config)).pipelines.get(name);
        const modelName = stored ? modelNameOf(stored.definition) : name;
        const production = await (
          await getTrainingDeps(config)
        ).registry.resolveAlias(modelName, 'production');
        const uri = production?.tags[DATASET_COLUMNAR_URI_TAG];
        const sha256 = production?.tags[DATASET_COLUMNAR_SHA256_TAG];
        if (!uri || !sha256) return undefined;
        return {
          columnar: { uri, sha256, bytes: Number(production.tags[DATASET_COLUMNAR_BYTES_TAG] ?? '0') },
        };
      },
    };
  })().catch((err: unknown) => {
    deps = undefined;
    throw err;
  });
  return deps;
}
