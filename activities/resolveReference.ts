import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
  resolveReferenceActivity,
} from '../lib/contracts/pipeline';
import { getTrainingDeps } from '../lib/training/deps';
import { registerActivity } from './support/define';

/** Finds the production model and the columnar dataset it was trained on (the drift reference). */
registerActivity(resolveReferenceActivity, async ({ modelName }) => {
  const { registry } = await getTrainingDeps();
  const production = await registry.resolveAlias(modelName, 'production');
  if (!production) return {};
  const uri = production.tags[DATASET_COLUMNAR_URI_TAG];
  const sha256 = production.tags[DATASET_COLUMNAR_SHA256_TAG];
  const bytes = Number(production.tags[DATASET_COLUMNAR_BYTES_TAG] ?? '0');
  return {
    production: { version: production.version, modelDigest: production.modelDigest },
    ...(uri && sha256 ? { reference: { columnar: { uri, sha256, bytes } } } : {}),
  };
});
