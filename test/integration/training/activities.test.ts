/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * The train → evaluate → register activities on the real emulators (Azurite, Cosmos) with a real
 * worker process. Each activity runs twice and leaves the same state (activities run at least once).
 */
import { cancelTraining } from '../../../activities/cancelTraining';
import { checkTraining } from '../../../activities/checkTraining';
import { evaluateModel } from '../../../activities/evaluateModel';
import { registerModel } from '../../../activities/registerModel';
import { submitTraining } from '../../../activities/submitTraining';
import { MAX_ACTIVITY_PAYLOAD_BYTES, payloadBytes } from '../../../lib/contracts/activity';
import {
  evaluateModelActivity,
  registerModelActivity,
  submitTrainingActivity,
} from '../../../lib/contracts/training';
import { trainingJobId } from '../../../lib/training/jobId';
import { parseEvaluationPolicy } from '../../../lib/evaluation/policy';
import { ModelRegistry } from '../../../lib/registry/registry';
import resources from '../../../lib/resources.json';
import { ArtifactStore } from '../../../lib/storage/blob';
import type { ModelArtifact } from '../../../lib/contracts/modelArtifact';
import { openModelFolder } from '../../../lib/mlmodel/blobFolder';
import { OnnxModels } from '../../../lib/mlmodel/onnxModels';
import { checkModelFolder } from '../../../lib/mlmodel/check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { trainingJobRequestSchema } from '../../../lib/contracts/trainingJob';
import { isCustomSpec, trainingSpecSchema } from '../../../lib/contracts/trainingSpec';
import { serializeModel } from '../../../lib/training/models/artifact';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { prepareJobData, storeCheckedModel } from '../../../lib/training/userJob/output';
import { runUserJob } from '../../../lib/training/userJob/run';
import type { LocalTrainingBackend } from '../../../lib/training/backends/local';
import type { ColumnarDataset } from '../../../lib/training/dataset';
import type { TrainingDeps } from '../../../lib/services';
import type { TrainingSpecInput } from '../../../lib/contracts/trainingSpec';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { columnarBytes, syntheticClassificationContract } from '../../support/datasets';
import { localWorkerBackend } from '../../support/localWorker';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startAzuriteBlob, startCosmos } from '../../support/emulators';

jest.setTimeout(180_000);

function toCsv(ds: ColumnarDataset): string {
  const header = ds.columns.map((c) => c.name).join(',');
  const rows: string[] = [];
  for (let i = 0; i < ds.rowCount; i++) {
    rows.push(
      ds.columns
        .map((c) => (c.type === 'numeric' ? String(c.values[i]) : (c.levels[c.codes[i]!] ?? '')))
        .join(','),
    );
  }
  return `${header}\n${rows.join('\n')}\n`;
}

const contract = syntheticClassificationContract;

describe('training activities', () => {
  let azurite: BlobEmulator;
  let cosmos: CosmosEmulator;
  let store: ArtifactStore;
  let registry: ModelRegistry;
  let local: LocalTrainingBackend;
  let deps: TrainingDeps;
  let dataset: { uri: string; sha256: string };
  const onnx = new OnnxModels();

  const strong: TrainingSpecInput = {
    algorithm: 'logistic_regression',
    target: 'label',
    features: ['x0', 'x1', 'x2', 'x3', 'segment'],
  };
  const weak: TrainingSpecInput = { algorithm: 'logistic_regression', target: 'label', features: ['x3'] };

  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzuriteBlob(), startCosmos()]);
    store = ArtifactStore.fromConnectionString(azurite.connectionString);
    await store.ensureContainers();
    registry = new ModelRegistry(await cosmosContainer(cosmos, 'models'));
    local = localWorkerBackend(store, azurite.connectionString);
    deps = { store, registry, backend: () => local, onnx, contractOf: async () => contract };
    const data = syntheticClassification({ rows: 6_000, features: 4, seed: 3, withSegment: true });
    const stored = await store.putContentAddressed(resources.blobContainers.datasets, columnarBytes(data));
    dataset = { uri: stored.uri, sha256: stored.sha256 };
    const golden = syntheticClassification({ rows: 500, features: 4, seed: 99, withSegment: true });
    await store.put({ container: 'datasets', path: 'golden/churn.csv' }, toCsv(golden), {
      contentType: 'text/csv',
    });
  });
  afterAll(async () => {
    await local?.stopAll();
    await onnx.dispose();
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  async function train(runId: string, spec: TrainingSpecInput) {
    const input = submitTrainingActivity.input.parse({
      runId,
      spec,
      dataset,
      pipeline: { name: 'churn', version: 1 },
    });
    const first = await submitTraining(deps)(input);
    const again = await submitTraining(deps)(input);
    expect(first).toEqual({ jobId: trainingJobId(runId), backend: 'local', created: true });
    expect(again).toEqual({ ...first, created: false });
    for (;;) {
      const s = await checkTraining(deps)({ jobId: first.jobId, backend: 'local' });
      expect(payloadBytes(s)).toBeLessThan(MAX_ACTIVITY_PAYLOAD_BYTES);
      if (s.state === 'completed') return s.result!;
      if (s.state !== 'queued' && s.state !== 'running')
        throw new Error(`training failed: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  const policy = parseEvaluationPolicy({
    primaryMetric: 'roc_auc',
    threshold: 0.55,
    guardrails: [{ metric: 'log_loss', maxDegradation: 0.02 }],
    sliceGuards: [{ column: 'segment', maxDegradation: 0.05 }],
    bootstrap: { resamples: 300, seed: 3 },
  });
  /** A trained model as the pipeline passes it on: its reference, and its folder's artifact if any. */
  type Trained = { uri: string; sha256: string; artifact?: ModelArtifact };
  const trained = (r: { modelUri: string; modelDigest: string; artifact?: ModelArtifact }): Trained => ({
    uri: r.modelUri,
    sha256: r.modelDigest,
    ...(r.artifact ? { artifact: r.artifact } : {}),
  });
  const evaluate = (runId: string, { artifact, ...model }: Trained, spec: TrainingSpecInput) =>
    evaluateModel(deps)(
      evaluateModelActivity.input.parse({
        runId,
        modelName: 'churn',
        candidate: model,
        ...(artifact ? { candidateArtifact: artifact } : {}),
        dataset,
        spec,
        policy,
        goldenSet: { blob: 'datasets/golden/churn.csv' },
        pipeline: { name: 'churn', version: 1 },
      }),
    );
  // `metrics`: what the version records, as the pipeline registers the job's validation metrics
  // (championCollapse holds production to it).
  const register = (
    runId: string,
    { artifact, ...model }: Trained,
    alias?: string,
    metrics: Record<string, number | null> = {},
  ) =>
    registerModel(deps)(
      registerModelActivity.input.parse({
        runId,
        modelName: 'churn',
        model,
        ...(artifact ? { artifact } : {}),
        datasetSha256: dataset.sha256,
        algorithm: 'logistic_regression',
        metrics,
        spec: weak,
        ...(alias ? { alias } : {}),
      }),
    );

  it('trains, evaluates against production on holdout + golden set, and registers, idempotently', async () => {
    // The first model: no champion, only the thresholds apply.
    const weakResult = await train('run-weak', weak);
    const weakModel = trained(weakResult);
    // The built-in worker stores an MLflow folder scored through ONNX.
    expect(weakModel.artifact).toMatchObject({ format: 'mlflow', flavor: 'onnx', onnxPath: 'model.onnx' });
    const firstEval = await evaluate('run-weak', weakModel, weak);
    expect(firstEval.passed).toBe(true);
    expect(firstEval.champion).toBeNull();
    expect(firstEval.reasons.map((r) => r.check)).toContain('no_champion');
    // holdout of 6,000 rows (~15%) plus the 500 golden rows
    expect(firstEval.rows).toBeGreaterThan(500 + 600);
    expect(await evaluate('run-weak', weakModel, weak)).toEqual(firstEval);

    const reg = await register('run-weak', weakModel, 'staging', weakResult.metrics.validation);
    expect(reg).toEqual({ modelName: 'churn', version: 1, created: true, modelDigest: weakModel.sha256 });
    expect(await register('run-weak', weakModel, 'staging')).toEqual({ ...reg, created: false });
    await registry.moveAlias({
      modelName: 'churn',
      alias: 'production',
      to: 1,
      by: 'reviewer@example.com',
      reason: 'first model',
    });

    // A better challenger beats production on the same rows.
    const strongResult = await train('run-strong', strong);
    const strongModel = trained(strongResult);
    const better = await evaluate('run-strong', strongModel, strong);
    expect(better).toMatchObject({ passed: true, championVersion: 1, primaryMetric: 'roc_auc' });
    expect(better.difference!.lower).toBeGreaterThan(0);
    // Production held its recorded roc_auc; both sides carry an interval of their own.
    expect(better.reasons.find((r) => r.check === 'champion_collapsed')).toMatchObject({ passed: true });
    expect(better.candidateInterval!.lower!).toBeLessThan(better.candidate!);
    expect(better.championInterval!.upper!).toBeGreaterThan(better.champion!);
    expect(payloadBytes(better)).toBeLessThan(MAX_ACTIVITY_PAYLOAD_BYTES);
    const report = await store.getJson<{ runId: string; verdict: { passed: boolean }; slices: unknown[] }>(
      better.report.uri,
    );
    expect(report.value).toMatchObject({ runId: 'run-strong', verdict: { passed: true } });
    expect(report.value.slices).toHaveLength(4);

    // With the strong model in production, the weak one fails, and says why.
    const v2 = await register('run-strong', strongModel, undefined, strongResult.metrics.validation);
    await registry.moveAlias({
      modelName: 'churn',
      alias: 'production',
      to: v2.version,
      expectedFrom: 1,
      by: 'reviewer@example.com',
    });
    const worse = await evaluate('run-weak-again', weakModel, weak);
    expect(worse.passed).toBe(false);
    expect(worse.reasons[0]!.passed).toBe(false);
    expect(worse.reasons.filter((r) => !r.passed).map((r) => r.check)).toEqual(
      expect.arrayContaining(['superiority', 'guardrail_degradation']),
    );

    const detail = await registry.getModel('churn');
    expect(detail!.aliasHistory.map((h) => [h.alias, h.from, h.to])).toEqual([
      ['staging', null, 1],
      ['production', null, 1],
      ['production', 1, 2],
    ]);
    const job = await checkTraining(deps)({ jobId: trainingJobId('run-strong'), backend: 'local' });
    expect(job.state).toBe('completed');
    await expect(cancelTraining(deps)({ jobId: job.jobId, backend: 'local' })).resolves.toEqual({
      jobId: job.jobId,
    });
    expect((await checkTraining(deps)({ jobId: job.jobId, backend: 'local' })).state).toBe('completed');
  });

  it('takes categories from the dataset contract', async () => {
    const r = await train('run-categories', { ...strong, features: ['x0', 'segment'] });
    const data = await (await openModelFolder(store, r.modelUri, r.modelDigest)).read('model.json');
    const model = JSON.parse(data.toString('utf8')) as {
      features: { name: string; categories?: string[] }[];
    };
    expect(model.features.find((f) => f.name === 'segment')!.categories).toEqual(['a', 'b', 'c', 'd']);
  });

  /** Registers a model under `modelName` and moves `production` to it. */
  async function production(modelName: string, model: Trained, spec: TrainingSpecInput, algorithm: string) {
    const { artifact, ...ref } = model;
    const reg = await registerModel(deps)(
      registerModelActivity.input.parse({
        runId: `run-${modelName}`,
        modelName,
        model: ref,
        ...(artifact ? { artifact } : {}),
        datasetSha256: dataset.sha256,
        algorithm,
        metrics: {},
        spec,
      }),
    );
    await registry.moveAlias({ modelName, alias: 'production', to: reg.version, by: 'reviewer@example.com' });
    return reg;
  }
  const evaluateAgainst = (modelName: string, { artifact, ...candidate }: Trained) =>
    evaluateModel(deps)(
      evaluateModelActivity.input.parse({
        runId: `run-eval-${modelName}`,
        modelName,
        candidate,
        ...(artifact ? { candidateArtifact: artifact } : {}),
        dataset,
        spec: strong,
        policy: parseEvaluationPolicy({ primaryMetric: 'roc_auc', bootstrap: { resamples: 200, seed: 2 } }),
      }),
    );

  it('evaluates a built-in challenger against a scikit-learn champion, both through ONNX on the same rows', async () => {
    // The champion: examples/training/sklearn run for real (python3 + scikit-learn), checked and stored.
    const spec = trainingSpecSchema.parse({
      algorithm: 'custom',
      target: 'label',
      features: ['x0', 'x1', 'x2', 'x3', 'segment'],
      code: path.resolve(__dirname, '../../../examples/training/sklearn'),
      command: '/usr/bin/python3 train.py',
    });
    if (!isCustomSpec(spec)) throw new Error('a custom spec');
    const work = await mkdtemp(path.join(tmpdir(), 'sluice-sk-champion-'));
    try {
      const request = trainingJobRequestSchema.parse({ jobId: 'sk-champion', spec, dataset, contract });
      const data = await prepareJobData(store, request, path.join(work, 'data'));
      const outcome = await runUserJob({
        jobId: 'sk-champion',
        spec: { ...spec, command: spec.command! },
        data,
        workDir: work,
        check: checkModelFolder,
      });
      const sk = trained(await storeCheckedModel(store, outcome.outputDir, data, outcome.model));
      expect(sk.artifact).toMatchObject({ flavor: 'onnx', classes: ['no', 'yes'] });
      const reg = await production('churn-sk', sk, spec, 'custom');
      expect((await registry.getVersion('churn-sk', reg.version))!.artifact).toEqual(sk.artifact);

      const challenger = trained(await train('run-vs-sklearn', strong));
      const out = await evaluateAgainst('churn-sk', challenger);
      expect(out).toMatchObject({ championVersion: reg.version, primaryMetric: 'roc_auc' });
      // Both are linear models on the same signal: both score well, on the same rows.
      expect(out.champion!).toBeGreaterThan(0.75);
      expect(out.candidate!).toBeGreaterThan(0.75);
      expect(Math.abs(out.candidate! - out.champion!)).toBeLessThan(0.05);
      const report = await store.getJson<{ rows: number; champion: { digest: string } }>(out.report.uri);
      expect(report.value.champion.digest).toBe(sk.sha256);
      expect(report.value.rows).toBe(out.rows);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('still evaluates against a legacy JSON champion (a registry version from before model folders)', async () => {
    const model = serializeModel(
      trainModel(
        syntheticClassification({ rows: 6_000, features: 4, seed: 3, withSegment: true }),
        parseTrainingSpec(strong),
      ).model,
    );
    const stored = await store.putContentAddressed(resources.blobContainers.models, model.bytes);
    const legacy = await production(
      'churn-legacy',
      { uri: stored.uri, sha256: model.digest },
      strong,
      'logistic_regression',
    );
    expect((await registry.getVersion('churn-legacy', legacy.version))!.artifact).toBeUndefined();
    const challenger = trained(await train('run-vs-legacy', strong));
    const out = await evaluateAgainst('churn-legacy', challenger);
    // The same model, once as JSON (TS predict) and once as the worker's folder (ONNX): the same scores.
    expect(out.championVersion).toBe(legacy.version);
    expect(out.candidate).toBeCloseTo(out.champion!, 6);
    expect(out.difference!.estimate).toBeCloseTo(0, 6);
  });

  it('stops on shuffled labels: production collapses against the metrics it was registered with', async () => {
    const result = await train('run-collapse', strong);
    const model = trained(result);
    const { artifact, ...ref } = model;
    const reg = await registerModel(deps)(
      registerModelActivity.input.parse({
        runId: 'run-collapse',
        modelName: 'churn-collapse',
        model: ref,
        ...(artifact ? { artifact } : {}),
        datasetSha256: dataset.sha256,
        algorithm: 'logistic_regression',
        metrics: result.metrics.validation,
        spec: strong,
      }),
    );
    await registry.moveAlias({
      modelName: 'churn-collapse',
      alias: 'production',
      to: reg.version,
      by: 'r@example.com',
    });
    // The same rows, labels permuted (seeded): what a broken join or a re-coded export looks like.
    const data = syntheticClassification({ rows: 6_000, features: 4, seed: 3, withSegment: true });
    let state = 7;
    const shuffled: ColumnarDataset = {
      rowCount: data.rowCount,
      columns: data.columns.map((c) => {
        if (c.name !== 'label' || c.type !== 'categorical') return c;
        const codes = Int32Array.from(c.codes);
        for (let i = codes.length - 1; i > 0; i--) {
          state = (Math.imul(state, 1103515245) + 12345) >>> 0;
          const j = Math.floor((state / 2 ** 32) * (i + 1));
          [codes[i], codes[j]] = [codes[j]!, codes[i]!];
        }
        return { ...c, codes };
      }),
    };
    const stored = await store.putContentAddressed(
      resources.blobContainers.datasets,
      columnarBytes(shuffled),
    );
    const out = await evaluateModel(deps)(
      evaluateModelActivity.input.parse({
        runId: 'run-collapse-2',
        modelName: 'churn-collapse',
        candidate: ref,
        ...(artifact ? { candidateArtifact: artifact } : {}),
        dataset: { uri: stored.uri, sha256: stored.sha256 },
        spec: strong,
        policy: parseEvaluationPolicy({
          primaryMetric: 'roc_auc',
          comparison: { mode: 'non_inferiority', margin: 0.02 },
          bootstrap: { resamples: 200, seed: 2 },
        }),
      }),
    );
    expect(out.passed).toBe(false);
    const failed = out.reasons.filter((r) => !r.passed);
    expect(failed.map((r) => r.check)).toEqual(['champion_collapsed']);
    expect(failed[0]!.message).toMatch(
      /^the production model scores 0\.\d\d on this data against 0\.\d\d when it was approved: check the labels and the data/,
    );
    expect(out.champion!).toBeLessThan(0.6);
  });

  it('refuses to register a folder whose MLmodel does not name the ONNX file the job reported', async () => {
    const r = trained(await train('run-bad-folder', strong));
    await expect(
      register('run-bad-artifact', { ...r, artifact: { ...r.artifact!, onnxPath: 'other.onnx' } }),
    ).rejects.toMatchObject({ code: 'mlmodel_invalid' });
    await expect(register('run-bad-artifact', { ...r, sha256: 'f'.repeat(64) })).rejects.toMatchObject({
      code: 'model_digest_mismatch',
    });
  });

  it('refuses to register or evaluate an artifact that does not match its digest', async () => {
    const bogus = await store.putContentAddressed(
      resources.blobContainers.models,
      '{"format":"sluice-model"}',
    );
    await expect(register('run-x', { uri: bogus.uri, sha256: 'e'.repeat(64) })).rejects.toMatchObject({
      code: 'BLOB_DIGEST_MISMATCH',
    });
    await expect(register('run-x', { uri: bogus.uri, sha256: bogus.sha256 })).rejects.toMatchObject({
      code: 'invalid_model',
    });
    await expect(evaluate('run-x', { uri: bogus.uri, sha256: 'e'.repeat(64) }, weak)).rejects.toMatchObject({
      code: 'BLOB_DIGEST_MISMATCH',
    });
    expect((await registry.getHead('churn'))!.latestVersion).toBe(2);
  });
});
