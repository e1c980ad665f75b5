import type { Config } from '../config';
import { getConfig } from '../config';
import { getCosmos } from '../storage/cosmos';
import { ModelRegistry } from './registry';

let registry: Promise<ModelRegistry> | undefined;

/** The process-wide model registry on the `models` container. */
export function getModelRegistry(config?: Config): Promise<ModelRegistry> {
  registry ??= (async () => {
    const c = config ?? getConfig();
    const cosmos = getCosmos(c);
    // The local emulator starts empty; in Azure, Bicep creates the database and containers.
    if (c.COSMOS_KEY) await cosmos.ensure();
    return new ModelRegistry(cosmos.container('models'));
  })().catch((err: unknown) => {
    registry = undefined;
    throw err;
  });
  return registry;
}
