/**
 * The production alias copied to MLflow on the Cosmos emulator and the fake MLflow server, through
 * the mirror timer: a deployment's move copied, a rollback copied back, an alias moved by hand in
 * MLflow reported as diverged on the model (GET /api/models/{name}) and left where it is, a version
 * not yet in MLflow shown pending, an outage reported without failing the tick.
 */
import type { HttpRequest, InvocationContext, Timer } from '@azure/functions';
import { startCosmosEmulator } from '../../../devhost/services/cosmos';
import { createGetModelHandler } from '../../../functions/getModel';
import { mirrorMlflow } from '../../../functions/mirrorMlflow';
import { AnchorStore } from '../../../lib/audit/anchors';
import { loadConfig } from '../../../lib/config';
import { MLFLOW_ALIAS_SEQ_TAG, MLFLOW_STATUS_TAG, syncAliases } from '../../../lib/mlflow/aliases';
import { newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { memoryLog } from '../../devhost/servicesLog';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';
import { FakeMlflow } from '../../support/fakes/mlflow';

jest.setTimeout(60_000);

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

describe('the MLflow production alias', () => {
  let emulator: { endpoint: string; key: string; stop(): Promise<void> };
  let fake: FakeMlflow;
  // Moving Sluice's alias writes the audit log's anchors to Blob Storage.
  let azurite: BlobEmulator;
  let services: Services;
  const warnings: string[] = [];
  const ctx = () =>
    ({ log: () => undefined, warn: (m: string) => void warnings.push(m) }) as unknown as InvocationContext;
  const tick = () => mirrorMlflow(services)({ isPastDue: false } as Timer, ctx());
  const tags = async () => (await services.registry.getHead('churn'))!.tags;
  const mlflowAlias = () => fake.models.get('churn')!.aliases.get('champion');

  /** A Sluice version whose deploy run was mirrored as MLflow version `mlflowVersion` (or not yet). */
  async function version(n: number, mlflowVersion?: string) {
    await services.registry.registerVersion({
      modelName: 'churn',
      modelDigest: String(n).repeat(64),
      artifactUri: `https://acct.blob.core.windows.net/models/m${n}.json`,
      datasetDigest: 'd'.repeat(64),
      metrics: {},
      trainingSpec: {},
      algorithm: 'ridge',
      runId: `run-${n}`,
      tags: { pipeline: 'churn' },
    });
    const doc = newRunDocument({
      id: `run-${n}`,
      pipeline: 'churn',
      pipelineVersion: 1,
      instanceId: `run-${n}`,
      trigger: { kind: 'cli', by: 'ana@contoso.com' },
      source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/datasets/churn.csv' },
      at: new Date(T0).toISOString(),
    });
    await services.runs.create(
      mlflowVersion
        ? {
            ...doc,
            mlflow: {
              status: 'synced',
              done: [],
              attempts: 0,
              model: { name: 'churn', version: mlflowVersion, alias: 'champion' },
            },
          }
        : doc,
    );
    if (mlflowVersion) fake.models.get('churn')!.versions.push({ name: 'churn', version: mlflowVersion });
  }
  const production = (to: number) =>
    services.registry.moveAlias({ modelName: 'churn', alias: 'production', to, by: 'ops@contoso.com' });

  beforeAll(async () => {
    emulator = await startCosmosEmulator({ location: null, log: memoryLog() });
    fake = await new FakeMlflow().start();
    azurite = await startAzuriteBlob();
    services = await createServices(
      loadConfig({
        COSMOS_ENDPOINT: emulator.endpoint,
        COSMOS_KEY: emulator.key,
        ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
        PUBLIC_BASE_URL: 'https://sluice.example.com',
        MLFLOW_TRACKING_URI: fake.url,
        MLFLOW_PRODUCTION_ALIAS: 'champion',
      }),
      { prepare: false, mlflow: { maxAttempts: 2, sleep: async () => undefined } },
    );
    await services.cosmos.ensure();
    await services.artifacts.ensureContainers();
    await new AnchorStore(services.artifacts).ensure();
    fake.models.set('churn', { name: 'churn', versions: [], aliases: new Map() });
    await version(1, '1');
    await version(2, '2');
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await fake?.stop();
    await emulator?.stop();
    await azurite?.stop();
  });

  it('copies a deployment, then only reads while nothing moves', async () => {
    await production(2);
    await tick();
    expect(mlflowAlias()).toBe('2');
    expect(await tags()).toMatchObject({
      [MLFLOW_STATUS_TAG]: 'in sync (alias champion on v2 = Sluice v2)',
      [MLFLOW_ALIAS_SEQ_TAG]: '1',
    });
    fake.calls.length = 0;
    await tick();
    expect(fake.okCalls().filter((c) => c.includes('registered-models/alias'))).toEqual([
      'GET registered-models/alias',
    ]);
  });

  it('copies a rollback back to the older version', async () => {
    await production(1);
    await tick();
    expect(mlflowAlias()).toBe('1');
    expect(await tags()).toMatchObject({
      [MLFLOW_STATUS_TAG]: 'in sync (alias champion on v1 = Sluice v1)',
      [MLFLOW_ALIAS_SEQ_TAG]: '2',
    });
  });

  it('reports an alias moved by hand in MLflow as diverged, on the model, and never follows or resets it', async () => {
    fake.models.get('churn')!.aliases.set('champion', '2');
    await tick();
    await tick();
    expect(mlflowAlias()).toBe('2');
    expect((await services.registry.getHead('churn'))!.aliases.production!.version).toBe(1);
    const res = await createGetModelHandler(async () => services.registry)({
      params: { name: 'churn' },
    } as unknown as HttpRequest);
    expect((res.jsonBody as { tags: Record<string, string> }).tags[MLFLOW_STATUS_TAG]).toBe(
      'diverged (alias on v2, Sluice production v1 = MLflow v1)',
    );
    expect(warnings.some((w) => w.includes('churn diverged'))).toBe(true);
    // The next Sluice move ends the divergence: it is copied as any move is.
    await production(2);
    await tick();
    expect(await tags()).toMatchObject({ [MLFLOW_STATUS_TAG]: 'in sync (alias champion on v2 = Sluice v2)' });
    fake.models.get('churn')!.aliases.delete('champion');
    await tick();
    expect((await tags())[MLFLOW_STATUS_TAG]).toBe(
      'diverged (alias champion removed, Sluice production v2 = MLflow v2)',
    );
  });

  it('shows pending while the deployed version is not in MLflow yet, and copies it once it is', async () => {
    await version(3);
    await production(3);
    await tick();
    expect((await tags())[MLFLOW_STATUS_TAG]).toBe(
      'pending (Sluice production v3 is not in the MLflow registry yet)',
    );
    expect(mlflowAlias()).toBeUndefined();
    await services.runs.update('churn', 'run-3', (r) => ({
      ...r,
      mlflow: { status: 'synced', done: [], attempts: 0, model: { name: 'churn', version: '3' } },
    }));
    fake.models.get('churn')!.versions.push({ name: 'churn', version: '3' });
    await tick();
    expect(mlflowAlias()).toBe('3');
  });

  it('reports an outage for the model and does not fail the tick', async () => {
    fake.down = true;
    try {
      const out = await syncAliases({
        registry: services.registry,
        runs: services.runs,
        mlflow: services.mlflow!.registry,
        alias: 'champion',
      });
      expect(out).toEqual([
        {
          model: 'churn',
          state: 'failed',
          status: expect.stringMatching(/^unavailable: mlflow_unavailable/),
        },
      ]);
      await expect(tick()).resolves.toBeUndefined();
    } finally {
      fake.down = false;
    }
  });
});
