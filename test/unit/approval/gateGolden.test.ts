/**
 * Golden histories of approvalGate, captured from real devhost runs (test/e2e/approval/captureGolden.ts),
 * replayed through the real durable-functions library against today's orchestrator code: the full
 * history still reproduces the recorded outcome, and every episode asks for exactly the work that
 * was recorded at the same sequence ids. A change that fails here would break approvals already
 * waiting on Azure (an approval can wait for days): version the orchestrator instead.
 */
import path from 'node:path';
import { topLevelActions } from '../../../devhost/durable/actions';
import { EventType, type HistoryEvent, isSchedulingEvent } from '../../../devhost/durable/history';
import { itemName, replayFromHistory } from '../../../devhost/durable/replay';
import { loadApp, loadGoldens, timerOptions } from '../../devhost/durable/support/sdkDriver';

const dir = path.resolve(__dirname, '..', '..', 'fixtures', 'approval-golden');
const goldens = loadGoldens(dir);

const app = loadApp(['orchestrators/approvalGate.ts']);

function episodes(history: HistoryEvent[]): { given: HistoryEvent[]; recorded: HistoryEvent[] }[] {
  const out: { given: HistoryEvent[]; recorded: HistoryEvent[] }[] = [];
  let before: HistoryEvent[] = [];
  let current: HistoryEvent[] = [];
  for (const e of history) {
    if (e.EventType === EventType.OrchestratorCompleted) {
      out.push({
        given: [...before, ...current.filter((x) => !isSchedulingEvent(x))],
        recorded: current.filter(isSchedulingEvent),
      });
      before = [...before, ...current, e];
      current = [];
    } else {
      current.push(e);
    }
  }
  return out;
}

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
    for (const ep of episodes(g.history)) {
      const r = await app.runOrchestrator(g.orchestrator, ep.given, g.input, g.instanceId);
      expect(r.error).toBeUndefined();
      const replay = replayFromHistory(topLevelActions(r.state!), ep.given, timerOptions);
      expect(replay.nonDeterminism).toBeUndefined();
      expect(
        replay.newItems.map((i) => ({
          id: i.id,
          kind: i.kind,
          name: i.kind === 'timer' ? undefined : itemName(i),
        })),
      ).toEqual(
        ep.recorded.map((e) => ({
          id: e.EventId,
          kind: { 4: 'activity', 7: 'subOrchestration', 10: 'timer' }[e.EventType as 4 | 7 | 10],
          name: e.EventType === EventType.TimerCreated ? undefined : e.Name,
        })),
      );
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
