/**
 * trainingMonitor driven through the real durable-functions library in virtual time (devhost's
 * replay simulator), with scripted checkTraining results.
 */
import path from 'node:path';
import { ActionType, topLevelActions } from '../../../devhost/durable/actions';
import { EventType } from '../../../devhost/durable/history';
import { loadApp, timerOptions } from '../../devhost/durable/support/sdkDriver';
import { simulate } from '../../devhost/durable/support/simulate';
import { sampleTrainingResult } from '../../support/trainingSample';

const app = loadApp(['orchestrators/trainingMonitor.ts', 'test/fixtures/training-monitor/activities.ts']);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { script } = require(path.resolve(__dirname, '../../fixtures/training-monitor/activities.ts')) as {
  script: { statuses: unknown[]; calls: { name: string; input: unknown }[] };
};

const T0 = Date.parse('2024-05-01T10:00:00.000Z');
const status = (state: string, extra: Record<string, unknown> = {}) => ({
  jobId: 'job-1',
  state,
  progress: 0.5,
  iteration: 3,
  metrics: { loss: 0.4 },
  logTail: ['line 1', 'line 2'],
  ...extra,
});
const result = sampleTrainingResult('a'.repeat(64));
const input = (over: Record<string, unknown> = {}) => ({
  jobId: 'job-1',
  backend: 'local',
  runId: 'run-1',
  deadline: new Date(T0 + 24 * 3600_000).toISOString(),
  ...over,
});
let n = 0;
const run = (inp: unknown, events: { afterEpisode: number; name: string; data: unknown }[] = []) =>
  simulate({
    app,
    orchestrator: 'trainingMonitor',
    input: inp,
    instanceId: `run-${++n}:train`,
    seed: 1,
    replay: timerOptions,
    events,
  });

beforeEach(() => {
  script.statuses = [];
  script.calls = [];
});

describe('trainingMonitor', () => {
  it('polls with growing intervals until the job completes', async () => {
    script.statuses = [
      status('queued'),
      status('running'),
      status('running'),
      status('completed', { progress: 1, result }),
    ];
    const r = await run(input());
    expect(r.error).toBeUndefined();
    expect(r.mismatches).toEqual([]);
    expect(r.state!.output).toMatchObject({
      state: 'completed',
      polls: 4,
      result: { modelDigest: 'a'.repeat(64) },
    });
    const timers = r.history.filter((e) => e.EventType === EventType.TimerCreated);
    const gaps = timers.map((t) => Date.parse(t.FireAt!) - Date.parse(t.Timestamp));
    expect(gaps).toEqual([5_000, 7_500, 11_250]);
    expect((r.state!.customStatus as { state: string }).state).toBe('completed');
  });

  it('returns a failed job with its error and log tail', async () => {
    script.statuses = [
      status('running'),
      status('failed', {
        error: { code: 'worker_crashed', message: 'killed by SIGKILL' },
        logTail: ['reading dataset', 'Error: boom'],
      }),
    ];
    const r = await run(input());
    expect(r.state!.output).toMatchObject({
      state: 'failed',
      error: { code: 'worker_crashed' },
      logTail: ['reading dataset', 'Error: boom'],
    });
  });

  it('cancels the job and fails when the deadline passes', async () => {
    script.statuses = [status('running')];
    const r = await run(
      input({ deadline: new Date(T0 + 60_000).toISOString(), firstPollSeconds: 20, backoff: 1 }),
    );
    expect(r.state!.output).toMatchObject({ state: 'failed', error: { code: 'training_timeout' } });
    expect(script.calls.filter((c) => c.name === 'cancelTraining')).toEqual([
      { name: 'cancelTraining', input: { jobId: 'job-1', backend: 'local' } },
    ]);
    // timers never overshoot the deadline
    for (const t of r.history.filter((e) => e.EventType === EventType.TimerCreated)) {
      expect(Date.parse(t.FireAt!)).toBeLessThanOrEqual(T0 + 60_000);
    }
  });

  it('continues as new after a bounded number of polls, carrying the poll count', async () => {
    script.statuses = [status('running')];
    const r = await run(input({ maxPollSeconds: 60 }));
    const last = topLevelActions(r.state!).at(-1)!;
    expect(last.actionType).toBe(ActionType.ContinueAsNew);
    expect(last.input).toMatchObject({ polls: 25, jobId: 'job-1' });
    expect(r.history.length).toBeLessThanOrEqual(200);
    // the next generation starts at the interval where the last one stopped (capped at 60 s)
    script.calls = [];
    const next = await run({ ...(last.input as object) }, []);
    const firstTimer = next.history.find((e) => e.EventType === EventType.TimerCreated)!;
    expect(Date.parse(firstTimer.FireAt!) - Date.parse(firstTimer.Timestamp)).toBe(60_000);
  });

  it('a TrainingCompleted event wakes it before the timer fires', async () => {
    script.statuses = [status('running'), status('completed', { progress: 1, result })];
    const r = await run(input({ firstPollSeconds: 3_600 }), [
      { afterEpisode: 1, name: 'TrainingCompleted', data: { jobId: 'job-1' } },
    ]);
    expect(r.state!.output).toMatchObject({ state: 'completed', polls: 2 });
    const scheduled = r.history.filter((e) => e.EventType === EventType.TaskScheduled);
    const timer = r.history.find((e) => e.EventType === EventType.TimerCreated)!;
    expect(Date.parse(scheduled[1]!.Timestamp)).toBeLessThan(Date.parse(timer.FireAt!));
  });

  it('rejects bad input without calling the backend', async () => {
    const r = await run({ jobId: 'job-1', backend: 'sagemaker', runId: 'r', deadline: 'tomorrow' });
    const failure = String(r.error?.message ?? r.state?.error ?? '');
    expect(failure).toContain('backend');
    expect(failure).toContain('deadline');
    expect(script.calls).toEqual([]);
  });
});
