/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Unity Catalog switched on (MLFLOW_REGISTRY_URI=databricks-uc, MLFLOW_UC_SCHEMA=main.ml) on the
 * Cosmos emulator and the fake MLflow server as the Databricks workspace: a deployment's mirror ends
 * with a READY version under the three-level name, its files written to the version's storage with
 * the temporary SAS, and the alias set through the Unity Catalog endpoint; a rollback moves that
 * alias back; a hand-made move is read from Unity Catalog and reported, not followed. The model is
 * tagged with the Sluice name it mirrors, another Sluice name landing on it is refused on the run's
 * `mlflow` status, and the folder is exported once for both copies. Promote from Unity Catalog goes
 * through the same services (the resolve at start, the importModel activity).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { InvocationContext, Timer } from '@azure/functions';
import { startCosmosEmulator } from '../../../devhost/services/cosmos';
import { mirrorMlflow } from '../../../functions/mirrorMlflow';
import { AnchorStore } from '../../../lib/audit/anchors';
import { loadConfig } from '../../../lib/config';
import type { StepUpdate } from '../../../lib/contracts/runDocument';
import { MLFLOW_STATUS_TAG } from '../../../lib/mlflow/aliases';
import { mirrorRun } from '../../../lib/mlflow/mirror';
import type { ExportedFolder } from '../../../lib/mlflow/export';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import { applyStepUpdates, newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { importModelOf } from '../../../activities/importModel';
import { importModelActivity } from '../../../lib/contracts/mlflowCandidate';
import { readDataset } from '../../../lib/data/reading/readDataset';
import type { ValidationError } from '../../../lib/errors';
import { resolveMlflowCandidate } from '../../../lib/mlflow/promote';
import resources from '../../../lib/resources.json';
import { datasetFromTable } from '../../../lib/training/dataset';
import { builtInModelFolder } from '../../../lib/training/models/mlflowFolder';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { columnarBytes } from '../../support/datasets';
import { memoryLog } from '../../devhost/servicesLog';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';
import { FakeMlflow } from '../../support/fakes/mlflow';

jest.setTimeout(60_000);

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const MODEL = 'Wages-EU';
const UC_NAME = 'main.ml.wages_eu';
const wages = pipelineDefinitionSchema.parse(
  JSON.parse(readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8')),
);

/** The folder of Sluice version `n` as the export would give it. */
const folderOf = (n: number): ExportedFolder => {
  const files: Record<string, string> = {
    MLmodel: `flavors:\n  onnx:\n    onnx_version: 1.17.0\n    data: model.onnx\nsluice_version: ${n}\n`,
    'model.onnx': `onnx-bytes-of-v${n}`,
    'requirements.txt': 'onnxruntime\n',
  };
  return {
    digest: String(n).repeat(64),
    origin: 'stored',
    paths: Object.keys(files),
    async *files() {
      for (const [p, text] of Object.entries(files)) yield { path: p, bytes: Buffer.from(text) };
    },
  };
};

const deployed = (version: number, seq: number, modelName = MODEL): StepUpdate[] => [
  { step: 'approve', status: 'running', at: at(71) },
  {
    step: 'approve',
    status: 'succeeded',
    at: at(300),
    outputs: {
      approvalId: `ap-${version}`,
      outcome: 'approved',
      approvedBy: ['ana@contoso.com'],
      rejectedBy: [],
      escalated: false,
      decidedAt: at(300),
      reasons: [],
    },
  },
  { step: 'deploy', status: 'running', at: at(301) },
  {
    step: 'deploy',
    status: 'succeeded',
    at: at(302),
    outputs: {
      modelName,
      version,
      previous: version > 1 ? version - 1 : null,
      moved: true,
      aliasMoveSeq: seq,
      deployedAt: at(302),
      recordedOnRun: true,
    },
  },
];

describe('the MLflow mirror with Unity Catalog', () => {
  let emulator: { endpoint: string; key: string; stop(): Promise<void> };
  let fake: FakeMlflow;
  let azurite: BlobEmulator;
  let services: Services;
  const warnings: string[] = [];
  const ctx = () =>
    ({ log: () => undefined, warn: (m: string) => void warnings.push(m) }) as unknown as InvocationContext;
  const tick = () => mirrorMlflow(services)({ isPastDue: false } as Timer, ctx());
  const production = (to: number) =>
    services.registry.moveAlias({ modelName: MODEL, alias: 'production', to, by: 'ops@contoso.com' });
  const ucAlias = () => fake.models.get(UC_NAME)?.aliases.get('champion');

  async function deploy(n: number, modelName = MODEL) {
    const id = modelName === MODEL ? `run-${n}` : `run-other-${n}`;
    await services.registry.registerVersion({
      modelName,
      modelDigest: String(n).repeat(64),
      artifactUri: `https://acct.blob.core.windows.net/models/m${n}.json`,
      datasetDigest: 'd'.repeat(64),
      metrics: {},
      trainingSpec: {},
      algorithm: 'ridge',
      runId: id,
      tags: { pipeline: 'wages' },
    });
    const moved =
      modelName === MODEL
        ? await production(n)
        : await services.registry.moveAlias({ modelName, alias: 'production', to: n, by: 'ops@contoso.com' });
    await services.runs.create(
      newRunDocument({
        id,
        pipeline: 'wages',
        pipelineVersion: 1,
        instanceId: id,
        trigger: { kind: 'cli', by: 'ana@contoso.com' },
        source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/datasets/wages/raw.csv' },
        at: at(0),
      }),
    );
    await services.runs.update('wages', id, (r) =>
      applyStepUpdates(r, deployed(n, moved.move!.seq, modelName)),
    );
  }

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
        // The fake is both the tracking server and the workspace whose Unity Catalog is the registry.
        MLFLOW_TRACKING_URI: fake.url,
        DATABRICKS_HOST: fake.url,
        DATABRICKS_TOKEN: 'dapi-test',
        MLFLOW_REGISTRY_URI: 'databricks-uc',
        MLFLOW_UC_SCHEMA: 'main.ml',
        MLFLOW_PRODUCTION_ALIAS: 'champion',
      }),
      { prepare: false, mlflow: { maxAttempts: 2, sleep: async () => undefined } },
    );
    await services.cosmos.ensure();
    await services.artifacts.ensureContainers();
    await new AnchorStore(services.artifacts).ensure();
    await services.pipelines.put('wages', wages, 'test', new Date(T0));
    expect(services.mlflow!.unityCatalog).toEqual({ schema: 'main.ml' });
    // The fake's storage stands in for the abfss:// location; the model folders are fixed bytes,
    // the export itself has its own suites (modelZip.test.ts).
    services.mlflow = {
      ...services.mlflow!,
      curveOf: undefined,
      modelFolderOf: async (name, v) => {
        expect(name).toBe(MODEL);
        return folderOf(v);
      },
      unityCatalog: { schema: 'main.ml', upload: { blobUrl: fake.ucBlobUrl } },
    };
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await fake?.stop();
    await emulator?.stop();
    await azurite?.stop();
  });

  it('ends a deployment with a READY version under the three-level name, its files written, and the alias set', async () => {
    await deploy(1);
    fake.calls.length = 0;
    await tick();
    const uc = fake.calls.filter(
      (c) => c.path.startsWith('unity-catalog/') || c.path.startsWith('/uc-storage'),
    );
    expect(uc.map((c) => `${c.method} ${c.path} ${c.status}`)).toEqual([
      'POST unity-catalog/registered-models/create 200',
      'POST unity-catalog/model-versions/create 200',
      'POST unity-catalog/model-versions/generate-temporary-credentials 200',
      `PUT /uc-storage/uc/models/${UC_NAME}/versions/1/MLmodel 201`,
      `PUT /uc-storage/uc/models/${UC_NAME}/versions/1/model.onnx 201`,
      `PUT /uc-storage/uc/models/${UC_NAME}/versions/1/requirements.txt 201`,
      'POST unity-catalog/model-versions/finalize 200',
      'POST unity-catalog/registered-models/alias 200',
      // The alias sync of the same tick copies this production move (its first), to the same version.
      'POST unity-catalog/registered-models/alias 200',
    ]);

    // No call went to the workspace registry's own endpoints.
    expect(fake.calls.filter((c) => /^(registered-models|model-versions)\//.test(c.path))).toEqual([]);
    // The workspace token went to the Unity Catalog calls.
    expect(
      uc
        .filter((c) => !c.path.startsWith('/uc-storage'))
        .every((c) => c.authorization === 'Bearer dapi-test'),
    ).toBe(true);
    const mlflowRun = fake.runByTag('sluice.run_id', 'run-1')!;
    const version = fake.models.get(UC_NAME)!.versions[0]!;
    expect(version).toMatchObject({
      name: UC_NAME,
      version: '1',
      status: 'READY',
      run_id: mlflowRun.info.run_id,
      storage_location: `abfss://uc@fakeuc.dfs.core.windows.net/models/${UC_NAME}/versions/1`,
    });
    const create = fake.calls.find((c) => c.path === 'unity-catalog/model-versions/create')!;
    expect(create.body).toMatchObject({
      name: UC_NAME,
      run_id: mlflowRun.info.run_id,
      description: expect.stringContaining(`Sluice ${MODEL} version 1`),
    });
    expect((create.body.tags as { key: string; value: string }[]).map((t) => t.key)).toEqual(
      expect.arrayContaining(['sluice.version', 'sluice.approval_id']),
    );
    expect(
      fake.calls.find((c) => c.path === 'unity-catalog/model-versions/generate-temporary-credentials')!.body,
    ).toEqual({
      name: UC_NAME,
      version: '1',
      operation: 'MODEL_VERSION_OPERATION_READ_WRITE',
    });
    expect(fake.ucFiles.get(`uc/models/${UC_NAME}/versions/1/model.onnx`)?.toString()).toBe(
      'onnx-bytes-of-v1',
    );
    expect(ucAlias()).toBe('1');
    const run = (await services.runs.get('wages', 'run-1'))!;
    // The run itself has not ended here (only its deploy step is on it): the mirror waits for it.
    expect(run.mlflow).toMatchObject({
      status: 'pending',
      done: expect.arrayContaining(['deploy']),
      model: { name: UC_NAME, version: '1', alias: 'champion' },
    });
    expect((await services.registry.getHead(MODEL))!.tags[MLFLOW_STATUS_TAG]).toBe(
      'in sync (alias champion on v1 = Sluice v1)',
    );
    // The next tick only reads the alias, from Unity Catalog.
    fake.calls.length = 0;
    await tick();
    expect(fake.okCalls()).toEqual(['GET unity-catalog/registered-models/alias']);
  });

  it('moves the Unity Catalog alias on the next deployment and back on a rollback', async () => {
    await deploy(2);
    await tick();
    expect(fake.models.get(UC_NAME)!.versions.map((v) => [v.version, v.status])).toEqual([
      ['1', 'READY'],
      ['2', 'READY'],
    ]);
    expect(ucAlias()).toBe('2');
    fake.calls.length = 0;
    await production(1);
    await tick();
    expect(fake.okCalls().filter((c) => c.includes('alias'))).toEqual([
      'POST unity-catalog/registered-models/alias',
    ]);
    expect(fake.calls.find((c) => c.method === 'POST' && c.path.endsWith('alias'))!.body).toEqual({
      name: UC_NAME,
      alias: 'champion',
      version: '1',
    });
    expect(ucAlias()).toBe('1');
    expect((await services.registry.getHead(MODEL))!.tags[MLFLOW_STATUS_TAG]).toBe(
      'in sync (alias champion on v1 = Sluice v1)',
    );
  });

  it('reads a hand-made move from Unity Catalog and reports it, never follows it', async () => {
    fake.models.get(UC_NAME)!.aliases.set('champion', '2');
    await tick();
    expect(ucAlias()).toBe('2');
    expect((await services.registry.getHead(MODEL))!.aliases.production!.version).toBe(1);
    expect((await services.registry.getHead(MODEL))!.tags[MLFLOW_STATUS_TAG]).toBe(
      'diverged (alias on v2, Sluice production v1 = MLflow v1)',
    );
    expect(warnings.some((w) => w.includes(`${MODEL} diverged`))).toBe(true);
  });

  it('finishes the version an interrupted attempt left pending, instead of making another', async () => {
    // Storage drops the connection on the second file, once.
    let puts = 0;
    const flaky: typeof fetch = async (url, init) => {
      if (++puts === 2) throw new TypeError('socket hang up');
      return fetch(url, init);
    };
    const upload = services.mlflow!.unityCatalog!.upload;
    services.mlflow = {
      ...services.mlflow!,
      unityCatalog: { schema: 'main.ml', upload: { ...upload, fetch: flaky } },
    };
    await deploy(3);
    await tick();
    const cut = (await services.runs.get('wages', 'run-3'))!;
    expect(cut.mlflow).toMatchObject({
      error: { code: 'mlflow_uc_upload_failed' },
      model: { name: UC_NAME, version: '3' },
    });
    expect(fake.models.get(UC_NAME)!.versions[2]).toMatchObject({
      version: '3',
      status: 'PENDING_REGISTRATION',
    });
    fake.calls.length = 0;
    await mirrorRun(services.mlflow!, cut);
    expect(
      fake.calls
        .filter((c) => c.path.startsWith('unity-catalog/') || c.path.startsWith('/uc-storage'))
        .map((c) => `${c.method} ${c.path} ${c.status}`),
    ).toEqual([
      'GET unity-catalog/model-versions/get 200',
      'POST unity-catalog/model-versions/generate-temporary-credentials 200',
      `PUT /uc-storage/uc/models/${UC_NAME}/versions/3/MLmodel 201`,
      `PUT /uc-storage/uc/models/${UC_NAME}/versions/3/model.onnx 201`,
      `PUT /uc-storage/uc/models/${UC_NAME}/versions/3/requirements.txt 201`,
      'POST unity-catalog/model-versions/finalize 200',
      'POST unity-catalog/registered-models/alias 200',
    ]);
    expect(fake.models.get(UC_NAME)!.versions.map((v) => [v.version, v.status])).toEqual([
      ['1', 'READY'],
      ['2', 'READY'],
      ['3', 'READY'],
    ]);
    expect(ucAlias()).toBe('3');
    expect((await services.runs.get('wages', 'run-3'))!.mlflow!.model).toEqual({
      name: UC_NAME,
      version: '3',
      alias: 'champion',
    });
  });

  it('refuses a version it cannot give files to, naming why, without touching Unity Catalog', async () => {
    services.mlflow = {
      ...services.mlflow!,
      modelFolderOf: async () => {
        throw new Error('the legacy model cannot be converted to ONNX');
      },
    };
    await deploy(4);
    fake.calls.length = 0;
    await tick();
    const run = (await services.runs.get('wages', 'run-4'))!;
    expect(run.mlflow).toMatchObject({
      status: 'failed',
      error: { code: 'mlflow_uc_no_model_folder', message: expect.stringContaining('cannot be converted') },
    });
    expect(fake.calls.filter((c) => c.path.includes('model-versions'))).toEqual([]);
  });

  it('tags the model it creates with the Sluice name, and exports the folder once for both copies', async () => {
    // Made by the first deployment above: tagged with the Sluice model it mirrors.
    expect(fake.ucModelTags.get(UC_NAME)).toEqual([{ key: 'sluice.model', value: MODEL }]);
    const opened: string[] = [];
    services.mlflow = {
      ...services.mlflow!,
      modelFolderOf: async (name, v) => {
        opened.push(`${name} v${v}`);
        return folderOf(v);
      },
    };
    await deploy(5);
    fake.calls.length = 0;
    await tick();
    // One export: the run's `model` artifacts and the Unity Catalog version got the same files.
    expect(opened).toEqual([`${MODEL} v5`]);
    const run = (await services.runs.get('wages', 'run-5'))!;
    const artifacts = fake.calls.filter((c) => c.method === 'PUT' && c.path.includes('/artifacts/model/'));
    expect(artifacts).toHaveLength(3);
    expect(run.mlflow).toMatchObject({ model: { name: UC_NAME, alias: 'champion' } });
    // The model exists: read back, it is this Sluice model's, so the version goes in.
    expect(
      fake.calls
        .filter((c) => c.path.startsWith('unity-catalog/registered-models/'))
        .map((c) => `${c.method} ${c.path} ${c.status}`)
        .slice(0, 2),
    ).toEqual([
      'POST unity-catalog/registered-models/create 400',
      'GET unity-catalog/registered-models/get 200',
    ]);
  });

  it("refuses a second Sluice model that maps to the same Unity Catalog name, on the run's mlflow status", async () => {
    // `wages.eu` and `Wages-EU` are both main.ml.wages_eu in Unity Catalog.
    services.mlflow = { ...services.mlflow!, modelFolderOf: async (_name, v) => folderOf(v) };
    const versions = fake.models.get(UC_NAME)!.versions.length;
    await deploy(1, 'wages.eu');
    const before = (await services.runs.get('wages', 'run-other-1'))!;
    fake.calls.length = 0;
    await tick();
    const run = (await services.runs.get('wages', 'run-other-1'))!;
    expect(run.mlflow).toMatchObject({
      status: 'failed',
      error: { code: 'mlflow_uc_name_collision' },
    });
    expect(run.mlflow!.error!.message).toContain('wages.eu');
    expect(run.mlflow!.error!.message).toContain(`Sluice model ${MODEL}`);
    expect(run.mlflow!.error!.message).toContain(UC_NAME);
    // Nothing was added to the other model's copy, and its alias stayed.
    expect(fake.calls.filter((c) => c.path === 'unity-catalog/model-versions/create')).toEqual([]);
    expect(fake.models.get(UC_NAME)!.versions).toHaveLength(versions);
    expect(ucAlias()).toBe(String(versions));
    // The Sluice run itself is untouched by the mirror's refusal.
    expect(run.status).toBe(before.status);
    expect(run.steps).toEqual(before.steps);
  });

  it("promotes from Unity Catalog through the app's own services: the resolve at start and the importModel activity", async () => {
    const models = services.mlflowModels!;
    // The composition root gives promote the Unity Catalog registry, MLFLOW_UC_SCHEMA, and the
    // MODEL_MAX_BYTES its start-time listing check shares with the train step's download.
    expect(models.registry.unityCatalog).toBe(true);
    expect(models.unityCatalog).toEqual({ schema: 'main.ml', maxBytes: 512 * 1024 * 1024 });
    const twoLevel = (await resolveMlflowCandidate(models, 'models:/wages/1').catch(
      (e: unknown) => e,
    )) as ValidationError;
    expect(twoLevel).toMatchObject({ code: 'mlflow_uri_invalid', status: 400 });
    expect(twoLevel.message).toContain('models:/main.ml.wages/');

    // Another team's model, trained in a notebook on the same data and registered in Unity Catalog.
    const { table } = await readDataset(
      readFileSync(path.resolve(__dirname, '../../../data/cps-wages-1985.csv')),
    );
    const data = datasetFromTable(table);
    const trained = trainModel(data, parseTrainingSpec(wages.training)).model;
    const files = builtInModelFolder(Buffer.from(JSON.stringify(trained), 'utf8')).files;
    const v = fake.ucSeedVersion(
      'main.ml.team_wages',
      Object.fromEntries(files.map((f) => [f.path, Buffer.from(f.bytes)])),
    );
    // Storage: the fake's, for the abfss:// location Unity Catalog gives (tests only).
    services.mlflowModels = {
      ...models,
      unityCatalog: { ...models.unityCatalog, blobContainer: fake.ucContainerOf },
    };
    const candidate = await resolveMlflowCandidate(services.mlflowModels, `models:/main.ml.team_wages/${v}`);
    expect(candidate).toMatchObject({ registry: 'databricks-uc', name: 'main.ml.team_wages', version: v });
    const stored = await services.artifacts.putContentAddressed(
      resources.blobContainers.datasets,
      columnarBytes(data),
    );
    fake.calls.length = 0;
    const result = await importModelOf(services)(
      importModelActivity.input.parse({
        runId: 'wages-20260301-000000-abcd',
        candidate,
        spec: wages.training,
        dataset: { uri: stored.uri, sha256: stored.sha256 },
        pipeline: { name: 'wages', version: 1 },
      }),
    );
    expect(result).toMatchObject({ algorithm: 'mlflow', artifact: { format: 'mlflow', flavor: 'onnx' } });
    const reads = fake.calls.filter((c) => c.path.startsWith('/uc-storage/uc/models/main.ml.team_wages/'));
    expect(reads.map((c) => c.path.split('/').pop()).sort()).toEqual(files.map((f) => f.path).sort());
    expect(reads.every((c) => c.body.sig === 'fake-read-delegation' && c.authorization === undefined)).toBe(
      true,
    );
  });
});
