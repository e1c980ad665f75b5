/**
 * Shadow replay against the real library: whole orchestrations run in virtual time with randomized
 * completion orders, and after every episode devhost's open sequence ids must equal the ids the
 * durable-functions library itself waits on (durable-host-spec §5.5).
 */
import { ActionType } from '../../../devhost/durable/actions';
import { events, EventType } from '../../../devhost/durable/history';
import { findNonDeterminism, replayFromHistory, ShadowReplay } from '../../../devhost/durable/replay';
import { loadApp, timerOptions } from './support/sdkDriver';
import { simulate, type SimOptions } from './support/simulate';

const app = loadApp([
  'test/fixtures/durable-app/functions/activities.js',
  'test/fixtures/durable-app/functions/orchestrators.js',
]);

let n = 0;
const run = (o: Omit<SimOptions, 'app' | 'instanceId' | 'replay'> & Partial<Pick<SimOptions, 'replay'>>) =>
  simulate({ app, instanceId: `sim-${++n}`, replay: timerOptions, ...o });

const seeds = [1, 2, 3, 4, 5, 6, 7, 8];

describe('ids match the library for every episode, whatever the completion order', () => {
  it.each(seeds)('fan-out/fan-in of 10 (seed %i)', async (seed) => {
    const r = await run({ orchestrator: 'fanOut', input: 10, seed });
    expect(r.mismatches).toEqual([]);
    expect(r.state?.output).toEqual({ sum: 110, results: [2, 4, 6, 8, 10, 12, 14, 16, 18, 20] });
  });

  it.each(seeds)('two retried activities inside Task.all (seed %i)', async (seed) => {
    const r = await run({ orchestrator: 'parallelRetries', input: null, seed });
    expect(r.mismatches).toEqual([]);
    expect(r.state?.output).toEqual(['ok after 2', 'ok after 3']);
  });

  it.each(seeds)(
    'compound tasks nested in Task.any, retries racing timers, two waits on one name (seed %i)',
    async (seed) => {
      const r = await run({
        orchestrator: 'nestedCompound',
        input: null,
        seed,
        events: [
          { afterEpisode: 6, name: 'Two', data: 'a' },
          { afterEpisode: 7, name: 'Two', data: 'b' },
        ],
      });
      expect(r.mismatches).toEqual([]);
      expect(r.state?.isDone).toBe(true);
      const out = r.state?.output as { pair: unknown[] };
      expect(out.pair[0]).toBe(42);
      expect([...(out.pair.slice(1) as string[])].sort()).toEqual(['a', 'b']);
    },
  );

  it.each([
    ['helloSequence', null],
    ['inputShapes', null],
    ['monitor', null],
    ['retryThenSucceed', null],
    ['callActivityWithRetry', null],
    ['cancelTimer', null],
    ['catchProperties', null],
    ['catchNonError', null],
  ])('%s', async (orchestrator, input) => {
    const r = await run({ orchestrator, input, seed: 11 });
    expect(r.mismatches).toEqual([]);
    expect(r.state?.isDone).toBe(true);
  });

  it('approval: the event wins and the timer is canceled', async () => {
    const r = await run({
      orchestrator: 'approval',
      input: { timeoutMs: 60_000 },
      seed: 3,
      events: [{ afterEpisode: 0, name: 'Approval', data: { ok: true } }],
    });
    expect(r.mismatches).toEqual([]);
    expect(r.state?.output).toEqual({ result: 'approved', by: { ok: true } });
    const timer = r.state?.actions[0]?.[0]?.compoundActions?.find(
      (a) => a.actionType === ActionType.CreateTimer,
    );
    expect(timer?.isCanceled).toBe(true);
  });

  it('an event raised before the wait is buffered and consumed later', async () => {
    const r = await run({
      orchestrator: 'waitForEvent',
      input: { name: 'Go' },
      seed: 4,
      events: [{ afterEpisode: 0, name: 'Go', data: 42 }],
    });
    expect(r.mismatches).toEqual([]);
    expect(r.state?.output).toEqual(['before', 42]);
  });

  it('long timers are split into sub-timers exactly as the library counts them', async () => {
    const r = await run({
      orchestrator: 'longTimer',
      input: null,
      seed: 5,
      replay: { maxShortTimerMs: 2000, longTimerIntervalMs: 1500 },
    });
    expect(r.mismatches).toEqual([]);
    expect(r.state?.isDone).toBe(true);
    expect(r.history.filter((e) => e.EventType === EventType.TimerCreated).length).toBeGreaterThanOrEqual(3);
  });

  it('continue-as-new is reported and ends the execution', async () => {
    const r = await run({ orchestrator: 'counter', input: 1, seed: 6 });
    expect(r.mismatches).toEqual([]);
    expect(r.state?.isDone).toBe(true);
    expect(r.state?.actions[0]?.some((a) => a.actionType === ActionType.ContinueAsNew)).toBe(true);
  });
});

describe('long timers with small durations', () => {
  const small = loadSmall();
  function loadSmall() {
    return { maxShortTimerMs: 2000, longTimerIntervalMs: 1500 };
  }

  it('allocates one id per sub-timer until the final fire time', () => {
    const t0 = Date.parse('2024-05-01T10:00:00.000Z');
    const shadow = new ShadowReplay(small);
    shadow.syncActions([
      { actionType: ActionType.CreateTimer, fireAt: new Date(t0 + 5000).toISOString(), isCanceled: false },
    ]);
    shadow.apply(events.orchestratorStarted(t0));
    shadow.apply(events.executionStarted(t0, { name: 'x', input: null, instanceId: 'i', executionId: 'e' }));
    const fires: number[] = [];
    for (let guard = 0; guard < 10; guard++) {
      const [item] = shadow.takeNew();
      if (!item) break;
      fires.push(item.fireAt! - t0);
      shadow.apply(events.orchestratorStarted(item.fireAt! + 3));
      shadow.apply(events.timerFired(item.fireAt! + 3, item.id, new Date(item.fireAt!).toISOString()));
    }
    expect(fires).toEqual([1500, 3003, 5000]);
    expect(shadow.openIds()).toEqual([]);
  });
});

describe('non-determinism', () => {
  it('words a changed activity name as DTFx does', () => {
    const t0 = Date.parse('2024-05-01T10:00:00.000Z');
    const history = [
      events.orchestratorStarted(t0),
      events.executionStarted(t0, { name: 'o', input: null, instanceId: 'i', executionId: 'e' }),
      events.taskScheduled(t0, 0, 'echo', '[1]'),
      events.orchestratorCompleted(t0),
      events.orchestratorStarted(t0 + 1),
      events.taskCompleted(t0 + 1, 0, '1'),
    ];
    const r = replayFromHistory(
      [{ actionType: ActionType.CallActivity, functionName: 'other', input: 1 }],
      history,
      timerOptions,
    );
    expect(r.nonDeterminism).toBe(
      "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity task with sequence number 0 named 'echo', but the current orchestration replay instead scheduled an activity task named 'other' with this sequence number.  Was a change made to the orchestrator code after this instance had already started running?",
    );
    // Function names are case-insensitive, as in the extension.
    expect(
      replayFromHistory(
        [{ actionType: ActionType.CallActivity, functionName: 'ECHO' }],
        history,
        timerOptions,
      ).nonDeterminism,
    ).toBeUndefined();
  });

  it('reports a scheduled task the replay no longer produces, and a timer replaced by an activity', () => {
    const t0 = Date.parse('2024-05-01T10:00:00.000Z');
    const history = [
      events.orchestratorStarted(t0),
      events.executionStarted(t0, { name: 'o', input: null, instanceId: 'i', executionId: 'e' }),
      events.timerCreated(t0, 0, t0 + 10),
      events.orchestratorCompleted(t0),
    ];
    expect(replayFromHistory([], history, timerOptions).nonDeterminism).toMatch(
      /^Non-Deterministic workflow detected: A previous execution of this orchestration scheduled a timer task with sequence number 0 but the current replay execution hasn't \(yet\?\) scheduled this task\./,
    );
    const swapped = replayFromHistory(
      [{ actionType: ActionType.CallActivity, functionName: 'a' }],
      history,
      timerOptions,
    );
    expect(swapped.nonDeterminism).toMatch(
      /produced a ScheduleTaskOrchestratorAction action with this sequence number/,
    );
    expect(findNonDeterminism([], [])).toBeUndefined();
    expect(history.filter((e) => e.EventType === EventType.TimerCreated)).toHaveLength(1);
  });
});

describe('entity calls (durable-host-spec appendix B)', () => {
  it('a callEntity waits for the EventRaised named by its request id; a signal consumes an id and never waits', () => {
    const t0 = Date.parse('2024-05-01T10:00:00.000Z');
    const actions = [
      { actionType: ActionType.SignalEntity, instanceId: '@tally@k', operation: 'add', input: 1 },
      { actionType: ActionType.CallEntity, instanceId: '@tally@k', operation: 'get' },
      { actionType: ActionType.CallActivity, functionName: 'echo', input: 1 },
    ];
    const started = [
      events.orchestratorStarted(t0),
      events.executionStarted(t0, { name: 'o', input: null, instanceId: 'i', executionId: 'e' }),
    ];
    const request = (id: string, signal: boolean) => JSON.stringify({ id, op: 'x', signal });
    const sent = [
      events.eventSent(t0, 0, '@tally@k', 'add', request('s-0', true)),
      events.eventSent(t0, 1, '@tally@k', 'get', request('req-1', false)),
    ];
    // Before the answer only ids 0 (signal) and 1 (call) exist, and nothing is open by id.
    const waiting = replayFromHistory(actions, [...started, ...sent], timerOptions);
    expect(waiting.nonDeterminism).toBeUndefined();
    expect(waiting.shadow.items.map((i) => i.kind)).toEqual(['signalEntity', 'callEntity']);
    expect(waiting.shadow.openIds()).toEqual([]);
    // An event under another name does not answer the call; the one named by the request id does.
    const answered = replayFromHistory(
      actions,
      [
        ...started,
        ...sent,
        events.orchestratorCompleted(t0),
        events.orchestratorStarted(t0 + 1),
        events.eventRaised(t0 + 1, 'req-other', '{}'),
        events.eventRaised(t0 + 1, 'req-1', JSON.stringify({ result: '3' })),
      ],
      timerOptions,
    );
    expect(answered.shadow.items.map((i) => i.kind)).toEqual(['signalEntity', 'callEntity', 'activity']);
    expect(answered.newItems.map((i) => i.id)).toEqual([2]);
    // The same answer fed incrementally to a shadow that saw the EventSent live.
    const live = new ShadowReplay(timerOptions);
    live.syncActions(actions);
    for (const e of [...started, ...sent]) live.apply(e);
    live.takeNew();
    live.apply(events.eventRaised(t0 + 1, 'req-1', JSON.stringify({ result: '3' })));
    expect(live.takeNew().map((i) => [i.id, i.kind])).toEqual([[2, 'activity']]);
  });
});
