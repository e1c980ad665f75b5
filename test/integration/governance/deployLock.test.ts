/**
 * Issue 21, the per-model deployment lock on the Cosmos emulator: of concurrent takes exactly one
 * wins; a run that does not hold it cannot free it; a holder whose run has ended is taken over;
 * different models never wait for each other; the takeDeploymentLock activity twice is once; and
 * every ending of the holder (finishRun, cancel's endRun, reconciliation) frees it.
 */
import { finishRun } from '../../../activities/finishRun';
import { takeDeploymentLock } from '../../../activities/takeDeploymentLock';
import { ApprovalSlots } from '../../../lib/approval/slot';
import { ApprovalStore } from '../../../lib/approval/store';
import { DeploymentLocks, type LockHolder } from '../../../lib/registry/deployLock';
import { endRun, withdrawalMessage } from '../../../lib/runs/ending';
import type { OrchestrationState } from '../../../lib/runs/reconcile';
import { RECONCILE_GRACE_MS, reconcileRun } from '../../../lib/runs/reconcile';
import { RunStore } from '../../../lib/runs/store';
import type { CosmosStore } from '../../../lib/storage';
import { startCosmosStore } from '../../support/emulators';
import { sampleRunDocument } from '../../support/runSample';

const T0 = new Date('2026-03-01T12:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000).toISOString();
const alive = async () => true;

describe('issue 21 on the Cosmos emulator: the deployment lock of a model', () => {
  let emulator: { cosmos: CosmosStore; stop(): Promise<void> };
  let cosmos: CosmosStore;
  let locks: DeploymentLocks;
  let runs: RunStore;
  let approvals: ApprovalStore;
  let slots: ApprovalSlots;

  const newRun = async (id: string, pipeline: string) =>
    (await runs.create(sampleRunDocument(id, pipeline, T0.toISOString()))).run;

  beforeAll(async () => {
    emulator = await startCosmosStore();
    cosmos = emulator.cosmos;
    locks = new DeploymentLocks(cosmos);
    runs = new RunStore(cosmos);
    approvals = new ApprovalStore(cosmos.container('approvals'));
    slots = new ApprovalSlots(cosmos);
  });
  afterAll(async () => {
    await emulator?.stop();
  });

  it('of twelve concurrent takes of one model exactly one wins; the others name the winner', async () => {
    const who = (i: number): LockHolder => ({ runId: `race-${i}`, pipeline: `p${i % 3}` });
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) => locks.take('m-race', who(i), at(i), alive)),
    );
    const winners = outcomes.flatMap((o, i) => (o.granted ? [who(i)] : []));
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    for (const o of outcomes) {
      if (!o.granted) expect(o.holder).toEqual(winner);
    }
    expect(await locks.holder('m-race')).toMatchObject(winner);
    // The winner asking again (a retried activity) is granted; a loser still is not.
    expect(await locks.take('m-race', winner, at(20), alive)).toEqual({ granted: true });
    const loser = who(winner.runId === 'race-0' ? 1 : 0);
    expect(await locks.take('m-race', loser, at(21), alive)).toEqual({
      granted: false,
      holder: winner,
      takenAt: expect.any(String),
    });
  });

  it('concurrent releases and takes after a release: still exactly one holder', async () => {
    await locks.take('m-race2', { runId: 'first', pipeline: 'p' }, at(0), alive);
    const [, ...takes] = await Promise.all([
      locks.release('m-race2', 'first'),
      ...Array.from({ length: 6 }, (_, i) =>
        locks.take('m-race2', { runId: `next-${i}`, pipeline: 'p' }, at(1), async (h) => h.runId === 'first'),
      ),
    ]);
    const granted = takes.filter((t) => t.granted);
    // Each take saw either the first holder (alive: refused), a free lock, or another winner.
    expect(granted.length).toBeLessThanOrEqual(1);
    const holder = await locks.holder('m-race2');
    if (granted.length === 1) expect(holder?.runId).toMatch(/^next-/);
    else expect(holder).toBeNull();
  });

  it('a release by a run that does not hold the lock is refused and changes nothing', async () => {
    const holder = { runId: 'holder', pipeline: 'p-a' };
    expect((await locks.take('m-release', holder, at(0), alive)).granted).toBe(true);
    expect(await locks.release('m-release', 'someone-else')).toBe(false);
    expect(await locks.holder('m-release')).toEqual({ ...holder, takenAt: at(0) });
    expect(await locks.release('m-never-locked', 'holder')).toBe(false);
    // The holder's release frees it, once: a second release is a no-op.
    expect(await locks.release('m-release', 'holder')).toBe(true);
    expect(await locks.release('m-release', 'holder')).toBe(false);
    expect(await locks.holder('m-release')).toBeNull();
    // A free lock is taken by the next run without a takeover.
    expect(await locks.take('m-release', { runId: 'next', pipeline: 'p-b' }, at(5), alive)).toEqual({
      granted: true,
    });
  });

  it('a holder whose run has ended is taken over (and named); a live one is not', async () => {
    const crashed = { runId: 'crashed', pipeline: 'p-a' };
    expect((await locks.take('m-stale', crashed, at(0), alive)).granted).toBe(true);
    const asked: LockHolder[] = [];
    const judge = async (h: LockHolder) => {
      asked.push(h);
      return false;
    };
    expect(await locks.take('m-stale', { runId: 'waiter', pipeline: 'p-b' }, at(9), judge)).toEqual({
      granted: true,
      tookOverFrom: crashed,
    });
    expect(asked).toEqual([crashed]);
    expect(await locks.holder('m-stale')).toEqual({ runId: 'waiter', pipeline: 'p-b', takenAt: at(9) });
    // The run that lost the lock cannot free its taker's.
    expect(await locks.release('m-stale', 'crashed')).toBe(false);
    expect((await locks.take('m-stale', { runId: 'third', pipeline: 'p-c' }, at(10), alive)).granted).toBe(
      false,
    );
  });

  it('different models never wait for each other', async () => {
    expect((await locks.take('m-one', { runId: 'r1', pipeline: 'p' }, at(0), alive)).granted).toBe(true);
    expect((await locks.take('m-two', { runId: 'r2', pipeline: 'p' }, at(0), alive)).granted).toBe(true);
    expect((await locks.holder('m-one'))?.runId).toBe('r1');
    expect((await locks.holder('m-two'))?.runId).toBe('r2');
  });

  it('takeDeploymentLock twice is once: the run names the model, the lock is its own, a retry is granted again', async () => {
    await newRun('r-take', 'p-take');
    await newRun('r-wait', 'p-other');
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    const input = { runId: 'r-take', pipeline: 'p-take', modelName: 'm-take', at: at(0) };
    expect(await take(input)).toEqual({ granted: true });
    const once = await runs.get('p-take', 'r-take');
    expect(await take({ ...input, at: at(30) })).toEqual({ granted: true });
    const twice = await runs.get('p-take', 'r-take');
    expect(twice?.deploymentLock).toEqual({ modelName: 'm-take', at: at(0) });
    expect(twice).toEqual(once);
    expect(await locks.holder('m-take')).toEqual({ runId: 'r-take', pipeline: 'p-take', takenAt: at(0) });

    // Another pipeline's run of the same model waits, told who holds it.
    const waiting = await take({ runId: 'r-wait', pipeline: 'p-other', modelName: 'm-take', at: at(1) });
    expect(waiting).toMatchObject({ granted: false, holder: { runId: 'r-take', pipeline: 'p-take' } });
    expect(waiting.reason).toMatch(
      /^waiting for the deployment lock of m-take: run r-take of p-take is deploying it/,
    );

    // The holder ends (finishRun): the lock is free and the waiter gets it, no takeover.
    await finishRun({ runs, approvals, slots, deployLocks: locks })({
      runId: 'r-take',
      pipeline: 'p-take',
      status: 'succeeded',
      at: at(40),
    });
    expect(await locks.holder('m-take')).toBeNull();
    expect(await take({ runId: 'r-wait', pipeline: 'p-other', modelName: 'm-take', at: at(41) })).toEqual({
      granted: true,
    });
  });

  it('takeDeploymentLock refuses a run being canceled or ended, and takes nothing', async () => {
    const run = await newRun('r-gone', 'p-gone');
    await runs.update(run.pipeline, run.id, (r) => ({ ...r, cancelRequested: true }));
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    await expect(
      take({ runId: 'r-gone', pipeline: 'p-gone', modelName: 'm-gone', at: at(0) }),
    ).rejects.toMatchObject({ code: 'run_canceled' });
    expect(await locks.holder('m-gone')).toBeNull();
  });

  it('a canceled holder frees the lock (endRun, as cancelRunNow ends it)', async () => {
    const run = await newRun('r-cancel', 'p-cancel');
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    expect(
      (await take({ runId: run.id, pipeline: run.pipeline, modelName: 'm-cancel', at: at(0) })).granted,
    ).toBe(true);
    await endRun(
      { runs, approvals, slots, deployLocks: locks },
      run,
      { status: 'canceled', stopReason: 'canceled', reason: 'canceled by ana', at: at(5) },
      {
        withdrawal: () => ({
          reason: 'canceled',
          message: withdrawalMessage('canceled', at(5), { by: 'ana' }),
          by: 'ana',
          at: at(5),
        }),
      },
    );
    expect(await locks.holder('m-cancel')).toBeNull();
  });

  it('reconciliation of a holder whose orchestration is gone frees the lock', async () => {
    const run = await newRun('r-lost', 'p-lost');
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    expect(
      (await take({ runId: run.id, pipeline: run.pipeline, modelName: 'm-lost', at: at(0) })).granted,
    ).toBe(true);
    const now = new Date(T0.getTime() + RECONCILE_GRACE_MS + 60_000);
    const states: Record<string, OrchestrationState | undefined> = { 'r-lost': undefined };
    const ended = await reconcileRun(
      { runs, approvals, slots, deployLocks: locks, orchestration: async (id) => states[id], now: () => now },
      (await runs.get(run.pipeline, run.id))!,
    );
    expect(ended).toMatchObject({ status: 'failed', stopReason: 'orchestration_missing' });
    expect(await locks.holder('m-lost')).toBeNull();
  });

  it('a holder that ended without releasing (no deployLocks on its ending) is taken over by the activity', async () => {
    const run = await newRun('r-crash', 'p-crash');
    await newRun('r-after', 'p-after');
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    expect(
      (await take({ runId: run.id, pipeline: run.pipeline, modelName: 'm-crash', at: at(0) })).granted,
    ).toBe(true);
    // Ended by a path that did not release (as a crash between the two writes would leave it).
    await endRun(
      { runs, approvals, slots },
      run,
      { status: 'failed', stopReason: 'error', reason: 'host lost', at: at(3) },
      { withdrawal: () => undefined },
    );
    expect((await locks.holder('m-crash'))?.runId).toBe('r-crash');
    const out = await take({ runId: 'r-after', pipeline: 'p-after', modelName: 'm-crash', at: at(4) });
    expect(out).toMatchObject({ granted: true, tookOverFrom: { runId: 'r-crash', pipeline: 'p-crash' } });
    expect(out.reason).toMatch(/took over the deployment lock of m-crash from run r-crash/);
    expect((await locks.holder('m-crash'))?.runId).toBe('r-after');
  });
});
