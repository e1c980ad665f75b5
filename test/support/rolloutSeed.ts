import type { ModelRegistry } from '../../lib/registry/registry';

const digest = (c: string) => c.repeat(64);

/**
 * A model with version 1 (digest `a…`) in production and version 2 (digest `b…`, dataset `d…`)
 * registered beside it: the starting point of a rollout of v2. Returns v2 as an approval candidate.
 */
export async function seedProductionAndCandidate(registry: ModelRegistry, model: string) {
  for (const [n, c] of [
    [1, 'a'],
    [2, 'b'],
  ] as const) {
    await registry.registerVersion({
      modelName: model,
      modelDigest: digest(c),
      artifactUri: `models/${model}/${n}.json`,
      datasetDigest: digest('d'),
      metrics: {},
      trainingSpec: {},
      algorithm: 'ridge',
      runId: `run-${n}`,
    });
  }
  await registry.moveAlias({ modelName: model, alias: 'production', to: 1, by: 'test' });
  return { modelName: model, modelVersion: 2, modelDigest: digest('b'), datasetDigest: digest('d') };
}
