import type { Container } from '@azure/cosmos';
import { ModelRegistry } from '../../../lib/registry/registry';
import type { RegisterVersionInput } from '../../../lib/registry/records';
import { loadVerifiedModel, serializeModel } from '../../../lib/training/models/artifact';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification } from '../../../lib/training/synthetic';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startCosmos } from '../../support/emulators';

const hex = (c: string) => c.repeat(64);

describe('model registry on the Cosmos emulator', () => {
  let cosmos: CosmosEmulator;
  let container: Container;
  let registry: ModelRegistry;
  let tick = 0;
  const clock = () => new Date(Date.UTC(2026, 0, 1, 0, 0, tick++));

  beforeAll(async () => {
    cosmos = await startCosmos();
    container = await cosmosContainer(cosmos, 'models');
    registry = new ModelRegistry(container, clock);
  });
  afterAll(async () => {
    await cosmos?.stop();
  });

  const version = (modelName: string, digest: string, runId = `run-${digest}`): RegisterVersionInput => ({
    modelName,
    modelDigest: hex(digest),
    artifactUri: `models/${modelName}/${hex(digest)}.json`,
    datasetDigest: hex('d'),
    metrics: { roc_auc: 0.8, log_loss: null },
    trainingSpec: { algorithm: 'logistic_regression' },
    algorithm: 'logistic_regression',
    runId,
  });

  it('numbers versions and returns the same version for the same digest', async () => {
    const a = await registry.registerVersion(version('churn', 'a'));
    const b = await registry.registerVersion(version('churn', 'b'));
    const again = await registry.registerVersion(version('churn', 'a', 'run-retry'));
    expect([a.version.version, b.version.version]).toEqual([1, 2]);
    expect(a.created && b.created).toBe(true);
    expect(again).toEqual({ version: a.version, created: false });
    expect((await registry.getHead('churn'))!.latestVersion).toBe(2);
    expect((await registry.getVersion('churn', 2))!.modelDigest).toBe(hex('b'));
  });

  it('gives concurrent registrations distinct version numbers', async () => {
    const results = await Promise.all(
      ['1', '2', '3', '4', '5'].map((d) => registry.registerVersion(version('race', d))),
    );
    expect(results.map((r) => r.version.version).sort()).toEqual([1, 2, 3, 4, 5]);
    const detail = await registry.getModel('race');
    expect(detail!.versions.map((v) => v.version)).toEqual([5, 4, 3, 2, 1]);
  });

  it('moves aliases and appends every move to the history', async () => {
    await registry.registerVersion(version('fraud', 'a'));
    await registry.registerVersion(version('fraud', 'b'));
    const m1 = await registry.moveAlias({
      modelName: 'fraud',
      alias: 'production',
      to: 1,
      by: 'alice@example.com',
      reason: 'first model',
      runId: 'run-1',
      approvalRef: 'approval-1',
    });
    const m2 = await registry.moveAlias({ modelName: 'fraud', alias: 'staging', to: 2, by: 'pipeline' });
    const m3 = await registry.moveAlias({
      modelName: 'fraud',
      alias: 'production',
      to: 2,
      expectedFrom: 1,
      by: 'bob@example.com',
      reason: 'better AUC',
      runId: 'run-2',
      approvalRef: 'approval-2',
    });
    expect([m1.moved, m2.moved, m3.moved]).toEqual([true, true, true]);
    expect((await registry.resolveAlias('fraud', 'production'))!.version).toBe(2);
    const detail = (await registry.getModel('fraud'))!;
    expect(detail.head.aliases.production).toMatchObject({ version: 2, movedBy: 'bob@example.com' });
    expect(detail.aliasHistory.map((h) => [h.seq, h.alias, h.from, h.to, h.by])).toEqual([
      [1, 'production', null, 1, 'alice@example.com'],
      [2, 'staging', null, 2, 'pipeline'],
      [3, 'production', 1, 2, 'bob@example.com'],
    ]);
    expect(detail.aliasHistory[2]).toMatchObject({
      reason: 'better AUC',
      runId: 'run-2',
      approvalRef: 'approval-2',
    });

    // repeating a move already in place changes nothing (a retried deploy activity)
    const repeat = await registry.moveAlias({
      modelName: 'fraud',
      alias: 'production',
      to: 2,
      by: 'bob@example.com',
      runId: 'run-2',
    });
    expect(repeat.moved).toBe(false);
    expect(repeat.move!.seq).toBe(3);
    // removing an alias is a move to null, also recorded
    await registry.moveAlias({
      modelName: 'fraud',
      alias: 'staging',
      to: null,
      by: 'pipeline',
      reason: 'cleanup',
    });
    const after = (await registry.getModel('fraud'))!;
    expect(after.head.aliases.staging).toBeUndefined();
    expect(after.aliasHistory.at(-1)).toMatchObject({ alias: 'staging', from: 2, to: null });
  });

  it('lets exactly one of two concurrent moves of an alias win, every time', async () => {
    for (const d of ['a', 'b', 'c']) await registry.registerVersion(version('duel', d));
    await registry.moveAlias({ modelName: 'duel', alias: 'production', to: 1, by: 'setup' });
    let current = 1;
    for (let trial = 0; trial < 25; trial++) {
      const [x, y] = current === 1 ? [2, 3] : current === 2 ? [3, 1] : [1, 2];
      const outcomes = await Promise.allSettled([
        registry.moveAlias({ modelName: 'duel', alias: 'production', to: x, by: 'x' }),
        registry.moveAlias({ modelName: 'duel', alias: 'production', to: y, by: 'y' }),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o) => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({
        code: 'alias_conflict',
        status: 409,
      });
      current = (await registry.getHead('duel'))!.aliases.production!.version;
      expect(current).toBe(outcomes[0]!.status === 'fulfilled' ? x : y);
    }
    const history = (await registry.getModel('duel'))!.aliasHistory;
    expect(history).toHaveLength(26);
    // the history is a chain: each move starts where the previous one ended
    for (let i = 1; i < history.length; i++) expect(history[i]!.from).toBe(history[i - 1]!.to);
  });

  it('refuses a move based on a stale view, unknown versions and unknown models', async () => {
    await registry.registerVersion(version('stale', 'a'));
    await registry.registerVersion(version('stale', 'b'));
    await registry.moveAlias({ modelName: 'stale', alias: 'production', to: 2, by: 'x' });
    await expect(
      registry.moveAlias({ modelName: 'stale', alias: 'production', to: 1, expectedFrom: null, by: 'y' }),
    ).rejects.toMatchObject({ code: 'alias_conflict' });
    await expect(
      registry.moveAlias({ modelName: 'stale', alias: 'production', to: 9, by: 'y' }),
    ).rejects.toMatchObject({ code: 'version_not_found', status: 404 });
    await expect(
      registry.moveAlias({ modelName: 'nope', alias: 'production', to: 1, by: 'y' }),
    ).rejects.toMatchObject({ code: 'model_not_found' });
    await expect(
      registry.moveAlias({ modelName: 'stale', alias: 'Prod!', to: 1, by: 'y' }),
    ).rejects.toThrow();
  });

  it('keeps tags on the model and on versions', async () => {
    await registry.registerVersion({ ...version('tagged', 'a'), tags: { owner: 'risk' } });
    await registry.setTags('tagged', { team: 'ml', owner: 'fraud' });
    await registry.setTags('tagged', { reviewed: 'yes', owner: '' }, 1);
    expect((await registry.getHead('tagged'))!.tags).toEqual({ team: 'ml', owner: 'fraud' });
    expect((await registry.getVersion('tagged', 1))!.tags).toEqual({ reviewed: 'yes' });
  });

  it('lists models with their aliases', async () => {
    const list = await registry.listModels();
    const fraud = list.find((m) => m.modelName === 'fraud');
    expect(fraud).toMatchObject({ latestVersion: 2, aliases: { production: 2 } });
    expect(list.map((m) => m.modelName)).toEqual([...list.map((m) => m.modelName)].sort());
  });

  it('refuses a model artifact whose bytes do not match the registered digest', async () => {
    const ds = syntheticClassification({ rows: 500, features: 3, seed: 1 });
    const trained = trainModel(
      ds,
      parseTrainingSpec({ algorithm: 'logistic_regression', target: 'label', features: ['x0', 'x1', 'x2'] }),
    );
    const { bytes, digest } = serializeModel(trained.model);
    const { version: v } = await registry.registerVersion({
      ...version('verified', 'a'),
      modelDigest: digest,
    });
    expect(loadVerifiedModel(bytes, v.modelDigest).classes).toEqual(['no', 'yes']);
    const tampered = Buffer.from(
      bytes.toString('utf8').replace('"intercepts":[', '"intercepts":[1e3+'),
      'utf8',
    );
    expect(() => loadVerifiedModel(tampered, v.modelDigest)).toThrow(
      expect.objectContaining({ code: 'model_digest_mismatch' }),
    );
  });
});
