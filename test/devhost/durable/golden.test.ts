/**
 * Golden histories captured from real devhost runs (test/fixtures/golden, see
 * support/captureGolden.ts) are replayed through the real durable-functions library: the full
 * history reproduces the recorded output, every episode's prefix makes the library ask for exactly
 * the work devhost recorded at the same sequence ids, and a tampered history is reported as
 * non-deterministic.
 */
import path from 'node:path';
import { topLevelActions } from '../../../devhost/durable/actions';
import { EventType } from '../../../devhost/durable/history';
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

  it('reports a history whose first activity was renamed as non-deterministic', async () => {
    const first = g.history.find((e) => e.EventType === EventType.TaskScheduled);
    if (!first) return;
    const tampered = g.history.map((e) => (e === first ? { ...e, Name: 'renamedActivity' } : e));
    const r = await app.runOrchestrator(g.orchestrator, g.history, g.input, g.instanceId);
    const replay = replayFromHistory(topLevelActions(r.state!), tampered, timerOptions);
    expect(replay.nonDeterminism).toMatch(
      new RegExp(
        `^Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity task with sequence number ${first.EventId} named 'renamedActivity', but the current orchestration replay instead scheduled an activity task named '${first.Name}'`,
      ),
    );
  });
});
