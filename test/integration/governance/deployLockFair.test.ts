/**
 * Fair deployment-lock waits on the Cosmos emulator (follow-up of issue 21): waiters are served in
 * the order they first asked, whichever of them asks first once the lock is free; a waiter whose
 * run ended loses its place (found by the next taker, or given back by its own ending); a waiter
 * that stopped asking (waiting for its deployment window) is passed over but keeps its place; and
 * every wait is two audit entries (began: holder run and reason; ended: outcome and seconds waited)
 * under the candidate's subject, written once each even when the audit write fails and the
 * activity is retried. The candidate's evidence pack lists the wait.
 */
import { finishRun } from '../../../activities/finishRun';
import { takeDeploymentLock } from '../../../activities/takeDeploymentLock';
import { ApprovalSlots } from '../../../lib/approval/slot';
import { ApprovalStore } from '../../../lib/approval/store';
import { AuditLog } from '../../../lib/audit/log';
import { renderEvidenceHtml } from '../../../lib/evidence/html';
import { buildEvidencePack } from '../../../lib/evidence/pack';
import type { AuditEvent, AuditSink } from '../../../lib/audit/log';
import type { LockHolder } from '../../../lib/registry/deployLock';
import {
  DeploymentLocks,
  LOCK_AWAY_MS,
  LOCK_WAIT_BEGAN,
  LOCK_WAIT_ENDED,
} from '../../../lib/registry/deployLock';
import { ModelRegistry } from '../../../lib/registry/registry';
import { endRun } from '../../../lib/runs/ending';
import { RunStore } from '../../../lib/runs/store';
import { useEmulators } from '../../support/emulatorSuite';
import { sampleRunDocument } from '../../support/runSample';

const T0 = Date.parse('2026-06-01T09:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const alive = async () => true;
const who = (runId: string, pipeline = 'p'): LockHolder => ({ runId, pipeline });

const suite = useEmulators();
let audit: AuditLog;
let locks: DeploymentLocks;
let runs: RunStore;
let approvals: ApprovalStore;
let slots: ApprovalSlots;

beforeAll(() => {
  const { cosmos } = suite;
  audit = new AuditLog(cosmos.container('audit'));
  locks = new DeploymentLocks(cosmos, { audit, now: () => new Date(T0 + 600_000) });
  runs = new RunStore(cosmos);
  approvals = new ApprovalStore(cosmos.container('approvals'), audit);
  slots = new ApprovalSlots(cosmos);
});

/** A run whose evaluate step registered `version` of its model. */
const newRun = async (id: string, pipeline: string, version?: number) => {
  const { run } = await runs.create(sampleRunDocument(id, pipeline, at(0)));
  if (version === undefined) return run;
  return runs.update(pipeline, id, (r) => ({
    ...r,
    steps: r.steps.map((s) =>
      s.name === 'evaluate'
        ? { ...s, status: 'succeeded' as const, outputs: { reportUri: 'x', modelVersion: version } }
        : s,
    ),
  }));
};

const lockEntries = async (subject: string) =>
  (await audit.bySubject(subject)).filter((e) => e.kind.startsWith('deployment_lock.'));

describe('deployment lock waits on the Cosmos emulator: served in arrival order, audited', () => {
  it('three waiters are served in the order they first asked, whoever asks first once it is free', async () => {
    expect(await locks.take('m-fifo', who('holder'), at(0), alive)).toEqual({ granted: true });
    for (const [i, w] of ['w1', 'w2', 'w3'].entries()) {
      expect(await locks.take('m-fifo', who(w), at(10 * (i + 1)), alive)).toEqual({
        granted: false,
        holder: who('holder'),
        takenAt: at(0),
      });
    }
    expect((await locks.waiting('m-fifo')).map((w) => w.runId)).toEqual(['w1', 'w2', 'w3']);

    expect(await locks.release('m-fifo', 'holder')).toBe(true);
    // The last to arrive asks first after the release: refused, naming the first in line.
    expect(await locks.take('m-fifo', who('w3'), at(41), alive)).toEqual({
      granted: false,
      holder: who('w1'),
      ahead: true,
    });
    expect(await locks.take('m-fifo', who('w2'), at(42), alive)).toMatchObject({
      holder: who('w1'),
      ahead: true,
    });
    // A newcomer that never waited does not jump the line either.
    expect(await locks.take('m-fifo', who('new'), at(43), alive)).toMatchObject({ holder: who('w1') });
    expect(await locks.take('m-fifo', who('w1'), at(44), alive)).toEqual({ granted: true });
    expect((await locks.waiting('m-fifo')).map((w) => w.runId)).toEqual(['w2', 'w3', 'new']);

    await locks.release('m-fifo', 'w1');
    expect(await locks.take('m-fifo', who('new'), at(50), alive)).toMatchObject({
      holder: who('w2'),
      ahead: true,
    });
    expect(await locks.take('m-fifo', who('w3'), at(51), alive)).toMatchObject({
      holder: who('w2'),
      ahead: true,
    });
    expect(await locks.take('m-fifo', who('w2'), at(52), alive)).toEqual({ granted: true });
    await locks.release('m-fifo', 'w2');
    expect(await locks.take('m-fifo', who('w3'), at(60), alive)).toEqual({ granted: true });
    expect((await locks.waiting('m-fifo')).map((w) => w.runId)).toEqual(['new']);
  });

  it('a waiter whose run ended loses its place to the next one; the ending is audited', async () => {
    await locks.take('m-gone', who('holder'), at(0), alive);
    await locks.take('m-gone', who('dead'), at(10), alive);
    await locks.take('m-gone', who('next'), at(20), alive);
    await locks.release('m-gone', 'holder');
    const judged: string[] = [];
    const judge = async (h: LockHolder) => {
      judged.push(h.runId);
      return h.runId !== 'dead';
    };
    expect(await locks.take('m-gone', who('next'), at(30), judge)).toEqual({ granted: true });
    expect(judged).toEqual(['dead']);
    expect(await locks.waiting('m-gone')).toEqual([]);
    const ended = (await lockEntries('model/m-gone')).filter((e) => e.kind === LOCK_WAIT_ENDED);
    expect(ended.map((e) => [e.data.runId, e.data.outcome, e.data.waitedSeconds])).toEqual([
      ['dead', 'run_ended', 20],
      ['next', 'granted', 10],
    ]);
  });

  it('a waiter that stopped asking (its window closed) is passed over but keeps its place', async () => {
    await locks.take('m-away', who('holder'), at(0), alive);
    await locks.take('m-away', who('away'), at(10), alive);
    await locks.take('m-away', who('here'), at(20), alive);
    await locks.release('m-away', 'holder');
    const later = 10 + LOCK_AWAY_MS / 1000 + 1;
    expect(await locks.take('m-away', who('here'), at(later), alive)).toEqual({ granted: true });
    expect((await locks.waiting('m-away')).map((w) => [w.runId, w.since])).toEqual([['away', at(10)]]);
    await locks.release('m-away', 'here');
    // Back from its window, it is first again.
    expect(await locks.take('m-away', who('away'), at(later + 5), alive)).toEqual({ granted: true });
  });

  it('the activity audits the wait under the candidate (began: holder and reason; ended: seconds waited)', async () => {
    await newRun('r-hold', 'p-hold', 4);
    await newRun('r-wait', 'p-wait', 7);
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    const holding = { runId: 'r-hold', pipeline: 'p-hold', modelName: 'm-audit', at: at(0) };
    const waiting = { runId: 'r-wait', pipeline: 'p-wait', modelName: 'm-audit', at: at(5) };
    expect(await take(holding)).toEqual({ granted: true });
    const refused = await take(waiting);
    expect(refused).toMatchObject({ granted: false, holder: { runId: 'r-hold', pipeline: 'p-hold' } });
    // Asking again (a poll, or a retried activity) records nothing more.
    await take({ ...waiting, at: at(65) });
    // A run granted at once never waited: no entries for it.
    expect(await lockEntries('model/m-audit/4')).toEqual([]);
    let entries = await lockEntries('model/m-audit/7');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      kind: LOCK_WAIT_BEGAN,
      actor: 'run:r-wait',
      data: {
        model: 'm-audit',
        runId: 'r-wait',
        pipeline: 'p-wait',
        since: at(5),
        holder: { runId: 'r-hold', pipeline: 'p-hold' },
        reason: refused.reason,
      },
    });

    await finishRun({ runs, approvals, slots, deployLocks: locks })({
      runId: 'r-hold',
      pipeline: 'p-hold',
      status: 'succeeded',
      at: at(100),
    });
    expect(await take({ ...waiting, at: at(125) })).toEqual({ granted: true });
    entries = await lockEntries('model/m-audit/7');
    expect(entries.map((e) => e.kind)).toEqual([LOCK_WAIT_BEGAN, LOCK_WAIT_ENDED]);
    expect(entries[1]!.data).toMatchObject({
      runId: 'r-wait',
      outcome: 'granted',
      since: at(5),
      endedAt: at(125),
      waitedSeconds: 120,
      holder: { runId: 'r-hold', pipeline: 'p-hold' },
    });
    expect(await locks.waiting('m-audit')).toEqual([]);
  });

  it('a run canceled while it waits gives its place back, and the wait ends in the audit trail', async () => {
    await newRun('r-busy', 'p-busy');
    const run = await newRun('r-quit', 'p-quit', 2);
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    await take({ runId: 'r-busy', pipeline: 'p-busy', modelName: 'm-quit', at: at(0) });
    expect(
      (await take({ runId: 'r-quit', pipeline: 'p-quit', modelName: 'm-quit', at: at(1) })).granted,
    ).toBe(false);
    expect((await locks.waiting('m-quit')).map((w) => w.runId)).toEqual(['r-quit']);
    await endRun(
      { runs, approvals, slots, deployLocks: locks },
      (await runs.get(run!.pipeline, run!.id))!,
      { status: 'canceled', stopReason: 'canceled', reason: 'canceled by ana', at: at(30) },
      { withdrawal: () => undefined },
    );
    expect(await locks.waiting('m-quit')).toEqual([]);
    // The holder's lock is untouched by the waiter's ending.
    expect((await locks.holder('m-quit'))?.runId).toBe('r-busy');
    const entries = await lockEntries('model/m-quit/2');
    expect(entries.map((e) => [e.kind, e.data.outcome])).toEqual([
      [LOCK_WAIT_BEGAN, undefined],
      [LOCK_WAIT_ENDED, 'run_ended'],
    ]);
  });

  it('an audit write that fails fails the take; the retry records each entry once', async () => {
    let failNext = 0;
    const flaky: AuditSink = {
      record: async (event: AuditEvent) => {
        if (failNext > 0) {
          failNext--;
          throw new Error('audit down');
        }
        return audit.record(event);
      },
    };
    const shaky = new DeploymentLocks(suite.cosmos, { audit: flaky });
    await shaky.take('m-flaky', who('holder'), at(0), alive);
    failNext = 1;
    await expect(
      shaky.take('m-flaky', who('w'), at(1), alive, { subject: 'model/m-flaky/1' }),
    ).rejects.toThrow('audit down');
    expect(await shaky.take('m-flaky', who('w'), at(2), alive, { subject: 'model/m-flaky/1' })).toMatchObject(
      {
        granted: false,
      },
    );
    await shaky.release('m-flaky', 'holder');
    failNext = 1;
    await expect(shaky.take('m-flaky', who('w'), at(3), alive)).rejects.toThrow('audit down');
    // The lock is the waiter's already; the retry finishes the wait's record.
    expect(await shaky.take('m-flaky', who('w'), at(4), alive)).toEqual({ granted: true });
    const entries = await lockEntries('model/m-flaky/1');
    expect(entries.map((e) => [e.kind, e.data.since, e.data.waitedSeconds])).toEqual([
      [LOCK_WAIT_BEGAN, at(1), undefined],
      [LOCK_WAIT_ENDED, at(1), 3],
    ]);
    expect(await shaky.waiting('m-flaky')).toEqual([]);
  });

  it('the evidence pack of the version that waited lists the wait (JSON and HTML) and its audit entries', async () => {
    const registry = new ModelRegistry(suite.cosmos.container('models'), () => new Date(T0), audit);
    const { version } = await registry.registerVersion({
      modelName: 'm-ev',
      modelDigest: 'ab'.repeat(32),
      artifactUri: 'models/m-ev/1.json',
      datasetDigest: 'cd'.repeat(32),
      metrics: { roc_auc: 0.8 },
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: 'r-ev',
      tags: {},
    });
    await newRun('r-ev-hold', 'p-ev-hold', 9);
    await newRun('r-ev', 'p-ev', version.version);
    const take = takeDeploymentLock({ deployLocks: locks, runs });
    await take({ runId: 'r-ev-hold', pipeline: 'p-ev-hold', modelName: 'm-ev', at: at(0) });
    await take({ runId: 'r-ev', pipeline: 'p-ev', modelName: 'm-ev', at: at(10) });
    await locks.release('m-ev', 'r-ev-hold');
    await take({ runId: 'r-ev', pipeline: 'p-ev', modelName: 'm-ev', at: at(70) });

    const notRead = async (): Promise<never> => {
      throw new Error('not read');
    };
    const pack = await buildEvidencePack(
      {
        registry,
        // No run document: the pack reads neither the pipeline nor stored reports.
        runs: { find: async () => undefined },
        pipelines: { get: notRead },
        artifacts: { getBuffer: notRead },
        approvals,
        audit,
        now: () => new Date(T0),
      },
      'm-ev',
      version.version,
    );
    expect(pack?.lockWaits).toEqual([
      expect.objectContaining({
        since: at(10),
        holder: { runId: 'r-ev-hold', pipeline: 'p-ev-hold' },
        outcome: 'granted',
        waitedSeconds: 60,
      }),
    ]);
    expect(pack?.audit.entries.map((e) => e.kind)).toEqual(
      expect.arrayContaining([LOCK_WAIT_BEGAN, LOCK_WAIT_ENDED]),
    );
    const html = renderEvidenceHtml(pack!);
    expect(html).toContain('Waits for the deployment lock');
    expect(html).toContain('run r-ev-hold of p-ev-hold');
    expect(html).toContain('60 s');
  });
});
