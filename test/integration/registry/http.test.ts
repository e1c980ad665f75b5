import { HttpRequest } from '@azure/functions';
import { createGetModelHandler } from '../../../functions/getModel';
import { createListModelsHandler } from '../../../functions/listModels';
import { ModelRegistry } from '../../../lib/registry/registry';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startCosmos } from '../../support/emulators';

describe('GET /api/models and /api/models/{name} (Cosmos emulator)', () => {
  let cosmos: CosmosEmulator;
  let registry: ModelRegistry;
  const deps = async () => registry;

  beforeAll(async () => {
    cosmos = await startCosmos();
    registry = new ModelRegistry(await cosmosContainer(cosmos, 'models'));
    for (const d of ['a', 'b']) {
      await registry.registerVersion({
        modelName: 'churn',
        modelDigest: d.repeat(64),
        artifactUri: `http://127.0.0.1/models/sha256/${d.repeat(64)}`,
        datasetDigest: 'c'.repeat(64),
        metrics: { roc_auc: d === 'a' ? 0.81 : 0.84 },
        trainingSpec: { algorithm: 'logistic_regression' },
        algorithm: 'logistic_regression',
        runId: `run-${d}`,
      });
    }
    await registry.moveAlias({
      modelName: 'churn',
      alias: 'production',
      to: 1,
      by: 'ann@example.com',
      reason: 'first',
      approvalRef: 'appr-1',
    });
    await registry.moveAlias({
      modelName: 'churn',
      alias: 'production',
      to: 2,
      by: 'bob@example.com',
      reason: 'better',
      runId: 'run-b',
    });
  });
  afterAll(async () => {
    await cosmos?.stop();
  });

  const get = (url: string, params: Record<string, string> = {}) =>
    new HttpRequest({ url, method: 'GET', params });

  it('lists models with their aliases', async () => {
    const res = await createListModelsHandler(deps)(get('http://localhost/api/models'));
    expect(res.jsonBody).toEqual({
      models: [expect.objectContaining({ modelName: 'churn', latestVersion: 2, aliases: { production: 2 } })],
    });
  });

  it('shows versions, aliases and the alias history of a model', async () => {
    const res = await createGetModelHandler(deps)(
      get('http://localhost/api/models/churn', { name: 'churn' }),
    );
    const body = res.jsonBody as {
      versions: { version: number; modelDigest: string; metrics: Record<string, number>; runId: string }[];
      aliases: Record<string, { version: number; movedBy: string }>;
      aliasHistory: { from: number | null; to: number; by: string; reason: string; approvalRef?: string }[];
    };
    expect(body.versions.map((v) => [v.version, v.runId, v.metrics.roc_auc])).toEqual([
      [2, 'run-b', 0.84],
      [1, 'run-a', 0.81],
    ]);
    expect(body.aliases.production).toMatchObject({ version: 2, movedBy: 'bob@example.com' });
    expect(body.aliasHistory).toEqual([
      expect.objectContaining({
        from: null,
        to: 1,
        by: 'ann@example.com',
        reason: 'first',
        approvalRef: 'appr-1',
      }),
      expect.objectContaining({ from: 1, to: 2, by: 'bob@example.com', reason: 'better', runId: 'run-b' }),
    ]);
    expect(JSON.stringify(body)).not.toContain('_etag');
  });

  it('answers 404 as problem+json for an unknown or malformed name', async () => {
    for (const name of ['nope', '../etc']) {
      const res = await createGetModelHandler(deps)(
        get(`http://localhost/api/models/${encodeURIComponent(name)}`, { name }),
      );
      expect(res.status).toBe(404);
      expect(res.jsonBody).toMatchObject({ code: 'model_not_found', field: 'name' });
    }
  });
});
