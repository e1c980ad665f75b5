import type { Config } from '../config';
import { getConfig } from '../config';
import { ModelRegistry } from '../registry/registry';
import { getArtifactStore, getCosmos } from '../storage';
import { ProductionModels } from './production';

let models: Promise<ProductionModels> | undefined;

/** The process-wide production model cache of the scoring endpoint. */
export function getProductionModels(config?: Config): Promise<ProductionModels> {
  models ??= (async () => {
    const c = config ?? getConfig();
    const cosmos = getCosmos(c);
    if (c.COSMOS_KEY) await cosmos.ensure();
    const artifacts = getArtifactStore(c);
    return new ProductionModels({
      registry: new ModelRegistry(cosmos.container('models')),
      readArtifact: async (uri) => (await artifacts.getBuffer(uri)).data,
      aliasTtlMs: c.SCORING_ALIAS_TTL_MS,
    });
  })().catch((err: unknown) => {
    models = undefined;
    throw err;
  });
  return models;
}

let registry: Promise<ModelRegistry> | undefined;
/** The registry for deployment and rollback. */
export function getRegistry(config?: Config): Promise<ModelRegistry> {
  registry ??= (async () => {
    const c = config ?? getConfig();
    const cosmos = getCosmos(c);
    if (c.COSMOS_KEY) await cosmos.ensure();
    return new ModelRegistry(cosmos.container('models'));
  })().catch((err: unknown) => {
    registry = undefined;
    throw err;
  });
  return registry;
}
