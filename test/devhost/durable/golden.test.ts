/**
 * Golden histories captured from real devhost runs (test/fixtures/golden, see
 * support/captureGolden.ts) are replayed through the real durable-functions library: the full
 * history reproduces the recorded output, every episode's prefix makes the library ask for exactly
 * the work devhost recorded at the same sequence ids, and a tampered history is reported as
 * non-deterministic.
 */
import path from 'node:path';
import { topLevelActions } from '../../../devhost/durable/actions';
import { EventType, type HistoryEvent, isSchedulingEvent } from '../../../devhost/durable/history';
import { replayFromHistory } from '../../../devhost/durable/replay';
import {
  goldenEpisodes,
  loadApp,
  loadGoldens,
  timerOptions,
  workAsked,
  workRecorded,
} from './support/sdkDriver';

const dir = path.resolve(__dirname, '..', '..', 'fixtures', 'golden');
const goldens = loadGoldens(dir);

const app = loadApp([
  'test/fixtures/durable-app/functions/activities.js',
  'test/fixtures/durable-app/functions/orchestrators.js',
]);

it('has golden histories to replay', () => {
  expect(goldens.map(([name]) => name).sort()).toEqual(
    [
      'approval',
      'callActivityWithRetry',
      'fanOut',
      'helloSequence',
      'parallelRetries',
      'retryThenSucceed',
      'subOrchestration',
    ].sort(),
  );
});

it('has scheduled work of a known kind first in every golden, so each can be tampered with', () => {
  const firstScheduled = Object.fromEntries(
    goldens.map(([name, g]) => [name, g.history.find(isSchedulingEvent)?.EventType]),
  );
  expect(firstScheduled).toEqual({
    approval: EventType.TimerCreated,
    callActivityWithRetry: EventType.TaskScheduled,
    fanOut: EventType.TaskScheduled,
    helloSequence: EventType.TaskScheduled,
    parallelRetries: EventType.TaskScheduled,
    retryThenSucceed: EventType.TaskScheduled,
    subOrchestration: EventType.SubOrchestrationInstanceCreated,
  });
});

describe.each(goldens)('golden history %s', (_name, g) => {
  it('replays to the recorded output', async () => {
    const r = await app.runOrchestrator(g.orchestrator, g.history, g.input, g.instanceId);
    expect(r.error).toBeUndefined();
    expect(r.state?.isDone).toBe(true);
    expect(r.state?.output ?? null).toEqual(g.output);
  });

  it('makes the library ask, episode by episode, for exactly the work recorded at the same ids', async () => {
    for (const ep of goldenEpisodes(g.history)) {
      const r = await app.runOrchestrator(g.orchestrator, ep.given, g.input, g.instanceId);
      expect(r.state).toBeDefined();
      const replay = replayFromHistory(topLevelActions(r.state!), ep.given, timerOptions);
      expect(replay.nonDeterminism).toBeUndefined();
      expect(workAsked(replay.newItems)).toEqual(workRecorded(ep.recorded));
      if (!r.state!.isDone) expect(replay.shadow.openIds().sort((a, b) => a - b)).toEqual(r.openIds);
    }
  });

  it('reports a history whose first scheduled work was changed as non-deterministic', async () => {
    // The precondition is an assertion: a golden that schedules nothing would prove nothing here.
    const first = g.history.find(isSchedulingEvent);
    expect(first).toBeDefined();
    const { tampered, report } = tamperWith(first!);
    const history = g.history.map((e) => (e === first ? tampered : e));
    const r = await app.runOrchestrator(g.orchestrator, g.history, g.input, g.instanceId);
    const replay = replayFromHistory(topLevelActions(r.state!), history, timerOptions);
    expect(replay.nonDeterminism).toMatch(report);
  });
});

/**
 * How the first scheduled work of a golden is changed, and the start of the message DTFx fails the
 * orchestration with: an activity or sub-orchestration is renamed, a timer becomes an activity.
 */
function tamperWith(first: HistoryEvent): { tampered: HistoryEvent; report: RegExp } {
  const nd = 'Non-Deterministic workflow detected: A previous execution of this orchestration scheduled';
  const id = first.EventId;
  switch (first.EventType) {
    case EventType.TaskScheduled:
      return {
        tampered: { ...first, Name: 'renamedActivity' },
        report: new RegExp(
          `^${nd} an activity task with sequence number ${id} named 'renamedActivity', but the current orchestration replay instead scheduled an activity task named '${first.Name}'`,
        ),
      };
    case EventType.SubOrchestrationInstanceCreated:
      return {
        tampered: { ...first, Name: 'renamedOrchestrator' },
        report: new RegExp(
          `^${nd} a sub-orchestration task with sequence ID ${id} and name 'renamedOrchestrator' .*, but the current orchestration replay instead scheduled a sub-orchestration task with name ${first.Name} at this sequence number`,
        ),
      };
    case EventType.TimerCreated:
      return {
        tampered: { ...first, EventType: EventType.TaskScheduled, Name: 'renamedActivity' },
        report: new RegExp(
          `^${nd} an activity task with sequence number ${id} named 'renamedActivity', but the current orchestration replay instead produced a CreateTimerOrchestratorAction action`,
        ),
      };
    default:
      throw new Error(`no tampering defined for scheduling event type ${first.EventType}`);
  }
}
