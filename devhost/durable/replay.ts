/**
 * Shadow replay (durable-host-spec §5.5): devhost re-derives the sequence ids that the durable-functions
 * library assigns to tasks, by walking the same history against the episode's cumulative action list in
 * the same order the library does. The ids decide which completion event reaches which task, so any
 * divergence from the library delivers results to the wrong `yield`.
 *
 * The replay is incremental: an instance keeps its `ShadowReplay` between episodes and feeds it only the
 * new actions and new events, so devhost's own cost per episode does not grow with the history. A full
 * replay from the stored history (`replayFromHistory`) is used after a restart and to explain a
 * non-deterministic orchestrator with the wording of the Durable extension (DTFx).
 */
import { type Action, ActionType, fireAtMs, sameAction } from './actions';
import { type DurableHttpRequestWire, httpActivityName, pollAfter } from './durableHttp';
import { entitySchedulerId } from './entityTypes';
import { EventType, type HistoryEvent, isSchedulingEvent } from './history';

export type WorkKind =
  | 'activity'
  | 'timer'
  | 'subOrchestration'
  | 'callEntity'
  | 'signalEntity'
  | 'callHttp'
  | 'lockEntities'
  | 'releaseEntities';

/** One id-consuming unit of work: what the host must record (scheduling event) and execute. */
export interface WorkItem {
  id: number;
  kind: WorkKind;
  /** The action that produced it (for a retried call: the retry action, the same for every attempt). */
  action: Action;
  /** Timers: when to fire (ms since epoch). */
  fireAt?: number;
  /** Timers created by the host between retry attempts, including the final immediate "dummy" timer. */
  retryTimer?: boolean;
  /** callHttp: the request to make (for a 202 poll, the GET of the Location) and when (ms since epoch). */
  httpRequest?: DurableHttpRequestWire;
  notBefore?: number;
  /** lockEntities: the scheduler ids of the critical section, sorted and without duplicates. */
  lockSet?: string[];
  /** releaseEntities: the entity this release (one id per locked entity) is sent to. */
  target?: string;
}

/** The sorted, de-duplicated scheduler ids of a LockEntities action (the order the library sorts in). */
export function lockSetOf(action: Action): string[] {
  const ids = (action.lockSet ?? []).map((e) => {
    const { name, key } = (e ?? {}) as { name?: unknown; key?: unknown };
    return entitySchedulerId(String(name ?? ''), String(key ?? ''));
  });
  return [...new Set(ids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface ReplayOptions {
  /** `maximumShortTimerDuration` sent to the SDK; longer timers are split (spec §5.5 rule 6). */
  maxShortTimerMs: number;
  /** `longRunningTimerIntervalDuration` sent to the SDK. */
  longTimerIntervalMs: number;
  /** `defaultHttpAsyncRequestSleepTimeMillseconds` sent to the SDK (callHttp polls without Retry-After). */
  httpAsyncSleepMs?: number;
}

/** The extension's default maximum retry interval when the app sets none (6 days). */
const defaultMaxRetryIntervalMs = 6 * 24 * 3600 * 1000;

type NodeState = 'running' | 'completed' | 'failed';

interface Node {
  action: Action;
  parent: Node | undefined;
  children: Node[];
  state: NodeState;
  started: boolean;
  /** Retry nodes: attempt number (1-based) and what the node waits for. */
  attempt: number;
  phase: 'task' | 'timer' | 'final';
  /** Long timers: the user's fireAt; split into sub-timers while it is more than maxShort away. */
  finalFireAt: number;
  long: boolean;
  /** Timers: the orchestrator canceled it (`isCanceled`), so the host need not fire it. */
  canceled: boolean;
}

function buildNode(action: Action, parent?: Node): Node {
  const n: Node = {
    action,
    parent,
    children: [],
    state: 'running',
    started: false,
    attempt: 1,
    phase: 'task',
    finalFireAt: 0,
    long: false,
    canceled: action.isCanceled === true,
  };
  if (action.actionType === ActionType.WhenAll || action.actionType === ActionType.WhenAny) {
    n.children = (action.compoundActions ?? []).map((c) => buildNode(c, n));
  }
  return n;
}

/** Copies `isCanceled` flips (timers canceled after Task.any) onto the known nodes. */
function markCanceled(n: Node, a: Action): void {
  if (a.actionType === ActionType.CreateTimer && a.isCanceled === true) n.canceled = true;
  const cs = a.compoundActions;
  if (cs) for (let i = 0; i < n.children.length && i < cs.length; i++) markCanceled(n.children[i]!, cs[i]!);
}

export class ShadowReplay {
  private nextId = 0;
  private now = 0;
  private executionStarted = false;
  private readonly tops: Node[] = [];
  private topIdx = 0;
  private current: Node | undefined;
  private readonly byId = new Map<number, Node>();
  private readonly waiters = new Map<string, Node[]>();
  private readonly buffered = new Map<string, number>();
  /** Every item allocated in this execution; `items[id].id === id`. */
  readonly items: WorkItem[] = [];
  private fresh: WorkItem[] = [];
  /** The entities of the current critical section (the library's ReleaseEntities does not name them). */
  private held: string[] | undefined;
  continueAsNew: Action | undefined;

  constructor(private readonly opts: ReplayOptions) {}

  /**
   * Reconciles the episode's cumulative top-level actions with the ones seen before. Returns -1 when the
   * old actions are an unchanged prefix (the new ones are appended), else the index of the first action
   * the orchestrator changed.
   */
  syncActions(top: readonly Action[]): number {
    const known = this.tops.length;
    for (let i = 0; i < Math.min(known, top.length); i++) {
      if (!sameAction(this.tops[i]!.action, top[i]!)) return i;
    }
    for (let i = 0; i < Math.min(known, top.length); i++) markCanceled(this.tops[i]!, top[i]!);
    if (top.length < known) {
      // Fewer actions than before is only legitimate when the extra ones were never started.
      for (let i = top.length; i < known; i++) if (this.tops[i]!.started) return i;
      this.tops.length = top.length;
    }
    for (let i = known; i < top.length; i++) this.tops.push(buildNode(top[i]!));
    this.advance();
    return -1;
  }

  /** Applies one history event (old or new) and starts whatever the orchestrator yields next. */
  apply(e: HistoryEvent): void {
    switch (e.EventType) {
      case EventType.OrchestratorStarted:
        this.now = Math.max(this.now, Date.parse(e.Timestamp));
        break;
      case EventType.ExecutionStarted:
        this.executionStarted = true;
        break;
      case EventType.TaskCompleted:
        this.onResult(e.TaskScheduledId ?? -1, true, e.Result);
        break;
      case EventType.SubOrchestrationInstanceCompleted:
        this.onResult(e.TaskScheduledId ?? -1, true);
        break;
      case EventType.TaskFailed:
      case EventType.SubOrchestrationInstanceFailed:
        this.onResult(e.TaskScheduledId ?? -1, false);
        break;
      case EventType.TimerFired:
        this.onResult(e.TimerId ?? -1, true);
        break;
      case EventType.EventSent: {
        // A callEntity waits from now on for the EventRaised named by its request id (appendix B).
        const n = this.byId.get(e.EventId);
        const t = n?.action.actionType;
        if (n && (t === ActionType.CallEntity || t === ActionType.LockEntities)) {
          this.byId.delete(e.EventId);
          const requestId = (JSON.parse(e.Input ?? '{}') as { id?: string }).id ?? '';
          const list = this.waiters.get(requestId) ?? [];
          list.push(n);
          this.waiters.set(requestId, list);
        }
        break;
      }
      case EventType.EventRaised: {
        const name = e.Name ?? '';
        const w = this.waiters.get(name);
        if (w && w.length > 0) {
          // The library completes the most recently registered waiter of that exact name (it pops).
          this.settle(w.pop()!, true);
          if (w.length === 0) this.waiters.delete(name);
        } else {
          this.buffered.set(name, (this.buffered.get(name) ?? 0) + 1);
        }
        break;
      }
      default:
        break;
    }
    this.advance();
  }

  /** Items allocated since the previous call. */
  takeNew(): WorkItem[] {
    const out = this.fresh;
    this.fresh = [];
    return out;
  }

  /** Open timer ids whose timer the orchestrator has since canceled. */
  canceledOpenTimers(): number[] {
    const out: number[] = [];
    for (const [id, n] of this.byId) if (n.canceled) out.push(id);
    return out;
  }

  /** Ids the orchestrator is still waiting on (work in flight from the replay's point of view). */
  openIds(): number[] {
    return [...this.byId.keys()];
  }

  private alloc(kind: WorkKind, node: Node, extra: Partial<WorkItem> = {}): WorkItem {
    const item: WorkItem = { id: this.nextId++, kind, action: node.action, ...extra };
    this.items.push(item);
    this.fresh.push(item);
    this.byId.set(item.id, node);
    return item;
  }

  private advance(): void {
    while (
      this.executionStarted &&
      (this.current === undefined || this.current.state !== 'running') &&
      this.topIdx < this.tops.length
    ) {
      this.current = this.tops[this.topIdx++]!;
      this.start(this.current);
    }
  }

  private start(n: Node): void {
    n.started = true;
    const a = n.action;
    switch (a.actionType) {
      case ActionType.CallActivity:
      case ActionType.CallActivityWithRetry:
        this.alloc('activity', n);
        break;
      case ActionType.CallSubOrchestrator:
      case ActionType.CallSubOrchestratorWithRetry:
        this.alloc('subOrchestration', n);
        break;
      case ActionType.ContinueAsNew:
        this.continueAsNew = a;
        this.settle(n, true);
        break;
      case ActionType.CreateTimer: {
        n.finalFireAt = fireAtMs(a);
        n.long = n.finalFireAt - this.now > this.opts.maxShortTimerMs;
        this.alloc('timer', n, { fireAt: this.nextSubTimer(n) });
        break;
      }
      case ActionType.WaitForExternalEvent: {
        const name = a.externalEventName ?? '';
        const count = this.buffered.get(name) ?? 0;
        if (count > 0) {
          if (count === 1) this.buffered.delete(name);
          else this.buffered.set(name, count - 1);
          this.settle(n, true);
        } else {
          const list = this.waiters.get(name) ?? [];
          list.push(n);
          this.waiters.set(name, list);
        }
        break;
      }
      case ActionType.CallEntity:
        this.alloc('callEntity', n);
        break;
      case ActionType.CallHttp:
        this.alloc('callHttp', n, { httpRequest: a.httpRequest as DurableHttpRequestWire });
        break;
      case ActionType.SignalEntity: {
        const item = this.alloc('signalEntity', n);
        this.byId.delete(item.id);
        this.settle(n, true);
        break;
      }
      case ActionType.LockEntities: {
        const lockSet = lockSetOf(a);
        this.held = lockSet;
        this.alloc('lockEntities', n, { lockSet });
        break;
      }
      case ActionType.ReleaseEntities: {
        // The library consumes one id per locked entity: one release message each.
        for (const target of this.held ?? []) {
          const item = this.alloc('releaseEntities', n, { target });
          this.byId.delete(item.id);
        }
        this.held = undefined;
        this.settle(n, true);
        break;
      }
      case ActionType.WhenAll:
      case ActionType.WhenAny:
        for (const c of n.children) this.start(c);
        break;
      default:
        throw new Error(`devhost does not know orchestrator action type ${String(a.actionType)}`);
    }
  }

  private nextSubTimer(n: Node): number {
    if (!n.long) return n.finalFireAt;
    return n.finalFireAt - this.now > this.opts.maxShortTimerMs
      ? this.now + this.opts.longTimerIntervalMs
      : n.finalFireAt;
  }

  private onResult(id: number, ok: boolean, result?: string | null): void {
    const n = this.byId.get(id);
    if (!n) return; // duplicate or late result (e.g. the loser of Task.any): the library ignores it too
    this.byId.delete(id);
    const t = n.action.actionType;
    if (t === ActionType.CallHttp && ok) {
      // CallHttpWithPollingTask: a 202 with Location adds a timer, then a new call, ids in that order.
      const sent = this.items[id]?.httpRequest ?? (n.action.httpRequest as DurableHttpRequestWire);
      const poll = pollAfter(sent, result, this.opts.httpAsyncSleepMs ?? 30_000);
      if (poll) {
        const fireAt = this.now + poll.delayMs;
        const timer = buildNode({ actionType: ActionType.CreateTimer, fireAt: new Date(fireAt) });
        this.start(timer); // detached: its firing settles nothing, as the library's timer child
        this.alloc('callHttp', n, { httpRequest: poll.request, notBefore: fireAt });
        return;
      }
    }
    if (t === ActionType.CreateTimer) {
      if (n.long && n.finalFireAt > this.now) this.alloc('timer', n, { fireAt: this.nextSubTimer(n) });
      else this.settle(n, true);
      return;
    }
    if (t === ActionType.CallActivityWithRetry || t === ActionType.CallSubOrchestratorWithRetry) {
      const ro = n.action.retryOptions ?? { firstRetryIntervalInMilliseconds: 1000, maxNumberOfAttempts: 1 };
      if (n.phase === 'task') {
        if (ok) return this.settle(n, true);
        if (n.attempt >= ro.maxNumberOfAttempts) {
          // DTFx records one more timer after the last failure and the library waits for it.
          n.phase = 'final';
          this.alloc('timer', n, { fireAt: this.now, retryTimer: true });
        } else {
          n.phase = 'timer';
          const delay = Math.min(
            ro.firstRetryIntervalInMilliseconds * (ro.backoffCoefficient ?? 1) ** (n.attempt - 1),
            ro.maxRetryIntervalInMilliseconds ?? defaultMaxRetryIntervalMs,
          );
          this.alloc('timer', n, { fireAt: this.now + delay, retryTimer: true });
        }
      } else if (n.phase === 'timer') {
        n.attempt++;
        n.phase = 'task';
        this.alloc(t === ActionType.CallActivityWithRetry ? 'activity' : 'subOrchestration', n);
      } else {
        this.settle(n, false);
      }
      return;
    }
    this.settle(n, ok);
  }

  private settle(n: Node, ok: boolean): void {
    if (n.state !== 'running') return;
    n.state = ok ? 'completed' : 'failed';
    const p = n.parent;
    if (!p || p.state !== 'running') return;
    if (p.action.actionType === ActionType.WhenAny) this.settle(p, true);
    else if (!ok) this.settle(p, false);
    else if (p.children.every((c) => c.state === 'completed')) this.settle(p, true);
  }
}

const prefix = 'Non-Deterministic workflow detected: ';
const tail = 'Was a change made to the orchestrator code after this instance had already started running?';

function dtfxActionName(kind: WorkKind): string {
  switch (kind) {
    case 'activity':
    case 'callHttp':
      return 'ScheduleTaskOrchestratorAction';
    case 'timer':
      return 'CreateTimerOrchestratorAction';
    case 'subOrchestration':
      return 'CreateSubOrchestrationAction';
    default:
      return 'SendEventOrchestratorAction';
  }
}

export function itemName(item: WorkItem): string {
  if (item.kind === 'callHttp') return httpActivityName;
  return item.action.functionName ?? item.action.operation ?? '';
}

/**
 * Compares the recorded scheduling events with what the replay allocated, in history order, and returns
 * the message DTFx would fail the instance with (`TaskOrchestrationContext.Handle*Event`), if any.
 */
export function findNonDeterminism(
  items: readonly WorkItem[],
  history: readonly HistoryEvent[],
): string | undefined {
  for (const e of history) {
    if (!isSchedulingEvent(e)) continue;
    const id = e.EventId;
    const item = items[id];
    const name = e.Name ?? '';
    const version = e.Version ?? '';
    switch (e.EventType) {
      case EventType.TaskScheduled:
        if (!item)
          return `${prefix}A previous execution of this orchestration scheduled an activity task with sequence ID ${id} and name '${name}' (version '${version}'), but the current replay execution hasn't (yet?) scheduled this task. ${tail}`;
        if (item.kind !== 'activity' && item.kind !== 'callHttp')
          return `${prefix}A previous execution of this orchestration scheduled an activity task with sequence number ${id} named '${name}', but the current orchestration replay instead produced a ${dtfxActionName(item.kind)} action with this sequence number. ${tail}`;
        if (itemName(item).toLowerCase() !== name.toLowerCase())
          return `${prefix}A previous execution of this orchestration scheduled an activity task with sequence number ${id} named '${name}', but the current orchestration replay instead scheduled an activity task named '${itemName(item)}' with this sequence number.  ${tail}`;
        break;
      case EventType.TimerCreated:
        if (!item)
          return `${prefix}A previous execution of this orchestration scheduled a timer task with sequence number ${id} but the current replay execution hasn't (yet?) scheduled this task. ${tail}`;
        if (item.kind !== 'timer')
          return `${prefix}A previous execution of this orchestration scheduled a timer task with sequence number ${id} named but the current orchestration replay instead produced a ${dtfxActionName(item.kind)} action with this sequence number. ${tail}`;
        break;
      case EventType.SubOrchestrationInstanceCreated: {
        const what = `a sub-orchestration task with sequence ID ${id} and name '${name}' (version '${version}', instance ID '${e.InstanceId ?? ''}')`;
        if (!item)
          return `${prefix}A previous execution of this orchestration scheduled ${what}, but the current replay execution hasn't (yet?) scheduled this task. ${tail}`;
        if (item.kind !== 'subOrchestration')
          return `${prefix}A previous execution of this orchestration scheduled ${what}, but the current orchestration replay instead produced a ${dtfxActionName(item.kind)} action at this sequence number. ${tail}`;
        if (itemName(item).toLowerCase() !== name.toLowerCase())
          return `${prefix}A previous execution of this orchestration scheduled ${what}, but the current orchestration replay instead scheduled a sub-orchestration task with name ${itemName(item)} at this sequence number. ${tail}`;
        break;
      }
      case EventType.EventSent:
        if (!item)
          return `${prefix}A previous execution of this orchestration scheduled a send event task with sequence ID ${id}, type 'EventSent' name '${name}', instance ID '${e.InstanceId ?? ''}', but the current replay execution hasn't (yet?) scheduled this task. ${tail}`;
        break;
      default:
        break;
    }
  }
  return undefined;
}

/**
 * Full replay of one execution: rebuilds the shadow state from the stored history and the latest action
 * list (after a restart, or when the action list changed). `newItems` are the allocated ids that have no
 * scheduling event yet — the work the host must record and start.
 */
export function replayFromHistory(
  actions: readonly Action[],
  history: readonly HistoryEvent[],
  opts: ReplayOptions,
): { shadow: ShadowReplay; newItems: WorkItem[]; nonDeterminism?: string } {
  const shadow = new ShadowReplay(opts);
  shadow.syncActions(actions);
  for (const e of history) shadow.apply(e);
  shadow.takeNew();
  const nonDeterminism = findNonDeterminism(shadow.items, history);
  const recorded = new Set<number>();
  for (const e of history) if (isSchedulingEvent(e)) recorded.add(e.EventId);
  const newItems = shadow.items.filter((i) => !recorded.has(i.id));
  return nonDeterminism === undefined ? { shadow, newItems } : { shadow, newItems, nonDeterminism };
}
