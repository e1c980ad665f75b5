/**
 * Golden histories of approvalGate, captured from real devhost runs (test/e2e/approval/captureGolden.ts),
 * replayed through the real durable-functions library against today's orchestrator code: the full
 * history still reproduces the recorded outcome, and every episode asks for exactly the work that
 * was recorded at the same sequence ids. A change that fails here would break approvals already
 * waiting on Azure (an approval can wait for days): version the orchestrator instead.
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
} from '../../devhost/durable/support/sdkDriver';

const dir = path.resolve(__dirname, '..', '..', 'fixtures', 'approval-golden');
const goldens = loadGoldens(dir);

const app = loadApp(['orchestrators/approvalGate.ts']);

it('has the approval outcomes to replay', () => {
  expect(goldens.map(([name, g]) => [name, (g.output as { outcome: string }).outcome]).sort()).toEqual([
    ['approvedTwoOfThree', 'approved'],
    ['expiredAfterEscalation', 'expired'],
    ['rejectedAfterEarlyEvent', 'rejected'],
  ]);
});

describe.each(goldens)('approvalGate golden history %s', (_name, g) => {
  it('replays to the recorded outcome', async () => {
    const r = await app.runOrchestrator(g.orchestrator, g.history, g.input, g.instanceId);
    expect(r.error).toBeUndefined();
    expect(r.state?.isDone).toBe(true);
    expect(r.state?.output).toEqual(g.output);
  });

  it('asks, episode by episode, for exactly the work recorded at the same ids', async () => {
    for (const ep of goldenEpisodes(g.history)) {
      const r = await app.runOrchestrator(g.orchestrator, ep.given, g.input, g.instanceId);
      expect(r.error).toBeUndefined();
      const replay = replayFromHistory(topLevelActions(r.state!), ep.given, timerOptions);
      expect(replay.nonDeterminism).toBeUndefined();
      expect(workAsked(replay.newItems)).toEqual(workRecorded(ep.recorded));
    }
  });

  it('notices a history that does not fit the code (first activity renamed)', async () => {
    const first = g.history.find((e) => e.EventType === EventType.TaskScheduled)!;
    const tampered = g.history.map((e) => (e === first ? { ...e, Name: 'renamedActivity' } : e));
    const r = await app.runOrchestrator(g.orchestrator, g.history, g.input, g.instanceId);
    expect(replayFromHistory(topLevelActions(r.state!), tampered, timerOptions).nonDeterminism).toMatch(
      /Non-Deterministic/,
    );
  });

  it('stays small: under 200 history events', () => {
    expect(g.history.length).toBeLessThan(200);
  });
});
