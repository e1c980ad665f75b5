/**
 * Issue 13 on the Cosmos DB emulator, activity by activity: each runs twice and leaves the same
 * state, the approval slot is race-free, an approval is consumed by one deployment, and
 * reconciliation ends a run whose orchestration is gone (closing its approval, freeing its slot).
 */
import { beginRun } from '../../../activities/beginRun';
import { deployModel } from '../../../activities/deployModel';
import { finishRun } from '../../../activities/finishRun';
import { reserveApproval } from '../../../activities/reserveApproval';
import { closeRecord, newApprovalRecord } from '../../../lib/approval/record';
import { approvalInstanceId } from '../../../lib/contracts/orchestrations';
import { ApprovalSlots } from '../../../lib/approval/slot';
import { ApprovalStore } from '../../../lib/approval/store';
import { ModelRegistry } from '../../../lib/registry/registry';
import type { OrchestrationState } from '../../../lib/runs/reconcile';
import { RECONCILE_GRACE_MS, reconcileRun, reconcileRuns } from '../../../lib/runs/reconcile';
import { RunStore } from '../../../lib/runs/store';
import type { CosmosStore } from '../../../lib/storage';
import { sampleApprovalInput } from '../../support/approvalSample';
import { startCosmosStore } from '../../support/emulators';
import { sampleRunDocument } from '../../support/runSample';

const T0 = new Date('2026-03-01T12:00:00.000Z');
const DATASET = 'd'.repeat(64);
const digest = (n: number) => n.toString(16).repeat(64).slice(0, 64);

describe('issue 13 on the Cosmos emulator: runs, approvals, slots', () => {
  let emulator: { cosmos: CosmosStore; stop(): Promise<void> };
  let cosmos: CosmosStore;
  let runs: RunStore;
  let approvals: ApprovalStore;
  let slots: ApprovalSlots;
  let registry: ModelRegistry;

  const newRun = async (id: string, pipeline: string, at = T0) =>
    (await runs.create(sampleRunDocument(id, pipeline, at.toISOString()))).run;
  const pendingApproval = async (runId: string, pipeline: string, version = 1) => {
    const rec = newApprovalRecord(
      approvalInstanceId(runId),
      sampleApprovalInput({
        runId,
        pipeline,
        candidate: {
          modelName: pipeline,
          modelVersion: version,
          modelDigest: digest(version),
          datasetDigest: DATASET,
        },
      }),
      T0,
    );
    await approvals.createRecord(rec);
    return rec;
  };
  const register = (model: string, n: number) =>
    registry.registerVersion({
      modelName: model,
      modelDigest: digest(n),
      artifactUri: `http://127.0.0.1/models/${n}`,
      datasetDigest: DATASET,
      metrics: {},
      trainingSpec: {},
      algorithm: 'ridge',
      runId: `run-${n}`,
    });

  beforeAll(async () => {
    emulator = await startCosmosStore();
    cosmos = emulator.cosmos;
    runs = new RunStore(cosmos);
    approvals = new ApprovalStore(cosmos.container('approvals'));
    slots = new ApprovalSlots(cosmos);
    registry = new ModelRegistry(cosmos.container('models'));
  });
  afterAll(async () => {
    await emulator?.stop();
  });

  it('item 2: beginRun run twice by one execution accepts both times; any other execution is refused', async () => {
    await newRun('r-begin', 'p-begin');
    const input = {
      runId: 'r-begin',
      pipeline: 'p-begin',
      instanceId: 'r-begin',
      executionId: 'exec-1',
      at: T0.toISOString(),
    };
    expect(await beginRun({ runs })(input)).toEqual({ accepted: true });
    const once = await runs.get('p-begin', 'r-begin');
    expect(await beginRun({ runs })(input)).toEqual({ accepted: true });
    expect(await runs.get('p-begin', 'r-begin')).toEqual(once);
    expect(once?.execution).toEqual({ instanceId: 'r-begin', executionId: 'exec-1', at: T0.toISOString() });

    for (const other of [
      { ...input, executionId: 'exec-2' }, // restarted in place
      { ...input, instanceId: 'a1b2c3', executionId: 'exec-3' }, // restarted under a new instance id
    ]) {
      const refused = await beginRun({ runs })(other);
      expect(refused.accepted).toBe(false);
      expect(refused.reason).toMatch(/already ran as execution exec-1 of instance r-begin/);
    }
    expect(await runs.get('p-begin', 'r-begin')).toEqual(once);
  });

  it('item 2: an approval is consumed by exactly one deployment; a replay of it is the same deployment', async () => {
    const model = 'consumed';
    const v1 = (await register(model, 1)).version;
    const rec = await pendingApproval('r-consume', model, v1.version);
    await approvals.updateRecord('r-consume', rec.id, (r) =>
      closeRecord(r, 'approved', ['Approved by alice.'], T0),
    );
    const deps = { approvals, registry, recordOnRun: async () => true, now: () => T0 };
    const input = {
      runId: 'r-consume',
      pipeline: model,
      approvalId: rec.id,
      deploymentId: 'exec-1',
      candidate: rec.candidate,
      expectedProduction: null,
    };
    const first = await deployModel(deps)(input);
    const replay = await deployModel(deps)(input);
    expect(first).toMatchObject({ version: 1, moved: true });
    expect(replay).toMatchObject({ version: 1, moved: false, aliasMoveSeq: first.aliasMoveSeq });
    expect((await approvals.getRecord('r-consume', rec.id))?.consumedBy).toEqual({
      deploymentId: 'exec-1',
      runId: 'r-consume',
      at: T0.toISOString(),
    });

    // Production moves on (another approved run); a restarted run comes back with the old approval.
    await register(model, 2);
    await registry.moveAlias({
      modelName: model,
      alias: 'production',
      to: 2,
      by: 'approval:other',
      reason: 'x',
      approvalRef: 'other',
    });
    await expect(
      deployModel(deps)({ ...input, deploymentId: 'exec-2', expectedProduction: 2 }),
    ).rejects.toMatchObject({
      code: 'approval_consumed',
    });
    expect((await registry.getHead(model))?.aliases.production?.version).toBe(2);
  });

  it('item 2: an approval used before consumedBy existed is recognised by its move in the alias history', async () => {
    const model = 'legacy';
    const v1 = (await register(model, 1)).version;
    const rec = await pendingApproval('r-legacy', model, v1.version);
    await approvals.updateRecord('r-legacy', rec.id, (r) => closeRecord(r, 'approved', ['ok'], T0));
    await registry.moveAlias({
      modelName: model,
      alias: 'production',
      to: 1,
      by: 'x',
      reason: 'deployed before',
      runId: 'r-legacy',
      approvalRef: rec.id,
    });
    await register(model, 2);
    await registry.moveAlias({
      modelName: model,
      alias: 'production',
      to: 2,
      by: 'y',
      reason: 'later',
      approvalRef: 'other',
    });
    const deps = { approvals, registry, recordOnRun: async () => true, now: () => T0 };
    await expect(
      deployModel(deps)({
        runId: 'r-legacy',
        pipeline: model,
        approvalId: rec.id,
        deploymentId: 'exec-new',
        candidate: rec.candidate,
        expectedProduction: 2,
      }),
    ).rejects.toMatchObject({ code: 'approval_consumed' });
    expect((await registry.getHead(model))?.aliases.production?.version).toBe(2);
  });

  it('five concurrent runs of one pipeline: exactly one claims the approval slot; a retry of the winner is granted again', async () => {
    const pipeline = 'p-five';
    const ids = [1, 2, 3, 4, 5].map((i) => `r-five-${i}`);
    for (const id of ids) await newRun(id, pipeline);
    const reserve = reserveApproval({ slots, runs, registry });
    const input = (runId: string) => ({
      runId,
      pipeline,
      modelName: 'no-such-model',
      championVersion: null,
      at: T0.toISOString(),
    });
    const results = await Promise.all(ids.map((id) => reserve(input(id))));
    const granted = ids.filter((_, i) => results[i]!.granted);
    expect(granted).toHaveLength(1);
    const winner = granted[0]!;
    for (const r of results.filter((x) => !x.granted)) {
      expect(r).toEqual({
        granted: false,
        holder: winner,
        reason: `run ${winner} of this pipeline is awaiting approval or deploying; a pipeline asks for one approval at a time. Start a new run when it has ended.`,
      });
    }
    expect(await reserve(input(winner))).toEqual({ granted: true });
    expect(await slots.holder(pipeline)).toBe(winner);

    // The winner ends without releasing (a crash): the next claim takes the slot over.
    await runs.update(pipeline, winner, (r) => ({ ...r, status: 'failed' }));
    const next = ids.find((id) => id !== winner)!;
    expect(await reserve(input(next))).toEqual({ granted: true });
    expect(await slots.holder(pipeline)).toBe(next);
  });

  it('a run whose champion is no longer production stops as superseded before approval, leaving the slot free', async () => {
    const model = 'p-moved';
    await register(model, 1);
    await register(model, 2);
    await registry.moveAlias({
      modelName: model,
      alias: 'production',
      to: 2,
      by: 'approval:a',
      reason: 'x',
      approvalRef: 'a',
    });
    await newRun('r-moved', model);
    const out = await reserveApproval({ slots, runs, registry })({
      runId: 'r-moved',
      pipeline: model,
      modelName: model,
      championVersion: 1,
      at: T0.toISOString(),
    });
    expect(out).toEqual({
      granted: false,
      reason: `production of ${model} moved to version 2 after this run was evaluated against version 1; start a new run to compare with what is in production now.`,
    });
    expect(await slots.holder(model)).toBeNull();
  });

  it('item 5: a run that ends (fails, stops) without a decision withdraws its pending approval and frees its slot; twice is once', async () => {
    const pipeline = 'p-finish';
    await newRun('r-finish', pipeline);
    await pendingApproval('r-finish', pipeline);
    expect((await slots.claim(pipeline, 'r-finish', T0.toISOString(), async () => true)).granted).toBe(true);
    const input = {
      runId: 'r-finish',
      pipeline,
      status: 'failed' as const,
      stopReason: 'error' as const,
      reason: 'deploy failed: registry unavailable',
      at: '2026-03-01T12:05:00.000Z',
    };
    const finish = finishRun({ runs, approvals, slots });
    expect(await finish(input)).toEqual({ status: 'failed' });
    const record = await approvals.getRecord('r-finish', approvalInstanceId('r-finish'));
    expect(record).toMatchObject({
      status: 'withdrawn',
      closedAt: input.at,
      withdrawn: { reason: 'error', at: input.at },
    });
    expect(record?.withdrawn?.message).toBe(
      'This run ended (failed) on 2026-03-01 12:05:00 UTC: deploy failed: registry unavailable; no decision can be recorded.',
    );
    expect(await slots.holder(pipeline)).toBeNull();
    const run = await runs.get(pipeline, 'r-finish');
    expect(await finish(input)).toEqual({ status: 'failed' });
    expect(await runs.get(pipeline, 'r-finish')).toEqual(run);
    expect(await approvals.getRecord('r-finish', approvalInstanceId('r-finish'))).toEqual(record);
  });

  it('reconciliation: a run whose orchestration was terminated ends with orchestration_terminated, its approval withdrawn and slot freed; twice is once', async () => {
    const pipeline = 'p-recon';
    const run = await runs.update(pipeline, (await newRun('r-recon', pipeline)).id, (r) => ({
      ...r,
      status: 'waiting_for_approval',
    }));
    await pendingApproval('r-recon', pipeline);
    expect((await slots.claim(pipeline, 'r-recon', T0.toISOString(), async () => true)).granted).toBe(true);
    const states: Record<string, OrchestrationState | undefined> = {
      'r-recon': { runtimeStatus: 'Terminated', output: 'pulled by ops' },
    };
    const at = new Date(T0.getTime() + 60_000);
    const deps = { runs, approvals, slots, orchestration: async (id: string) => states[id], now: () => at };

    const ended = await reconcileRun(deps, run);
    expect(ended).toMatchObject({
      status: 'canceled',
      stopReason: 'orchestration_terminated',
      reason: 'the orchestration was terminated from outside: pulled by ops',
      endedAt: at.toISOString(),
    });
    const again = await reconcileRun(deps, run);
    expect(again).toEqual(ended);
    const record = await approvals.getRecord('r-recon', approvalInstanceId('r-recon'));
    expect(record).toMatchObject({ status: 'withdrawn', withdrawn: { reason: 'orchestration_terminated' } });
    expect(record?.withdrawn?.message).toMatch(/no decision can be recorded\.$/);
    expect(await slots.holder(pipeline)).toBeNull();
  });

  it('reconciliation sweep: running orchestrations are left alone, a missing one only after the grace period', async () => {
    const pipeline = 'p-sweep';
    const alive = await newRun('r-alive', pipeline);
    const young = await newRun('r-young', pipeline, T0);
    const states: Record<string, OrchestrationState | undefined> = {
      'r-alive': { runtimeStatus: 'Running' },
    };
    const deps = (now: Date) => ({
      runs,
      approvals,
      slots,
      orchestration: async (id: string) => states[id],
      now: () => now,
    });

    const early = await reconcileRuns(deps(new Date(T0.getTime() + 1_000)), [alive, young]);
    expect(early).toEqual({ checked: 2, ended: [], errors: [] });
    const late = await reconcileRuns(deps(new Date(T0.getTime() + RECONCILE_GRACE_MS + 1_000)), [
      alive,
      young,
    ]);
    expect(late.ended).toEqual([{ id: 'r-young', stopReason: 'orchestration_missing' }]);
    expect((await runs.get(pipeline, 'r-alive'))?.status).toBe('queued');
    expect(await runs.get(pipeline, 'r-young')).toMatchObject({
      status: 'failed',
      stopReason: 'orchestration_missing',
    });
    expect((await runs.listActive()).map((r) => r.id)).toContain('r-alive');
    expect((await runs.listActive()).map((r) => r.id)).not.toContain('r-young');
  });
});
