import type { Config } from '../config';
import { getConfig } from '../config';
import { getModelRegistry } from '../registry/deps';
import { getArtifactStore } from '../storage';
import { ProductionModels } from './production';

let models: Promise<ProductionModels> | undefined;

/** The process-wide production model cache of the scoring endpoint. */
export function getProductionModels(config?: Config): Promise<ProductionModels> {
  models ??= (async () => {
    const c = config ?? getConfig();
    const artifacts = getArtifactStore(c);
    return new ProductionModels({
      registry: await getModelRegistry(c),
      readArtifact: async (uri) => (await artifacts.getBuffer(uri)).data,
      aliasTtlMs: c.SCORING_ALIAS_TTL_MS,
    });
  })().catch((err: unknown) => {
    models = undefined;
    throw err;
  });
  return models;
}

/** The registry for deployment and rollback: the process-wide one. */
export { getModelRegistry as getRegistry } from '../registry/deps';
