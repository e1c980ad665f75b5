/**
 * Lock contention with two approved runs of one model, through devhost (issue 21): two pipelines
 * deploy the same model. A first run of one puts version 1 in production. Then a run of each is
 * approved: the canary run takes the model's deployment lock and holds it through its rollout (a
 * step far longer than the test); the direct run waits in its deploy step, its run document naming
 * the holder, and production does not move. The holder is canceled: its ending releases the lock,
 * the waiter takes it and deploys. Production moved twice, in order. Then a holder whose rollout
 * completes (promoted by an operator): it releases at its end, and the waiter (evaluated against the production it replaced)
 * stops superseded rather than deploying over it. Two runs waiting behind one holder get the lock in
 * the order they began to wait, each wait in the audit trail. Needs `dist/`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PipelineHarness, RunView } from '../pipeline/harness';
import { WAGES_CSV, startPipelineHarness, testPipeline } from '../pipeline/harness';

jest.setTimeout(600_000);

const MODEL = 'gov-lock';
const deploy = (r: RunView) => r.steps.find((s) => s.name === 'deploy');

/**
 * The wages data less every 40th row from `offset`: each run trains on slightly different rows, so
 * each registers a model of its own (the registry keeps one version per model digest).
 */
function wagesLess(dir: string, offset: number): string {
  const [header, ...lines] = readFileSync(WAGES_CSV, 'utf8').trim().split('\n');
  const file = path.join(dir, `wages-less-${offset}.csv`);
  writeFileSync(file, [header, ...lines.filter((_, i) => i % 40 !== offset)].join('\n') + '\n');
  return file;
}

/** Near-identical candidates pass whichever saw the other's holdout rows in training. */
const LENIENT = (base: Record<string, unknown>) => ({
  ...(base.evaluation as object),
  comparison: { mode: 'non_inferiority', margin: 0.5 },
  guardrails: [{ metric: 'rmse', maxDegradation: 5 }],
});

interface TrailEntry {
  kind: string;
  data: Record<string, unknown>;
}

/** The deployment-lock entries of the audit trail under a model version, oldest first. */
async function lockTrail(h: PipelineHarness, version: number): Promise<TrailEntry[]> {
  const res = await h.api('GET', `/api/audit?subject=${encodeURIComponent(`model/${MODEL}/${version}`)}`);
  const page = (await res.json()) as { entries: TrailEntry[] };
  return page.entries.filter((e) => e.kind.startsWith('deployment_lock.')).reverse();
}

async function untilApproval(h: PipelineHarness, id: string): Promise<void> {
  const r = await h.waitFor(
    id,
    'approval',
    (v) => v.status === 'waiting_for_approval' || ['succeeded', 'stopped', 'failed'].includes(v.status),
    240_000,
  );
  if (r.status !== 'waiting_for_approval') throw new Error(`run ${id} ended ${r.status}: ${r.reason ?? ''}`);
}

describe('deployment lock through devhost', () => {
  let h: PipelineHarness;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-lock-'));
  afterAll(async () => {
    await h?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('a second approved deployment of a model waits for the first, and goes when its holder is canceled', async () => {
    h = await startPipelineHarness({ env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } });
    const direct = testPipeline('gov-lock-direct', { modelName: MODEL });
    await h.put({ ...direct, evaluation: LENIENT(direct) });
    const canary = testPipeline('gov-lock-canary');
    await h.put(
      testPipeline('gov-lock-canary', {
        modelName: MODEL,
        evaluation: LENIENT(canary),
        deployment: {
          strategy: 'canary',
          // Held far longer than the test: the run holds the lock until it is canceled.
          steps: [{ percent: 50, minRequests: 0, minSeconds: 3_600 }],
          checkEverySeconds: 5,
        },
      }),
    );

    // Production version 1, by the direct pipeline, with nobody else deploying.
    const seed = await h.start('gov-lock-direct', wagesLess(tmp, 0));
    await untilApproval(h, seed);
    await h.decide(seed, 'approve', 'first version');
    expect((await h.finished(seed, 120_000)).status).toBe('succeeded');
    expect((await h.model(MODEL))?.aliases.production?.version).toBe(1);

    // One run of each pipeline, both evaluated against version 1 and waiting for people.
    const holder = await h.start('gov-lock-canary', wagesLess(tmp, 1));
    const waiter = await h.start('gov-lock-direct', wagesLess(tmp, 2));
    await Promise.all([untilApproval(h, holder), untilApproval(h, waiter)]);

    await h.decide(holder, 'approve', 'roll it out');
    const rolling = await h.waitFor(holder, 'the rollout', (r) => {
      const rollout = r.rollout as { steps?: unknown[] } | undefined;
      return deploy(r)?.status === 'running' && (rollout?.steps?.length ?? 0) > 0;
    });
    expect(rolling.deploymentLock?.modelName).toBe(MODEL);

    await h.decide(waiter, 'approve', 'ship it too');
    const waiting = await h.waitFor(
      waiter,
      'the lock wait',
      (r) => deploy(r)?.outputs?.lockWait !== undefined,
    );
    const wait = deploy(waiting)!.outputs!.lockWait as {
      reason: string;
      holder: { runId: string; pipeline: string };
    };
    expect(wait.holder).toEqual({ runId: holder, pipeline: 'gov-lock-canary' });
    expect(wait.reason).toMatch(
      new RegExp(
        `^waiting for the deployment lock of ${MODEL}: run ${holder} of gov-lock-canary is deploying it`,
      ),
    );
    expect(waiting.status).toBe('running');
    expect(deploy(waiting)?.status).toBe('running');
    // The wait is in the audit trail under the waiter's candidate, and its Run page says whose lock
    // it waits for and why.
    const waiterVersion = waiting.steps.find((s) => s.name === 'evaluate')?.outputs?.modelVersion as number;
    const began = await lockTrail(h, waiterVersion);
    expect(began.map((e) => [e.kind, e.data.runId, e.data.holder])).toEqual([
      ['deployment_lock.wait_began', waiter, { runId: holder, pipeline: 'gov-lock-canary' }],
    ]);
    const page = await (await h.api('GET', `/runs/gov-lock-direct/${waiter}`)).text();
    expect(page).toContain(`data-lock-wait="${holder}"`);
    expect(page).toContain('Waiting for the deployment lock held by run');
    // Still waiting a few polls later, and nothing moved.
    await new Promise((r) => setTimeout(r, 6_000));
    const still = await h.run(waiter);
    expect(still.status).toBe('running');
    expect(still.deployment).toBeUndefined();
    expect((await h.model(MODEL))?.aliases.production?.version).toBe(1);

    // The holder is canceled: its ending frees the lock, and the waiter deploys over version 1.
    const res = await h.api('POST', `/api/runs/${holder}/cancel`, undefined, {
      'x-ms-client-principal-name': 'ops@example.com',
    });
    expect(res.status).toBe(202);
    expect((await h.run(holder)).status).toBe('canceled');

    const done = await h.finished(waiter, 120_000);
    expect(done.status).toBe('succeeded');
    const model = await h.model(MODEL);
    // Versions 2 and 3 are the two candidates, registered in whichever order their runs got there.
    const version = done.steps.find((s) => s.name === 'evaluate')?.outputs?.modelVersion as number;
    expect([2, 3]).toContain(version);
    expect(done.deployment).toMatchObject({ modelName: MODEL, version, previous: 1 });
    expect(model?.aliases.production?.version).toBe(version);
    expect(model?.aliasHistory.filter((m) => m.alias === 'production').map((m) => m.to)).toEqual([
      1,
      version,
    ]);
    // The wait ended granted, with the seconds it lasted; the Run page lists it from the trail.
    const ended = (await lockTrail(h, version)).filter((e) => e.kind === 'deployment_lock.wait_ended');
    expect(ended).toHaveLength(1);
    expect(ended[0]!.data).toMatchObject({
      runId: waiter,
      outcome: 'granted',
      waitedSeconds: expect.any(Number),
    });
    const after = await (await h.api('GET', `/runs/gov-lock-direct/${waiter}`)).text();
    expect(after).toContain('id="s-lock"');
    expect(after).not.toContain('data-lock-wait="');
  });

  it('a holder whose rollout completes releases the lock; the waiter, evaluated against the old production, stops superseded', async () => {
    // Same host and pipelines; the holder's rollout completes when an operator promotes it.
    const before = (await h.model(MODEL))!.aliases.production!.version;
    const holder = await h.start('gov-lock-canary', wagesLess(tmp, 3));
    const waiter = await h.start('gov-lock-direct', wagesLess(tmp, 4));
    await Promise.all([untilApproval(h, holder), untilApproval(h, waiter)]);
    await h.decide(holder, 'approve', 'roll it out');
    await h.waitFor(holder, 'the rollout', (r) => {
      const rollout = r.rollout as { steps?: unknown[] } | undefined;
      return deploy(r)?.status === 'running' && (rollout?.steps?.length ?? 0) > 0;
    });
    await h.decide(waiter, 'approve', 'ship it too');
    const waiting = await h.waitFor(
      waiter,
      'the lock wait',
      (r) => deploy(r)?.outputs?.lockWait !== undefined,
    );
    expect((deploy(waiting)!.outputs!.lockWait as { holder: { runId: string } }).holder.runId).toBe(holder);

    const promoted = await h.api('POST', `/api/models/${MODEL}/rollout/promote`, undefined, {
      'x-ms-client-principal-name': 'ops@example.com',
    });
    expect(promoted.ok).toBe(true);
    const held = await h.finished(holder, 120_000);
    expect(held.status).toBe('succeeded');
    const moved = held.deployment as { version: number; previous: number };
    expect(moved.previous).toBe(before);

    const done = await h.finished(waiter, 120_000);
    expect(done).toMatchObject({ status: 'stopped', stopReason: 'superseded' });
    expect(deploy(done)?.error?.code).toBe('production_moved');
    const model = await h.model(MODEL);
    expect(model?.aliases.production?.version).toBe(moved.version);
    expect(
      model?.aliasHistory
        .filter((m) => m.alias === 'production')
        .map((m) => m.to)
        .slice(-2),
    ).toEqual([before, moved.version]);
  });

  it('two runs waiting behind a holder get the lock in the order they began to wait', async () => {
    // A third pipeline of the model, so three runs can be approved at once (one slot per pipeline).
    const other = testPipeline('gov-lock-direct2', { modelName: MODEL });
    await h.put({ ...other, evaluation: LENIENT(other) });
    const before = (await h.model(MODEL))!.aliases.production!.version;
    const holder = await h.start('gov-lock-canary', wagesLess(tmp, 5));
    const first = await h.start('gov-lock-direct', wagesLess(tmp, 6));
    const second = await h.start('gov-lock-direct2', wagesLess(tmp, 7));
    await Promise.all([untilApproval(h, holder), untilApproval(h, first), untilApproval(h, second)]);
    await h.decide(holder, 'approve', 'roll it out');
    await h.waitFor(holder, 'the rollout', (r) => {
      const rollout = r.rollout as { steps?: unknown[] } | undefined;
      return deploy(r)?.status === 'running' && (rollout?.steps?.length ?? 0) > 0;
    });
    const waits = (r: RunView) => deploy(r)?.outputs?.lockWait !== undefined;
    await h.decide(first, 'approve', 'first in line');
    await h.waitFor(first, 'the first wait', waits);
    await h.decide(second, 'approve', 'second in line');
    await h.waitFor(second, 'the second wait', waits);

    // The holder ends; whichever waiter asks first, the one that began to wait first deploys, and
    // the second, evaluated against the production the first replaced, stops superseded.
    const res = await h.api('POST', `/api/runs/${holder}/cancel`, undefined, {
      'x-ms-client-principal-name': 'ops@example.com',
    });
    expect(res.status).toBe(202);
    const [a, b] = await Promise.all([h.finished(first, 180_000), h.finished(second, 180_000)]);
    expect(a.status).toBe('succeeded');
    expect(a.deployment).toMatchObject({ modelName: MODEL, previous: before });
    expect(b).toMatchObject({ status: 'stopped', stopReason: 'superseded' });
    expect((await h.model(MODEL))?.aliases.production?.version).toBe(
      (a.deployment as { version: number }).version,
    );
    // Both waits are in the trail; the second began after the first and ended granted after it.
    const version = (r: RunView) =>
      r.steps.find((s) => s.name === 'evaluate')?.outputs?.modelVersion as number;
    const [ta, tb] = await Promise.all([lockTrail(h, version(a)), lockTrail(h, version(b))]);
    const endOf = (t: TrailEntry[]) => t.find((e) => e.kind === 'deployment_lock.wait_ended')!.data;
    const beganOf = (t: TrailEntry[]) => t.find((e) => e.kind === 'deployment_lock.wait_began')!.data;
    expect(endOf(ta)).toMatchObject({ runId: first, outcome: 'granted' });
    expect(endOf(tb)).toMatchObject({ runId: second, outcome: 'granted' });
    expect(String(beganOf(ta).since) < String(beganOf(tb).since)).toBe(true);
    expect(String(endOf(ta).endedAt) <= String(endOf(tb).endedAt)).toBe(true);
  });
});
