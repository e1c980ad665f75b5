import type { z } from 'zod';
import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
  resolveReferenceActivity,
} from '../lib/contracts/pipeline';
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
    const production = await deps.registry.resolveAlias(modelName, 'production');
    if (!production) return {};
    const uri = production.tags[DATASET_COLUMNAR_URI_TAG];
    const sha256 = production.tags[DATASET_COLUMNAR_SHA256_TAG];
    const bytes = Number(production.tags[DATASET_COLUMNAR_BYTES_TAG] ?? '0');
    return {
      production: { version: production.version, modelDigest: production.modelDigest },
      ...(uri && sha256 ? { reference: { columnar: { uri, sha256, bytes } } } : {}),
    };
  };
}

registerActivityFactory(resolveReferenceActivity, (services) => resolveReference(services));
