/**
 * A canary step that never gets its traffic times out (docs/rollout.md, A step's deadline), through
 * devhost over HTTP: the step shows its deadline on the rollout document and the run record; nothing
 * is waited for in real time — devhost's clock is moved past the deadline (`POST /admin/host/clock`,
 * a devhost test facility), the rollout orchestration's next check is on the moved clock, and the
 * rollout rolls back with code `step_timed_out`: production never moves, the reviewers are told
 * why, and the audit trail has the `rollout.ended` entry. Needs `dist/`.
 */
import type { PipelineHarness } from '../pipeline/harness';
import { REVIEWER, startPipelineHarness } from '../pipeline/harness';
import { FAST_ROLLOUT_ENV, approvedRun, putCandidate, withProduction } from './traffic';

jest.setTimeout(600_000);

interface RolloutView {
  state: string;
  step: number;
  percent: number;
  deadline?: string;
  reason?: string;
}

describe('a canary step deadline through devhost', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startPipelineHarness({ env: FAST_ROLLOUT_ENV });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const rolloutOf = async (name: string): Promise<RolloutView | undefined> => {
    const res = await h.api('GET', `/api/models/${name}/rollout`);
    return res.status === 200 ? ((await res.json()) as RolloutView) : undefined;
  };

  it('a step short of traffic at its deadline rolls back; production never moves', async () => {
    const name = 'e2e-canary-deadline';
    await withProduction(h, name);

    await putCandidate(h, name, {
      strategy: 'canary',
      // Nobody predicts: 100 candidate requests never come. An hour at most for each step.
      steps: [
        { percent: 5, minRequests: 100, minSeconds: 60 },
        { percent: 100, minRequests: 100, minSeconds: 60 },
      ],
      maxStepSeconds: 3600,
      checkEverySeconds: 30,
    });
    const id = await approvedRun(h, name);

    // The first step runs, with its deadline an hour after it began, on both documents.
    const live = await h.until('the first step with its deadline', async () => {
      const r = await rolloutOf(name);
      return r && r.state === 'active' && r.step === 0 && r.deadline ? r : undefined;
    });
    expect(live.percent).toBe(5);
    const running = await h.waitFor(id, 'the run record of the step', (r) => {
      const steps = (r.rollout as { steps?: { deadline?: string }[] } | undefined)?.steps;
      return steps?.[0]?.deadline !== undefined;
    });
    const step0 = (running.rollout as { steps: { startedAt: string; deadline: string }[] }).steps[0]!;
    expect(step0.deadline).toBe(live.deadline);
    expect(Date.parse(step0.deadline) - Date.parse(step0.startedAt)).toBe(3_600_000);
    expect(running.status).toBe('running');

    // Past the deadline on devhost's clock: the next guard check times the step out.
    const moved = await fetch(`${h.url}/admin/host/clock`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ advanceBy: '61m' }),
    });
    expect(moved.status).toBe(200);

    const done = await h.finished(id, 120_000);
    expect(done.status).toBe('stopped');
    expect(done.stopReason).toBe('rollout_rolled_back');
    expect(done.reason).toMatch(
      /^step 1 did not pass within its deadline of 1 h: it had \d+ of 100 candidate requests/,
    );
    const rollout = done.rollout as {
      outcome: string;
      code?: string;
      steps: { step: number; outcome?: string; endedAt?: string }[];
    };
    expect(rollout).toMatchObject({ outcome: 'rolled_back', code: 'step_timed_out' });
    expect(rollout.steps).toHaveLength(1);
    expect(rollout.steps[0]).toMatchObject({ step: 0, outcome: 'timed_out' });
    // Timed out on the orchestration's (moved) clock, at or after the deadline.
    expect(Date.parse(rollout.steps[0]!.endedAt!)).toBeGreaterThanOrEqual(Date.parse(step0.deadline));

    // The candidate serves nothing any more, and production never moved.
    const ended = (await rolloutOf(name))!;
    expect(ended).toMatchObject({ state: 'rolled_back', percent: 0 });
    expect(ended.deadline).toBeUndefined();
    const model = await h.model(name);
    expect(model?.aliases.production?.version).toBe(1);
    expect(model?.aliasHistory.filter((m) => m.alias === 'production').map((m) => m.to)).toEqual([1]);
    const predicted = await h.api('POST', `/api/models/${name}/predict`, {
      rows: [
        {
          education: 8,
          south: 0,
          gender: 'female',
          experience: 21,
          union: 1,
          age: 35,
          race: 'hispanic',
          occupation: 'other',
          sector: 'manufacturing',
          married: 0,
        },
      ],
    });
    expect(predicted.status).toBe(200);
    expect(await predicted.json()).toMatchObject({ modelVersion: 1, variant: 'production' });

    // The reviewers were told why; the audit trail has the decision.
    const told = await h.until('the timeout message', async () =>
      (await h.messages(id)).find((m) => m.to === REVIEWER && /rolled back/.test(m.subject)),
    );
    expect(told.text).toMatch(/did not pass within its deadline of 1 h/);
    const audit = (await (await h.api('GET', '/api/audit?limit=50')).json()) as {
      entries: { kind: string; subject: string; actor: string; data: Record<string, unknown> }[];
    };
    const entry = audit.entries.find((e) => e.kind === 'rollout.ended' && e.data.runId === id);
    expect(entry).toMatchObject({
      actor: 'system',
      subject: `model/${name}/2`,
      data: { outcome: 'rolled_back', code: 'step_timed_out', step: 0, strategy: 'canary' },
    });
  });
});
