import type { z } from 'zod';
import { resolveReferenceActivity } from '../lib/contracts/pipeline';
import { PRODUCTION_ALIAS, columnarReferenceOf } from '../lib/registry/records';
import type { ModelRegistry } from '../lib/registry/registry';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof resolveReferenceActivity.input>;
type Output = z.input<typeof resolveReferenceActivity.output>;

/**
 * Finds the production model and the columnar dataset it was trained on (the drift reference).
 * Reads only: a retry answers the same while production has not moved.
 */
export function resolveReference(deps: { registry: Pick<ModelRegistry, 'resolveAlias'> }) {
  return async ({ modelName }: Input): Promise<Output> => {
    const production = await deps.registry.resolveAlias(modelName, PRODUCTION_ALIAS);
    if (!production) return {};
    const reference = columnarReferenceOf(production.tags);
    return {
      production: { version: production.version, modelDigest: production.modelDigest },
      ...(reference ? { reference } : {}),
    };
  };
}

registerActivityFactory(resolveReferenceActivity, (services) => resolveReference(services));
