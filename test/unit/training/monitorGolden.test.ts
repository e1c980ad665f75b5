/**
 * Recorded histories of trainingMonitor, replayed against today's code.
 *
 * Why: a monitor watches a training job for as long as it trains (hours, days on a real backend),
 * and when new code is deployed the Durable host replays each running monitor's recorded history
 * through the NEW orchestrator function. If that code asks for different work at the same point (a
 * poll more or less, another timer, another activity), the monitor fails with a non-determinism
 * error and its pipeline run with it. These histories were recorded from real devhost runs
 * (test/e2e/pipeline/captureGolden.ts): jobs that completed, failed, were canceled, ran past the
 * monitor's deadline, ended with an early wake-up event, and one that outlasted a generation and
 * continued as new. A change that fails here must be versioned, not deployed over running monitors.
 */
import { ActionType } from '../../../devhost/durable/actions';
import { EventType, events } from '../../../devhost/durable/history';
import { loadApp } from '../../devhost/durable/support/sdkDriver';
import {
  expectRecordedWorkPerEpisode,
  expectTamperNoticed,
  loadRecorded,
  replayAll,
  type RecordedRun,
} from '../../support/orchestrationGoldens';

const goldens = loadRecorded('monitor-golden');
const app = loadApp(['orchestrators/trainingMonitor.ts']);
// After loadApp (it must load the module first, with the Functions seam mocked): the same instance.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { POLLS_PER_GENERATION } = require('../../../orchestrators/trainingMonitor') as {
  POLLS_PER_GENERATION: number;
};

const polls = (g: RecordedRun) =>
  g.history.filter((e) => e.EventType === EventType.TaskScheduled && e.Name === 'checkTraining').length;

interface MonitorOutput {
  state: string;
  polls: number;
  error?: { code: string };
}
const ending = (g: RecordedRun) => {
  if (g.continuedAsNew) return 'continued as new';
  const o = g.output as MonitorOutput;
  return [o.state, o.error?.code].filter(Boolean).join(':');
};

it('has a recorded monitor for every way one ends', () => {
  expect(goldens.map(([name, g]) => [name, ending(g)]).sort()).toEqual([
    ['afterContinueAsNew', 'completed'],
    ['canceled', 'canceled:canceled'],
    ['completed', 'completed'],
    ['continuedAsNew', 'continued as new'],
    ['failed', 'failed:time_limit_exceeded'],
    ['timedOut', 'failed:training_timeout'],
    ['wokenEarly', 'completed'],
  ]);
});

it('recorded the early wake-up as an event that ended the wait', () => {
  const woken = goldens.find(([name]) => name === 'wokenEarly')![1];
  expect(
    woken.history.some((e) => e.EventType === EventType.EventRaised && e.Name === 'TrainingCompleted'),
  ).toBe(true);
  expect(woken.history.some((e) => e.EventType === EventType.TimerFired)).toBe(false);
});

describe.each(goldens)('trainingMonitor recorded history %s', (_name, g) => {
  it('replays to the recorded outcome and custom status', async () => {
    const r = await replayAll(app, g);
    expect(r.state?.customStatus).toEqual(g.customStatus);
    if (g.continuedAsNew) {
      // The generation's final episode is not in the history: the library still waits for the poll.
      expect(r.state?.isDone).toBe(false);
      const pending = g.history.findLast((e) => e.EventType === EventType.TaskScheduled)!;
      expect(r.openIds).toContain(pending.EventId);
    } else {
      expect(r.state?.isDone).toBe(true);
      expect(r.state?.output).toEqual(g.output);
    }
  });

  it('asks, episode by episode, for exactly the work recorded at the same ids', async () => {
    await expectRecordedWorkPerEpisode(app, g);
  });

  it('notices a history that does not fit the code (first activity renamed)', async () => {
    await expectTamperNoticed(app, g);
  });

  it('holds at most one generation of polls', () => {
    expect(polls(g)).toBeLessThanOrEqual(POLLS_PER_GENERATION);
  });
});

describe('a monitor that outlasts one generation', () => {
  const first = goldens.find(([name]) => name === 'continuedAsNew')![1];
  const next = goldens.find(([name]) => name === 'afterContinueAsNew')![1];

  it('continues as new with its poll count carried, exactly as the next generation was started', async () => {
    // Complete the one poll the history holds no result for, with what the poll before it read:
    // the job kept running unchanged while the generation lasted.
    const scheduled = first.history.filter((e) => e.EventType === EventType.TaskScheduled);
    const pending = scheduled.at(-1)!;
    const previous = first.history.findLast(
      (e) => e.EventType === EventType.TaskCompleted && e.TaskScheduledId === scheduled.at(-2)!.EventId,
    )!;
    const at = Date.parse(first.history.at(-1)!.Timestamp) + 1000;
    const history = [
      ...first.history,
      events.orchestratorStarted(at),
      events.taskCompleted(at, pending.EventId, previous.Result!),
    ];
    const r = await app.runOrchestrator(first.orchestrator, history, first.input, first.instanceId);
    expect(r.error).toBeUndefined();
    expect(r.state?.isDone).toBe(true);
    const actions = r.state!.actions.flat();
    expect(actions.filter((a) => a.actionType === ActionType.ContinueAsNew)).toEqual([
      expect.objectContaining({ input: first.continuedAsNew!.input }),
    ]);
    expect(polls(first)).toBe(POLLS_PER_GENERATION);
    expect(next.input).toEqual(first.continuedAsNew!.input);
    expect(next.input).toMatchObject({ polls: POLLS_PER_GENERATION });
  });
});
