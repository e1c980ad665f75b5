import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../lib/config';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { submitDecision } from '../../../lib/approval/service';
import { signApprovalToken } from '../../../lib/approval/token';
import { versionId } from '../../../lib/registry/records';
import { useEmulators } from '../../support/emulatorSuite';
import { sampleRecord } from '../../support/approvalSample';

/**
 * A decision is taken only while the registry still holds the candidate the approval names: the
 * approval deps the app builds (createServices) check the version's digests before recording a
 * decision, so reviewers cannot approve evidence that no longer describes the registered model.
 * On the emulators, with the app's own services.
 */

const T0 = new Date('2026-03-01T09:01:14.000Z');
const DATASET = 'd'.repeat(64);

describe('decisions on a candidate the registry no longer holds (services on the emulators)', () => {
  const suite = useEmulators({ blob: true });
  let services: Services;
  const clock = new Date(T0.getTime() + 3_600_000);
  let n = 0;

  beforeAll(async () => {
    services = await createServices(
      loadConfig({
        COSMOS_ENDPOINT: suite.emulator.endpoint,
        COSMOS_KEY: suite.emulator.key,
        ARTIFACT_STORAGE_CONNECTION: suite.blob.connectionString,
        APPROVAL_SIGNING_KEYS: JSON.stringify({ k1: randomBytes(32).toString('base64') }),
      }),
      { prepare: false, now: () => clock },
    );
    await services.artifacts.ensureContainers();
  });
  afterAll(() => services?.cosmos.client.dispose());

  /** A registered version and a pending approval for exactly it, requested by carol. */
  async function approvalFor(modelName: string) {
    const { version } = await services.registry.registerVersion({
      modelName,
      modelDigest: `${(++n).toString(16).padStart(2, '0')}`.repeat(32),
      artifactUri: `http://127.0.0.1/models/${modelName}.json`,
      datasetDigest: DATASET,
      metrics: { roc_auc: 0.8 },
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: `run-${modelName}`,
    });
    const record = sampleRecord(T0, {
      runId: `run-${modelName}`,
      candidate: {
        modelName,
        modelVersion: version.version,
        modelDigest: version.modelDigest,
        datasetDigest: DATASET,
      },
    });
    await services.approvals.createRecord(record);
    return record;
  }

  async function decide(record: Awaited<ReturnType<typeof approvalFor>>, reviewer: string) {
    const deps = await services.approval();
    const token = signApprovalToken(deps.keyring, {
      runId: record.runId,
      approvalId: record.id,
      reviewer,
      expiresAt: new Date(record.deadline),
    });
    return submitDecision(deps, token, {
      decision: 'approve',
      modelDigest: record.candidate.modelDigest,
      datasetDigest: record.candidate.datasetDigest,
    });
  }

  it('records a decision while the registry holds the approved digests', async () => {
    const record = await approvalFor('held');
    const { decision } = await decide(record, 'alice@example.com');
    expect(decision).toMatchObject({ reviewer: 'alice@example.com', decision: 'approve' });
    expect((await services.approvals.readState(record.runId, record.id))?.decisions).toHaveLength(1);
  });

  it('records a decision on a version the registry does not hold (deploy refuses that version anyway)', async () => {
    const record = sampleRecord(T0, {
      runId: 'run-unregistered',
      candidate: {
        modelName: 'unregistered',
        modelVersion: 7,
        modelDigest: 'e'.repeat(64),
        datasetDigest: DATASET,
      },
    });
    await services.approvals.createRecord(record);
    const { decision } = await decide(record, 'alice@example.com');
    expect(decision).toMatchObject({ reviewer: 'alice@example.com', decision: 'approve' });
  });

  it('refuses 409 candidate_changed, recording nothing, once the version record names other bytes', async () => {
    const record = await approvalFor('swapped');
    const models = services.cosmos.container('models');
    const item = models.item(versionId(record.candidate.modelVersion), 'swapped');
    const { resource } = await item.read<Record<string, unknown>>();
    await item.replace({ ...resource!, modelDigest: 'f'.repeat(64) });

    await expect(decide(record, 'alice@example.com')).rejects.toMatchObject({
      code: 'candidate_changed',
      status: 409,
      message: expect.stringContaining('swapped v1'),
    });
    expect((await services.approvals.readState(record.runId, record.id))?.decisions).toEqual([]);
  });
});
