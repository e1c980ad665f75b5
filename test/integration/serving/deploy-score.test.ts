/** @jest-environment ./test/support/onnxEnvironment.js */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { createHash } from 'node:crypto';
import resources from '../../../lib/resources.json';
import { ApprovalStore } from '../../../lib/approval/store';
import { closeRecord } from '../../../lib/approval/record';
import { ModelRegistry } from '../../../lib/registry/registry';
import { ArtifactStore } from '../../../lib/storage/blob';
import { serializeModel } from '../../../lib/training/models/artifact';
import { ProductionModels } from '../../../lib/serving/production';
import { OnnxModels } from '../../../lib/mlmodel/onnxModels';
import path from 'node:path';
import type { ModelArtifact } from '../../../lib/contracts/modelArtifact';
import { storeModelFiles, storeModelFolder } from '../../../lib/mlmodel/blobFolder';
import { builtInModelFolder } from '../../../lib/training/models/mlflowFolder';
import { expectedClassifier, perFeature, perFeatureRows, rowFeatures } from '../../unit/mlmodel/support';
import { deployModel } from '../../../activities/deployModel';
import type { DeployDeps } from '../../../activities/deployModel';
import { createScoreHandler } from '../../../functions/support/scoreHandler';
import { createRollbackHandler } from '../../../functions/rollbackModel';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startAzuriteBlob, startCosmos } from '../../support/emulators';
import { sampleRecord } from '../../support/approvalSample';
import { logisticModel, sampleRow } from '../../support/lrModel';

const DATASET = 'd'.repeat(64);

describe('deployment, scoring and rollback (Cosmos emulator + Azurite)', () => {
  let cosmos: CosmosEmulator;
  let azurite: BlobEmulator;
  let registry: ModelRegistry;
  let approvals: ApprovalStore;
  let artifacts: ArtifactStore;
  let models: ProductionModels;
  const onnx = new OnnxModels();
  let runDeployments: Record<string, unknown>[];
  let deps: DeployDeps;
  const ctx = () => new InvocationContext({ invocationId: 'inv', functionName: 'test' });

  async function register(modelName: string, seed: number, runId: string, tamper = false) {
    const { bytes, digest } = serializeModel(logisticModel(20, seed));
    const path = `${modelName}/v-seed-${seed}${tamper ? '-tampered' : ''}.json`;
    const stored = tamper ? Buffer.from(JSON.stringify(logisticModel(20, seed + 1000))) : bytes;
    const res = await artifacts.put({ container: resources.blobContainers.models, path }, stored, {
      condition: 'overwrite',
    });
    if (!res.ok) throw new Error('upload failed');
    return (
      await registry.registerVersion({
        modelName,
        modelDigest: digest,
        artifactUri: res.uri,
        datasetDigest: DATASET,
        metrics: { roc_auc: 0.8 },
        trainingSpec: {},
        algorithm: 'logistic_regression',
        runId,
      })
    ).version;
  }

  async function approve(
    runId: string,
    modelName: string,
    version: { version: number; modelDigest: string },
  ) {
    const rec = sampleRecord(undefined, {
      runId,
      candidate: {
        modelName,
        modelVersion: version.version,
        modelDigest: version.modelDigest,
        datasetDigest: DATASET,
      },
    });
    await approvals.createRecord(rec);
    await approvals.updateRecord(runId, rec.id, (r) =>
      closeRecord(r, 'approved', ['Approved by alice, bob.'], new Date()),
    );
    return rec.id;
  }

  const predictReq = (name: string, body: unknown) =>
    new HttpRequest({
      method: 'POST',
      url: `http://localhost/api/models/${name}/predict`,
      params: { name },
      headers: { 'content-type': 'application/json' },
      body: { string: JSON.stringify(body) },
    });
  const score = createScoreHandler(async () => models);

  beforeAll(async () => {
    [cosmos, azurite] = await Promise.all([startCosmos(), startAzuriteBlob()]);
    registry = new ModelRegistry(await cosmosContainer(cosmos, 'models'));
    approvals = new ApprovalStore(await cosmosContainer(cosmos, 'approvals'));
    artifacts = ArtifactStore.fromConnectionString(azurite.connectionString);
    await artifacts.ensureContainers();
  });
  afterAll(async () => {
    await onnx.dispose();
    await Promise.all([cosmos.stop(), azurite.stop()]);
  });
  beforeEach(() => {
    runDeployments = [];
    models = new ProductionModels({
      registry,
      scorers: { store: artifacts, onnx },
      aliasTtlMs: 0,
    });
    deps = {
      approvals,
      registry,
      recordOnRun: async (_pipeline, _runId, deployment) => {
        runDeployments.push(deployment);
        return true;
      },
      now: () => new Date(),
    };
  });

  it('deploys the approved version once (a retry changes nothing) and serves it without a restart', async () => {
    const v1 = await register('churn', 1, 'run-a');
    const a1 = await approve('run-a', 'churn', v1);
    const input = (runId: string, approvalId: string, v: typeof v1, expected: number | null) => ({
      runId,
      pipeline: 'churn',
      approvalId,
      candidate: {
        modelName: 'churn',
        modelVersion: v.version,
        modelDigest: v.modelDigest,
        datasetDigest: DATASET,
      },
      expectedProduction: expected,
      deploymentId: `deploy-${runId}`,
    });
    expect((await score(predictReq('churn', { rows: [sampleRow()] }), ctx())).status).toBe(404);

    const first = await deployModel(deps)(input('run-a', a1, v1, null));
    expect(first).toMatchObject({
      modelName: 'churn',
      version: 1,
      previous: null,
      moved: true,
      recordedOnRun: true,
    });
    const again = await deployModel(deps)(input('run-a', a1, v1, null));
    expect(again).toMatchObject({ version: 1, moved: false, aliasMoveSeq: first.aliasMoveSeq });

    const r1 = await score(predictReq('churn', { rows: [sampleRow(), sampleRow(20, 3)] }), ctx());
    expect(r1.status).toBe(200);
    const body1 = r1.jsonBody as {
      version: number;
      predictions: string[];
      probabilities: number[][];
      classes: string[];
    };
    expect(body1.version).toBe(1);
    expect(body1.classes).toEqual(['no', 'yes']);
    expect(body1.predictions).toHaveLength(2);
    for (const p of body1.probabilities) expect(p[0]! + p[1]!).toBeCloseTo(1, 12);

    const v2 = await register('churn', 2, 'run-b');
    const a2 = await approve('run-b', 'churn', v2);
    const second = await deployModel(deps)(input('run-b', a2, v2, 1));
    expect(second).toMatchObject({ version: 2, previous: 1, moved: true });
    // The cached version answers while one lookup refreshes the alias; the next requests see v2.
    let r2 = await score(predictReq('churn', { rows: [sampleRow()] }), ctx());
    for (let i = 0; i < 50 && (r2.jsonBody as { version: number }).version !== 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      r2 = await score(predictReq('churn', { rows: [sampleRow()] }), ctx());
    }
    expect((r2.jsonBody as { version: number }).version).toBe(2);
    expect((r2.headers as Record<string, string>)['x-model-version']).toBe('2');

    const detail = await registry.getModel('churn');
    expect(detail?.aliasHistory.map((m) => [m.from, m.to, m.approvalRef])).toEqual([
      [null, 1, a1],
      [1, 2, a2],
    ]);
    // The retry recorded the same deployment on the run as the first attempt.
    expect(runDeployments).toHaveLength(3);
    expect(runDeployments[1]).toEqual(runDeployments[0]);
  });

  it('refuses to deploy without an approved approval, for another digest, or after production moved', async () => {
    const v1 = await register('fraud', 11, 'run-f1');
    const v2 = await register('fraud', 12, 'run-f2');
    const base = { pipeline: 'fraud', expectedProduction: null, deploymentId: 'deploy-fraud' };
    const cand = (v: typeof v1) => ({
      modelName: 'fraud',
      modelVersion: v.version,
      modelDigest: v.modelDigest,
      datasetDigest: DATASET,
    });

    const pending = sampleRecord(undefined, { runId: 'run-f1', candidate: cand(v1) });
    await approvals.createRecord(pending);
    await expect(
      deployModel(deps)({ ...base, runId: 'run-f1', approvalId: pending.id, candidate: cand(v1) }),
    ).rejects.toMatchObject({ code: 'not_approved' });

    const a2 = await approve('run-f2', 'fraud', v2);
    await expect(
      deployModel(deps)({
        ...base,
        runId: 'run-f2',
        approvalId: a2,
        candidate: { ...cand(v2), modelDigest: v1.modelDigest },
      }),
    ).rejects.toMatchObject({ code: 'candidate_changed' });

    // Someone else promoted v1 meanwhile: the approval (given against "no production") must not replace it.
    await registry.moveAlias({
      modelName: 'fraud',
      alias: 'production',
      to: 1,
      by: 'someone',
      reason: 'manual',
    });
    await expect(
      deployModel(deps)({ ...base, runId: 'run-f2', approvalId: a2, candidate: cand(v2) }),
    ).rejects.toMatchObject({ code: 'production_moved' });
    expect((await registry.getHead('fraud'))?.aliases.production?.version).toBe(1);
  });

  it('validates rows against the feature schema, naming the field', async () => {
    const row = sampleRow();
    const cases: [unknown, string][] = [
      [{ rows: [{ ...row, f3: 'high' }] }, 'rows[0].f3'],
      [{ rows: [row, { ...row, f7: undefined }] }, 'rows[1].f7'],
      [{ rows: [] }, 'rows'],
      [{ nope: 1 }, 'rows'],
      [{ rows: [row, 5] }, 'rows[1]'],
    ];
    for (const [body, field] of cases) {
      const res = await score(predictReq('churn', body), ctx());
      expect(res.status).toBe(400);
      expect((res.jsonBody as { field: string }).field).toBe(field);
    }
    const missing = await score(predictReq('churn', { rows: [{ ...row, f2: null }] }), ctx());
    expect(missing.status).toBe(200);
    expect((await score(predictReq('nosuchmodel', { rows: [row] }), ctx())).status).toBe(404);
  });

  /** Registers a stored model folder as version 1 of `modelName` and puts it in production. */
  async function produceFolder(
    modelName: string,
    folder: { uri: string; digest: string },
    artifact: ModelArtifact,
  ) {
    const { version } = await registry.registerVersion({
      modelName,
      modelDigest: folder.digest,
      artifactUri: folder.uri,
      artifact,
      datasetDigest: DATASET,
      metrics: {},
      trainingSpec: {},
      algorithm: 'custom',
      runId: `run-${modelName}`,
    });
    await registry.moveAlias({
      modelName,
      alias: 'production',
      to: version.version,
      by: 'test',
      reason: 'setup',
    });
    return version;
  }
  type Answer = {
    version: number;
    model: string;
    predictions: unknown[];
    probabilities?: number[][];
    classes?: string[];
  };

  it("serves a built-in model's folder through ONNX, scoring like its legacy JSON", async () => {
    const { bytes, digest } = serializeModel(logisticModel(20, 31));
    const stored = await artifacts.putContentAddressed(resources.blobContainers.models, bytes);
    expect(stored.sha256).toBe(digest);
    await registry.registerVersion({
      modelName: 'lr-json',
      modelDigest: digest,
      artifactUri: stored.uri,
      datasetDigest: DATASET,
      metrics: {},
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: 'run-json',
    });
    await registry.moveAlias({
      modelName: 'lr-json',
      alias: 'production',
      to: 1,
      by: 'test',
      reason: 'setup',
    });
    const { files, artifact } = builtInModelFolder(bytes);
    const folder = await storeModelFiles(artifacts, files);
    await produceFolder('lr-onnx', folder, artifact);

    const rows = Array.from({ length: 20 }, (_, i) => sampleRow(20, i));
    const json = await score(predictReq('lr-json', { rows }), ctx());
    const viaOnnx = await score(predictReq('lr-onnx', { rows }), ctx());
    expect(viaOnnx.status).toBe(200);
    expect(viaOnnx.headers).toMatchObject({ 'x-model-version': '1' });
    const a = json.jsonBody as Answer;
    const b = viaOnnx.jsonBody as Answer;
    expect(b).toMatchObject({ model: 'lr-onnx', version: 1, classes: a.classes, predictions: a.predictions });
    b.probabilities!.forEach((p, i) =>
      p.forEach((x, k) => expect(Math.abs(x - a.probabilities![i]![k]!)).toBeLessThan(1e-6)),
    );
    expect(onnx.digests).toContain(folder.digest);
    // Rows are checked as before (the model JSON rides in the folder).
    const bad = await score(predictReq('lr-onnx', { rows: [{ ...sampleRow(), f0: 'high' }] }), ctx());
    expect(bad.status).toBe(400);
    expect((bad.jsonBody as { field: string }).field).toBe('rows[0].f0');
  });

  it("serves a user's ONNX model, its rows checked by feature name and kind", async () => {
    const dir = path.resolve(__dirname, '../../fixtures/mlmodel/classifier-per-feature');
    const folder = await storeModelFolder(artifacts, dir, { maxBytes: 1 << 20 });
    const artifact: ModelArtifact = {
      format: 'mlflow',
      flavor: 'onnx',
      onnxPath: 'model.onnx',
      task: 'classification',
      target: 'y',
      features: perFeature,
      classes: ['no', 'yes'],
      inputLayout: 'per-feature',
      files: folder.manifest.length,
      bytes: folder.manifest.reduce((n, f) => n + f.bytes, 0),
    };
    await produceFolder('user-onnx', folder, artifact);
    const res = await score(predictReq('user-onnx', { rows: perFeatureRows }), ctx());
    expect(res.status).toBe(200);
    const body = res.jsonBody as Answer;
    expect(body).toMatchObject({ model: 'user-onnx', version: 1, classes: ['no', 'yes'] });
    perFeatureRows.forEach((row, i) => {
      const want = expectedClassifier(rowFeatures(row));
      expect(body.predictions[i]).toBe(want.label);
      expect(body.probabilities![i]![1]).toBeCloseTo(want.p[1], 5);
    });
    for (const [row, field] of [
      [{ x1: 'one', x2: 1, color: 'red' }, 'rows[0].x1'],
      [{ x1: 1, x2: 1, color: 3 }, 'rows[0].color'],
      [{ x1: 1, color: 'red' }, 'rows[0].x2'],
    ] as const) {
      const r = await score(predictReq('user-onnx', { rows: [row] }), ctx());
      expect(r.status).toBe(400);
      expect((r.jsonBody as { field: string }).field).toBe(field);
    }
  });

  it('answers 409 model_not_servable for a python_function-only production model, naming version and model', async () => {
    const dir = path.resolve(__dirname, '../../fixtures/mlmodel/classifier-per-feature');
    const folder = await storeModelFolder(artifacts, dir, { maxBytes: 1 << 20 });
    await produceFolder('churn-pyfunc', folder, {
      format: 'mlflow',
      flavor: 'python_function',
      task: 'classification',
      target: 'y',
      features: perFeature,
      classes: ['no', 'yes'],
      files: folder.manifest.length,
      bytes: 1,
    });
    const res = await score(predictReq('churn-pyfunc', { rows: perFeatureRows }), ctx());
    expect(res.status).toBe(409);
    expect(res.headers).toMatchObject({ 'x-model-version': '1' });
    expect(res.jsonBody).toMatchObject({
      code: 'model_not_servable',
      model: 'churn-pyfunc',
      version: 1,
      detail: 'version 1 of churn-pyfunc has no ONNX flavor; Sluice serves ONNX models only',
    });
  });

  it('never serves a model whose artifact does not hash to the registered digest', async () => {
    const bad = await register('tampered', 21, 'run-t', true);
    await registry.moveAlias({
      modelName: 'tampered',
      alias: 'production',
      to: bad.version,
      by: 'test',
      reason: 'setup',
    });
    const res = await score(predictReq('tampered', { rows: [sampleRow()] }), ctx());
    expect(res.status).toBe(503);
    expect((res.jsonBody as { code: string }).code).toBe('model_digest_mismatch');
  });

  it('rolls production back to the previous version with a reason, recorded in the alias history', async () => {
    const rollback = createRollbackHandler(async () => registry);
    const req = (name: string, body: unknown) =>
      new HttpRequest({
        method: 'POST',
        url: `http://localhost/api/models/${name}/rollback`,
        params: { name },
        headers: { 'content-type': 'application/json', 'x-ms-client-principal-name': 'oncall@example.com' },
        body: { string: JSON.stringify(body) },
      });
    expect((await rollback(req('churn', {}), ctx())).status).toBe(400);
    const res = await rollback(req('churn', { reason: 'p99 latency regression in v2' }), ctx());
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ from: 2, to: 1 });
    const last = (await registry.getModel('churn'))?.aliasHistory.at(-1);
    expect(last).toMatchObject({
      from: 2,
      to: 1,
      by: 'oncall@example.com',
      reason: 'rollback: p99 latency regression in v2',
    });
    models.invalidate('churn');
    const served = await score(predictReq('churn', { rows: [sampleRow()] }), ctx());
    expect((served.jsonBody as { version: number }).version).toBe(1);
    const first = await rollback(req('churn', { reason: 'again' }), ctx());
    expect(first.status).toBe(409);
    expect((first.jsonBody as { code: string }).code).toBe('nothing_to_roll_back');
  });

  it('serves the same digest the registry holds (the served artifact is the registered bytes)', async () => {
    const served = await models.get('churn');
    const version = await registry.getVersion('churn', served.version);
    const bytes = (await artifacts.getBuffer(version!.artifactUri)).data;
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(served.digest);
  });
});
