/**
 * A miniature host that drives the real library through whole orchestrations in virtual time, using
 * devhost's shadow replay to allocate ids, and checks after every episode that devhost's view of the
 * open sequence ids equals the library's own. Completion order is randomized from a seed.
 */
import { topLevelActions, type OrchestratorState } from '../../../../devhost/durable/actions';
import { events, type HistoryEvent, isoTime } from '../../../../devhost/durable/history';
import {
  activityFailure,
  decodeActivityInput,
  encodeActivityInput,
  encodeActivityResult,
} from '../../../../devhost/durable/payload';
import { type ReplayOptions, ShadowReplay, type WorkItem } from '../../../../devhost/durable/replay';
import type { LoadedApp } from './sdkDriver';
import { createPrng } from '../../../../lib/training/prng';

export interface SimEvent {
  /** Raised after this many episodes have run. */
  afterEpisode: number;
  name: string;
  data: unknown;
}

export interface SimOptions {
  app: LoadedApp;
  orchestrator: string;
  input: unknown;
  instanceId: string;
  seed: number;
  replay: ReplayOptions;
  events?: SimEvent[];
  maxEpisodes?: number;
}

export interface SimResult {
  state: OrchestratorState | undefined;
  error: Error | undefined;
  history: HistoryEvent[];
  episodes: number;
  /** One line per episode where devhost's ids differed from the library's. */
  mismatches: string[];
}

/** Uniform [0, 1) numbers from a seed: the project's seeded generator. */
function rng(seed: number): () => number {
  const prng = createPrng(seed);
  return () => prng.next();
}

const T0 = Date.parse('2024-05-01T10:00:00.000Z');

export async function simulate(o: SimOptions): Promise<SimResult> {
  const random = rng(o.seed);
  const shadow = new ShadowReplay(o.replay);
  const history: HistoryEvent[] = [];
  const mismatches: string[] = [];
  const pending: { item: WorkItem; scheduled: HistoryEvent }[] = [];
  let inbox: HistoryEvent[] = [
    events.executionStarted(T0, {
      name: o.orchestrator,
      input: JSON.stringify(o.input),
      instanceId: o.instanceId,
      executionId: 'e1',
    }),
  ];
  let now = T0;
  let state: OrchestratorState | undefined;
  let error: Error | undefined;
  let episode = 0;
  const scripted = [...(o.events ?? [])].sort((a, b) => a.afterEpisode - b.afterEpisode);
  for (; episode < (o.maxEpisodes ?? 200); episode++) {
    while (scripted.length > 0 && (scripted[0]!.afterEpisode <= episode || inbox.length === 0)) {
      const e = scripted.shift()!;
      inbox.push(events.eventRaised(now, e.name, JSON.stringify(e.data)));
    }
    if (inbox.length === 0) break;
    now += 1000;
    for (const e of inbox) if (e.FireAt) now = Math.max(now, Date.parse(e.FireAt));
    const fresh = [events.orchestratorStarted(now), ...inbox];
    inbox = [];
    const played = history.map((e) => ({ ...e, IsPlayed: true }));
    const r = await o.app.runOrchestrator(
      o.orchestrator,
      [...played, ...fresh],
      o.input,
      o.instanceId,
      o.replay,
    );
    state = r.state;
    error = r.error;
    if (!state) {
      history.push(...fresh);
      break;
    }
    const top = topLevelActions(state);
    const diverged = shadow.syncActions(top);
    if (diverged !== -1) mismatches.push(`episode ${episode}: action ${diverged} changed`);
    for (const e of fresh) shadow.apply(e);
    const items = shadow.takeNew();
    const scheduling = items.map((item) => {
      if (item.kind === 'timer') return events.timerCreated(now, item.id, item.fireAt ?? now);
      return events.taskScheduled(
        now,
        item.id,
        item.action.functionName ?? '',
        encodeActivityInput(item.action.input),
      );
    });
    history.push(...fresh, ...scheduling, events.orchestratorCompleted(now));
    // The library stops reading history once the orchestrator returns, so the final episode's counts
    // are only comparable when it delivered a single event.
    if ((!state.isDone || fresh.length === 2) && shadow.items.length !== r.allocated) {
      mismatches.push(
        `episode ${episode}: devhost allocated ${shadow.items.length} ids, the library ${r.allocated}`,
      );
    }
    if (state.isDone) break;
    const ours = shadow.openIds().sort((a, b) => a - b);
    if (JSON.stringify(ours) !== JSON.stringify(r.openIds)) {
      mismatches.push(
        `episode ${episode}: devhost waits on [${ours.join(',')}], the library on [${r.openIds.join(',')}]`,
      );
    }
    items.forEach((item, i) => pending.push({ item, scheduled: scheduling[i]! }));
    // Deliver a random, non-empty subset of the outstanding work in random order.
    pending.sort(() => random() - 0.5);
    const take = pending.length === 0 ? 0 : 1 + Math.floor(random() * pending.length);
    for (const { item, scheduled } of pending.splice(0, take)) {
      if (item.kind === 'timer') {
        inbox.push(events.timerFired(now, item.id, isoTime(item.fireAt ?? now)));
        continue;
      }
      const name = scheduled.Name ?? '';
      try {
        const value = await o.app.runActivity(name, decodeActivityInput(scheduled.Input));
        inbox.push(events.taskCompleted(now, item.id, encodeActivityResult(value)));
      } catch (err) {
        inbox.push(events.taskFailed(now, item.id, activityFailure(name, err)));
      }
    }
  }
  return { state, error, history, episodes: episode, mismatches };
}
