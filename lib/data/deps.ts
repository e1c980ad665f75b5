import { getConfig } from '../config';
import { getRunDeps } from '../runs/deps';
import type { ArtifactStore } from '../storage/blob';
import { getArtifactStore } from '../storage/blob';
import type { DatasetContract } from './contract';
import type { IngestLimits } from './limits';
import { limitsFromConfig } from './limits';

/** What the data activities and the validate endpoint need; injected in tests. */
export interface DataDeps {
  store: ArtifactStore;
  limits: IngestLimits;
  /** The dataset contract of a stored pipeline version (undefined when there is no such pipeline). */
  contractOf(pipeline: string, version?: number): Promise<DatasetContract | undefined>;
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
    };
  })().catch((err: unknown) => {
    deps = undefined;
    throw err;
  });
  return deps;
}
