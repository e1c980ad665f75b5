import { overridesOfRuns } from '../../../lib/console/overrides';
import { ModelRegistry } from '../../../lib/registry/registry';
import type { CosmosStore } from '../../../lib/storage/cosmos';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosStoreOn, startCosmos } from '../../support/emulators';

// The runs list's override marks come from one query on the registry's `models` container:
// marked versions whose run is on the page. On the Cosmos emulator, across two models.

let emulator: CosmosEmulator;
let cosmos: CosmosStore;

beforeAll(async () => {
  emulator = await startCosmos();
  cosmos = cosmosStoreOn(emulator);
  await cosmos.ensure();
}, 60_000);
afterAll(async () => {
  cosmos?.client.dispose();
  await emulator?.stop();
});

it('finds the marked versions of the given runs, and nothing for unmarked or other runs', async () => {
  const registry = new ModelRegistry(cosmos.container('models'));
  const register = (modelName: string, n: number) =>
    registry.registerVersion({
      modelName,
      modelDigest: String(n).repeat(64),
      artifactUri: `models/${modelName}/${n}.json`,
      datasetDigest: 'd'.repeat(64),
      metrics: {},
      trainingSpec: {},
      algorithm: 'linear',
      runId: `run-${modelName}-${n}`,
      tags: { pipeline: modelName },
    });
  await register('alpha', 1);
  await register('alpha', 2);
  await register('beta', 3);
  const mark = (moveSeq: number) => ({
    at: `2026-12-05T0${moveSeq}:00:00.000Z`,
    by: 'master key',
    reason: 'outage',
    moveSeq,
    review: 'required' as const,
    reviewApprovalId: `override-x-${moveSeq}:approval`,
    reviewRunId: `override-x-${moveSeq}`,
    reviewDue: '2026-12-06T00:00:00.000Z',
  });
  await registry.setOverrideMark('alpha', 2, () => mark(1));
  await registry.setOverrideMark('beta', 1, () => ({ ...mark(2), review: 'reviewed' }));

  const found = await overridesOfRuns(cosmos.container('models'), [
    'run-alpha-1',
    'run-alpha-2',
    'run-beta-3',
    'run-nobody',
  ]);
  expect([...found.keys()].sort()).toEqual(['run-alpha-2', 'run-beta-3']);
  expect(found.get('run-alpha-2')).toMatchObject({
    modelName: 'alpha',
    version: 2,
    override: { review: 'required' },
  });
  expect(found.get('run-beta-3')).toMatchObject({
    modelName: 'beta',
    version: 1,
    override: { review: 'reviewed' },
  });
  expect((await overridesOfRuns(cosmos.container('models'), ['run-alpha-1'])).size).toBe(0);
  expect((await overridesOfRuns(cosmos.container('models'), [])).size).toBe(0);
}, 60_000);
