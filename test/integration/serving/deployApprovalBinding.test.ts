import { ApprovalStore } from '../../../lib/approval/store';
import { closeRecord } from '../../../lib/approval/record';
import type { Container } from '@azure/cosmos';
import type { Candidate } from '../../../lib/contracts/approvalRecord';
import { NonRetriableError } from '../../../lib/errors';
import { versionId } from '../../../lib/registry/records';
import { ModelRegistry } from '../../../lib/registry/registry';
import { deployModel } from '../../../activities/deployModel';
import type { DeployDeps } from '../../../activities/deployModel';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startCosmos } from '../../support/emulators';
import { sampleRecord } from '../../support/approvalSample';

/**
 * A deployment moves production only for the exact candidate the approval was given for. The
 * registry's own digest check cannot stand in for this: when the approval names another digest,
 * version or model than a candidate the registry does hold, only the approval comparison refuses.
 * Each case checks that nothing was written: production did not move and the approval was not
 * consumed (it can still be used for the candidate it was given for).
 */

const DATASET = 'd'.repeat(64);
const OTHER = 'e'.repeat(64);

describe('deployModel binds the approval to the reviewed digests (Cosmos emulator)', () => {
  let cosmos: CosmosEmulator;
  let registry: ModelRegistry;
  let models: Container;
  let approvals: ApprovalStore;
  let deps: DeployDeps;
  let recorded: Record<string, unknown>[];

  async function register(modelName: string, digestByte: string, runId: string) {
    return (
      await registry.registerVersion({
        modelName,
        modelDigest: digestByte.repeat(32),
        artifactUri: `http://127.0.0.1/models/${modelName}/${digestByte}.json`,
        datasetDigest: DATASET,
        metrics: { roc_auc: 0.8 },
        trainingSpec: {},
        algorithm: 'logistic_regression',
        runId,
      })
    ).version;
  }

  /** An approval given for `approved`, closed with `status`. */
  async function approval(runId: string, approved: Candidate, status: 'approved' | 'rejected' | 'expired') {
    const rec = sampleRecord(undefined, { runId, candidate: approved });
    await approvals.createRecord(rec);
    await approvals.updateRecord(runId, rec.id, (r) =>
      closeRecord(r, status, [`${status} by alice, bob.`], new Date()),
    );
    return rec.id;
  }

  async function expectNothingWritten(modelName: string, runId: string, approvalId: string) {
    expect((await registry.getHead(modelName))?.aliases.production).toBeUndefined();
    expect((await registry.getModel(modelName))?.aliasHistory).toEqual([]);
    expect((await approvals.getRecord(runId, approvalId))?.consumedBy).toBeUndefined();
    expect(recorded).toEqual([]);
  }

  beforeAll(async () => {
    cosmos = await startCosmos();
    models = await cosmosContainer(cosmos, 'models');
    registry = new ModelRegistry(models);
    approvals = new ApprovalStore(await cosmosContainer(cosmos, 'approvals'));
  });
  afterAll(async () => {
    await cosmos.stop();
  });
  beforeEach(() => {
    recorded = [];
    deps = {
      approvals,
      registry,
      recordOnRun: async (_pipeline, _runId, deployment) => {
        recorded.push(deployment);
        return true;
      },
      now: () => new Date(),
    };
  });

  const deploy = (runId: string, approvalId: string, candidate: Candidate) =>
    deployModel(deps)({
      runId,
      pipeline: candidate.modelName,
      approvalId,
      candidate,
      expectedProduction: null,
      deploymentId: `deploy-${runId}`,
    });

  const candidateOf = (v: { modelName: string; version: number; modelDigest: string }): Candidate => ({
    modelName: v.modelName,
    modelVersion: v.version,
    modelDigest: v.modelDigest,
    datasetDigest: DATASET,
  });

  it('refuses a registered candidate whose model digest is not the approved one', async () => {
    const v1 = await register('bind-model', 'a1', 'run-m');
    const id = await approval('run-m', { ...candidateOf(v1), modelDigest: OTHER }, 'approved');
    const refused = deploy('run-m', id, candidateOf(v1));
    await expect(refused).rejects.toBeInstanceOf(NonRetriableError);
    await expect(refused).rejects.toMatchObject({ code: 'candidate_changed' });
    await expectNothingWritten('bind-model', 'run-m', id);
  });

  it('refuses a registered candidate whose dataset digest is not the approved one', async () => {
    const v1 = await register('bind-data', 'b1', 'run-d');
    const id = await approval('run-d', { ...candidateOf(v1), datasetDigest: OTHER }, 'approved');
    await expect(deploy('run-d', id, candidateOf(v1))).rejects.toMatchObject({ code: 'candidate_changed' });
    await expectNothingWritten('bind-data', 'run-d', id);
  });

  it('refuses another version than the approved one, even with the same digests', async () => {
    const v1 = await register('bind-version', 'c1', 'run-v');
    await register('bind-version', 'c2', 'run-v2');
    // The approval names version 2 with version 1's digests: the version alone differs.
    const id = await approval('run-v', { ...candidateOf(v1), modelVersion: 2 }, 'approved');
    await expect(deploy('run-v', id, candidateOf(v1))).rejects.toMatchObject({ code: 'candidate_changed' });
    await expectNothingWritten('bind-version', 'run-v', id);
  });

  it("refuses an approval given for another model's version", async () => {
    const mine = await register('bind-name', 'd1', 'run-n');
    await register('bind-other', 'd1', 'run-o');
    const id = await approval('run-n', { ...candidateOf(mine), modelName: 'bind-other' }, 'approved');
    await expect(deploy('run-n', id, candidateOf(mine))).rejects.toMatchObject({ code: 'candidate_changed' });
    await expectNothingWritten('bind-name', 'run-n', id);
  });

  it.each(['rejected', 'expired'] as const)('refuses an approval that closed %s', async (status) => {
    const v1 = await register(`bind-${status}`, status === 'rejected' ? 'e1' : 'f1', `run-${status}`);
    const id = await approval(`run-${status}`, candidateOf(v1), status);
    await expect(deploy(`run-${status}`, id, candidateOf(v1))).rejects.toMatchObject({
      code: 'not_approved',
      message: expect.stringContaining(status),
    });
    await expectNothingWritten(`bind-${status}`, `run-${status}`, id);
  });

  it('refuses an approval that does not exist', async () => {
    const v1 = await register('bind-missing', 'a9', 'run-x');
    await expect(deploy('run-x', 'run-x:approval', candidateOf(v1))).rejects.toMatchObject({
      code: 'approval_not_found',
    });
    expect((await registry.getHead('bind-missing'))?.aliases.production).toBeUndefined();
  });

  it("refuses when the registry's record of the version no longer holds the approved digest", async () => {
    const v1 = await register('bind-swapped', 'b7', 'run-s');
    const id = await approval('run-s', candidateOf(v1), 'approved');
    // Someone with write access to Cosmos points version 1 at other bytes after the review.
    const { resource } = await models.item(versionId(1), 'bind-swapped').read<Record<string, unknown>>();
    await models.item(versionId(1), 'bind-swapped').replace({ ...resource!, modelDigest: OTHER });
    await expect(deploy('run-s', id, candidateOf(v1))).rejects.toMatchObject({
      code: 'candidate_changed',
      message: expect.stringContaining(OTHER),
    });
    await expectNothingWritten('bind-swapped', 'run-s', id);
  });

  it('refuses an approved version the registry does not hold', async () => {
    const v1 = await register('bind-absent', 'b8', 'run-a');
    const ghost = { ...candidateOf(v1), modelVersion: 5 };
    const id = await approval('run-a', ghost, 'approved');
    await expect(deploy('run-a', id, ghost)).rejects.toMatchObject({ code: 'version_not_found' });
    await expectNothingWritten('bind-absent', 'run-a', id);
  });

  it('the same approval then deploys the exact candidate it was given for, once', async () => {
    const v1 = await register('bind-ok', 'a7', 'run-ok');
    const id = await approval('run-ok', candidateOf(v1), 'approved');
    const out = await deploy('run-ok', id, candidateOf(v1));
    expect(out).toMatchObject({ modelName: 'bind-ok', version: 1, moved: true, previous: null });
    expect((await registry.getHead('bind-ok'))?.aliases.production?.version).toBe(1);
    expect((await approvals.getRecord('run-ok', id))?.consumedBy).toMatchObject({
      deploymentId: 'deploy-run-ok',
    });
  });
});
