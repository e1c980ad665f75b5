/**
 * Activities run at least once (DESIGN.md): each activity here runs twice with the same input and
 * the external state it reads or writes is the same after the second run as after the first. The
 * services are the app's own, built by createServices on the emulators (Azurite, Cosmos) with the
 * real SDKs; only the local training backend runs its worker from the TypeScript source.
 *
 * The other activities' run-twice tests live next to their domain; test/unit/activities/
 * everyActivityRunsTwice.test.ts lists where each one is.
 */
import { randomBytes } from 'node:crypto';
import { buildEvidence } from '../../../activities/buildEvidence';
import { cancelTraining } from '../../../activities/cancelTraining';
import { checkTraining } from '../../../activities/checkTraining';
import { createApproval } from '../../../activities/createApproval';
import { readApproval } from '../../../activities/readApproval';
import { resolveReference } from '../../../activities/resolveReference';
import { submitTraining } from '../../../activities/submitTraining';
import { createApprovalActivity } from '../../../lib/contracts/approval';
import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
  buildEvidenceActivity,
} from '../../../lib/contracts/pipeline';
import { submitTrainingActivity } from '../../../lib/contracts/training';
import { loadConfig } from '../../../lib/config';
import { parseEvaluationPolicy } from '../../../lib/evaluation/policy';
import { evaluateCandidate } from '../../../lib/evaluation/report';
import { scoredWith } from '../../support/scored';
import resources from '../../../lib/resources.json';
import { newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices, trainingDeps } from '../../../lib/services';
import type { LocalTrainingBackend } from '../../../lib/training/backends/local';
import { selectRows } from '../../../lib/training/dataset';
import { loadModel } from '../../../lib/training/models/predict';
import { splitForSpec, trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { sampleApprovalInput } from '../../support/approvalSample';
import { columnarBytes } from '../../support/datasets';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { startAzuriteBlob, startCosmos } from '../../support/emulators';
import { localWorkerBackend } from '../../support/localWorker';

jest.setTimeout(180_000);

describe('activities run twice leave the same external state (services from createServices)', () => {
  let azurite: BlobEmulator;
  let cosmos: CosmosEmulator;
  let services: Services;
  let local: LocalTrainingBackend | undefined;

  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzuriteBlob(), startCosmos()]);
    const config = loadConfig({
      COSMOS_ENDPOINT: cosmos.endpoint,
      COSMOS_KEY: cosmos.key,
      ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
      APPROVAL_SIGNING_KEYS: JSON.stringify({ k1: randomBytes(32).toString('base64') }),
    });
    services = await createServices(config, {
      // The real local backend, its worker run from the TypeScript source.
      backend: () => (local ??= localWorkerBackend(services.artifacts, azurite.connectionString)),
    });
  });
  afterAll(async () => {
    await local?.stopAll();
    services?.cosmos.client.dispose();
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  /** Every blob under a prefix with its ETag: a rewrite of the same bytes still shows. */
  async function blobsUnder(container: string, prefix: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for await (const b of services.artifacts.containerClient(container).listBlobsFlat({ prefix })) {
      out[b.name] = b.properties.etag ?? '';
    }
    return out;
  }

  it('resolveReference: twice gives the same answer and changes nothing in the registry', async () => {
    const resolve = resolveReference(services);
    expect(await resolve({ modelName: 'churn-ref' })).toEqual({});
    expect(await resolve({ modelName: 'churn-ref' })).toEqual({});

    const columnar = {
      uri: 'https://example/datasets/columnar/sha256/x',
      sha256: 'c'.repeat(64),
      bytes: 1234,
    };
    const { version } = await services.registry.registerVersion({
      modelName: 'churn-ref',
      modelDigest: 'a'.repeat(64),
      artifactUri: 'https://example/models/a',
      datasetDigest: 'b'.repeat(64),
      metrics: { roc_auc: 0.8 },
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: 'run-ref',
      tags: {
        [DATASET_COLUMNAR_URI_TAG]: columnar.uri,
        [DATASET_COLUMNAR_SHA256_TAG]: columnar.sha256,
        [DATASET_COLUMNAR_BYTES_TAG]: String(columnar.bytes),
      },
    });
    await services.registry.moveAlias({
      modelName: 'churn-ref',
      alias: 'production',
      to: version.version,
      by: 'reviewer@example.com',
    });
    const before = await services.registry.getModel('churn-ref');
    const first = await resolve({ modelName: 'churn-ref' });
    const again = await resolve({ modelName: 'churn-ref' });
    expect(first).toEqual({
      production: { version: version.version, modelDigest: 'a'.repeat(64) },
      reference: { columnar },
    });
    expect(again).toEqual(first);
    expect(await services.registry.getModel('churn-ref')).toEqual(before);
  });

  it('buildEvidence: twice gives the same evidence and leaves the run document and reports as they were', async () => {
    const ds = syntheticClassification({ rows: 2_000, features: 3, seed: 4 });
    const spec = parseTrainingSpec({
      algorithm: 'logistic_regression',
      target: 'label',
      features: ['x0', 'x1', 'x2'],
    });
    const holdout = selectRows(ds, splitForSpec(ds, spec).holdout);
    const candidate = scoredWith(loadModel(trainModel(ds, spec).model), holdout, {
      digest: 'd'.repeat(64),
      version: 1,
    });
    const report = evaluateCandidate({
      dataset: holdout,
      candidate,
      policy: parseEvaluationPolicy({
        primaryMetric: 'roc_auc',
        threshold: 0.5,
        bootstrap: { resamples: 100, seed: 1 },
      }),
    });
    const stored = await services.artifacts.putContentAddressed(
      resources.blobContainers.reports,
      JSON.stringify({ runId: 'run-evidence', modelName: 'churn', ...report }),
      { prefix: 'evaluations', contentType: 'application/json' },
    );
    const at = '2026-03-01T09:00:00.000Z';
    await services.runs.create(
      newRunDocument({
        id: 'run-evidence',
        pipeline: 'churn',
        pipelineVersion: 1,
        instanceId: 'run-evidence',
        trigger: { kind: 'http', by: 'requester@example.com' },
        source: { kind: 'blob', uri: 'https://example/datasets/churn.csv' },
        at,
      }),
    );
    const input = buildEvidenceActivity.input.parse({
      runId: 'run-evidence',
      pipeline: 'churn',
      evaluationReport: { uri: stored.uri, sha256: stored.sha256 },
    });
    const runBefore = await services.runs.get('churn', 'run-evidence');
    const reportsBefore = await blobsUnder(resources.blobContainers.reports, 'evaluations');

    const first = await buildEvidence(services)(input);
    const again = await buildEvidence(services)(input);
    expect(Object.keys(first).length).toBeGreaterThan(0);
    expect(buildEvidenceActivity.output.parse(first)).toEqual(first);
    expect(again).toEqual(first);
    expect(await services.runs.get('churn', 'run-evidence')).toEqual(runBefore);
    expect(await blobsUnder(resources.blobContainers.reports, 'evaluations')).toEqual(reportsBefore);
  });

  it('cancelTraining: a second cancel of a job finds it ended and writes nothing; checkTraining twice reads the same', async () => {
    const data = syntheticClassification({ rows: 40_000, features: 8, seed: 7 });
    const stored = await services.artifacts.putContentAddressed(
      resources.blobContainers.datasets,
      columnarBytes(data),
    );
    const { jobId } = await submitTraining(trainingDeps(services))(
      submitTrainingActivity.input.parse({
        runId: 'run-cancel',
        spec: {
          algorithm: 'gradient_boosting',
          target: 'label',
          features: data.columns.filter((c) => c.name !== 'label').map((c) => c.name),
        },
        dataset: { uri: stored.uri, sha256: stored.sha256 },
      }),
    );
    const cancel = cancelTraining(services);
    const check = checkTraining(services);
    await expect(cancel({ jobId, backend: 'local' })).resolves.toEqual({ jobId });
    // cancel returns when the worker has exited; the backend records its end just after (the
    // run's monitor polls until then).
    await local?.whenEnded(jobId);
    const stateAfterFirst = (await check({ jobId, backend: 'local' })).state;
    const afterFirst = await blobsUnder(resources.blobContainers.jobs, `${jobId}/`);
    // Canceled, or completed first on a fast machine: either way it has ended and stays so.
    expect(['canceled', 'completed']).toContain(stateAfterFirst);

    await expect(cancel({ jobId, backend: 'local' })).resolves.toEqual({ jobId });
    expect(await blobsUnder(resources.blobContainers.jobs, `${jobId}/`)).toEqual(afterFirst);
    const first = await check({ jobId, backend: 'local' });
    const again = await check({ jobId, backend: 'local' });
    expect(first.state).toBe(stateAfterFirst);
    expect(again).toEqual(first);
    expect(await blobsUnder(resources.blobContainers.jobs, `${jobId}/`)).toEqual(afterFirst);
  });

  it('readApproval: twice gives the same snapshot and leaves the record untouched', async () => {
    const input = createApprovalActivity.input.parse({
      ...sampleApprovalInput({ runId: 'run-read' }),
      approvalId: 'run-read:approval',
      createdAt: '2026-03-01T09:00:00.000Z',
    });
    await createApproval({ store: services.approvals })(input);
    const before = await services.approvals.getRecord('run-read', 'run-read:approval');
    const read = readApproval({ store: services.approvals });
    const first = await read({ runId: 'run-read', approvalId: 'run-read:approval' });
    const again = await read({ runId: 'run-read', approvalId: 'run-read:approval' });
    expect(first).toMatchObject({ status: 'pending', decisions: [] });
    expect(again).toEqual(first);
    expect(await services.approvals.getRecord('run-read', 'run-read:approval')).toEqual(before);
  });
});
