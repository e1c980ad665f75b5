/**
 * The Durable engine: instances, their inboxes and episodes (durable-host-spec §5, §7, §11).
 *
 * An episode takes everything waiting in an instance's inbox, appends it to the history after a fresh
 * `OrchestratorStarted`, runs the real orchestrator over the whole history, derives the sequence ids of
 * the returned actions by shadow replay, persists the episode (append-only, one entity in the common
 * case) and only then dispatches the new work. One episode runs per instance at a time; activity and
 * orchestrator concurrency follow host.json.
 *
 * Live state stays in memory between episodes (history, shadow replay, open work), so an episode never
 * re-reads storage and devhost's own work per episode is proportional to the new events. Storage is
 * read once, at start, to resume every unfinished instance after a crash.
 */
import { randomUUID } from 'node:crypto';
import type { DurableEngineOptions, Logger, RegisteredFunction } from '../contracts';
import { type Action, isOrchestratorState, type OrchestratorState, topLevelActions } from './actions';
import type { DurableConfig } from './config';
import { formatTimeSpan } from './config';
import {
  completedId,
  EventType,
  events,
  type Failure,
  type HistoryEvent,
  isSchedulingEvent,
  isTerminal,
  OrchestrationStatusCode,
  type RuntimeStatus,
} from './history';
import { Limiter } from './limiter';
import {
  activityFailure,
  checkPayload,
  decodeActivityInput,
  encodeActivityInput,
  encodeActivityResult,
  encodeOrchestrationInput,
  parseOrchestratorFailure,
  PayloadTooLargeError,
  toJsonText,
} from './payload';
import { itemName, replayFromHistory, type ShadowReplay, type WorkItem } from './replay';
import type {
  EpisodeSnapshot,
  InboxMessage,
  InstanceRecord,
  LoadedInstance,
  ParentRef,
  TaskHubStorage,
} from './store';
import { EntityTooLargeError, historyRowKey, inboxRowKey } from './store';
import { TimerService, type TimerHandle } from './timers';

/** An error the HTTP API turns into a status code and an ASP.NET-style error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly summary = 'Something went wrong while processing your request',
  ) {
    super(message);
  }
}

type InboxItem =
  | { kind: 'event'; event: HistoryEvent; seq?: number }
  | { kind: 'terminate' | 'suspend' | 'resume'; reason: string; seq?: number }
  /** Fails the instance at the next episode (e.g. an activity returned an oversized payload). */
  | { kind: 'abort'; message: string };

interface OpenWork {
  kind: 'activity' | 'timer' | 'subOrchestration';
  timer?: TimerHandle;
}

export interface Instance {
  id: string;
  name: string;
  version: string;
  gen: number;
  executionId: string;
  input: string | null;
  createdTime: number;
  parent?: ParentRef;
  status: RuntimeStatus;
  output: string | null;
  customStatus: string | null;
  lastUpdatedTime: number;
  /** The current execution's history, as stored. */
  history: HistoryEvent[];
  /**
   * The same events as sent to the library on later episodes (`IsPlayed: true` copies), kept so an
   * episode does not copy the whole history again. Copies, because a directly invoked library
   * rewrites `Timestamp` strings into Dates in place.
   */
  played: HistoryEvent[];
  /** Committed history rows of the current generation (next row index). */
  rows: number;
  inbox: InboxItem[];
  nextSeq: number;
  open: Map<number, OpenWork>;
  shadow?: ShadowReplay;
  /** The last failure's message and stack, for the parent's SubOrchestrationInstanceFailed.Details. */
  failure?: { message: string; stack?: string };
  busy: boolean;
  queued: boolean;
  purged: boolean;
  /** After a failed episode (e.g. storage unavailable) the instance waits until then before retrying. */
  retryAt: number;
  lastTs: number;
  warnedHistory: boolean;
}

interface TimerPayload {
  inst: Instance;
  gen: number;
  id: number;
  fireAt: string;
}

export interface StartOptions {
  name: string;
  instanceId?: string;
  /** JSON text of the input, or null. */
  input: string | null;
  version?: string;
  parent?: ParentRef;
}

export interface StatusOptions {
  showInput?: boolean;
  showHistory?: boolean;
  showHistoryOutput?: boolean;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what the extension rejects
const invalidIdChars = /[/\\#?\u0000-\u001f\u007f-\u009f]/;

export function validateInstanceId(id: string): void {
  if (id.length === 0) throw new ApiError(400, 'Instance ID must not be empty.');
  if (id.length > 256) throw new ApiError(400, `Instance ID '${id.slice(0, 40)}…' exceeds 256 characters.`);
  if (id.startsWith('@')) throw new ApiError(400, `Instance ID '${id}' must not start with '@'.`);
  if (invalidIdChars.test(id)) {
    throw new ApiError(
      400,
      `Instance ID '${id}' contains invalid characters (/, \\, #, ? or control characters).`,
    );
  }
}

const newExecutionId = (): string => randomUUID().replace(/-/g, '');

function knownList(fns: RegisteredFunction[]): string {
  return fns.map((f) => `'${f.name}'`).join(', ');
}

/** Where episode time goes; logged when devhost stops (the benchmark reads it). */
export interface EngineStats {
  episodes: number;
  invokeMs: number;
  replayMs: number;
  persistMs: number;
  activities: number;
  /** Time activities waited between being dispatched and starting (concurrency limit). */
  activityQueueMs: number;
  historyEventsSent: number;
}

export class DurableEngineCore {
  readonly instances = new Map<string, Instance>();
  readonly stats: EngineStats = {
    episodes: 0,
    invokeMs: 0,
    replayMs: 0,
    persistMs: 0,
    activities: 0,
    activityQueueMs: 0,
    historyEventsSent: 0,
  };
  private readonly activityLimiter: Limiter;
  private readonly orchestratorLimiter: Limiter;
  private readonly timers: TimerService<TimerPayload>;
  private readonly log: Logger;
  private stopping = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly opts: DurableEngineOptions,
    readonly config: DurableConfig,
    private readonly store: TaskHubStorage,
  ) {
    this.log = opts.log;
    this.activityLimiter = new Limiter(config.maxConcurrentActivityFunctions);
    this.orchestratorLimiter = new Limiter(config.maxConcurrentOrchestratorFunctions);
    this.timers = new TimerService((p) => this.onTimer(p));
  }

  // ---------------------------------------------------------------------------------------------------
  // Lifecycle

  async restore(): Promise<void> {
    const loaded = await this.store.loadAll();
    for (const l of loaded) this.instances.set(l.record.instanceId, this.fromLoaded(l));
    let resumed = 0;
    for (const l of loaded) {
      const inst = this.instances.get(l.record.instanceId)!;
      const garbage = [...l.garbage];
      if (isTerminal(inst.status)) {
        for (const m of l.inbox) garbage.push(inboxRowKey(m.seq));
        inst.inbox = [];
      } else {
        this.resumeOpenWork(inst);
        resumed++;
      }
      if (garbage.length > 0) this.background(this.store.deleteRows(inst.id, garbage), 'garbage collection');
    }
    for (const inst of this.instances.values()) this.kick(inst);
    if (loaded.length > 0)
      this.log.info(`durable: restored ${loaded.length} instance(s), ${resumed} unfinished`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.timers.stop();
    const deadline = Date.now() + 5000;
    while (this.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, 100))]);
    }
    const st = this.stats;
    if (st.episodes > 0) {
      const avg = (ms: number, n: number): string => (n ? (ms / n).toFixed(2) : '0');
      this.log.info(
        `durable stats: episodes=${st.episodes} avgInvokeMs=${avg(st.invokeMs, st.episodes)} ` +
          `avgReplayMs=${avg(st.replayMs, st.episodes)} avgPersistMs=${avg(st.persistMs, st.episodes)} ` +
          `avgHistoryEvents=${avg(st.historyEventsSent, st.episodes)} activities=${st.activities} ` +
          `avgActivityQueueMs=${avg(st.activityQueueMs, st.activities)}`,
      );
    }
  }

  private fromLoaded(l: LoadedInstance): Instance {
    const r = l.record;
    const completed = [...l.history].reverse().find((e) => e.EventType === EventType.ExecutionCompleted);
    const lastStarted = [...l.history].reverse().find((e) => e.EventType === EventType.OrchestratorStarted);
    return {
      id: r.instanceId,
      name: r.name,
      version: r.version,
      gen: r.gen,
      executionId: r.executionId,
      input: r.input,
      createdTime: r.createdTime,
      ...(r.parent ? { parent: r.parent } : {}),
      status: l.status,
      output: completed?.Result ?? null,
      customStatus: l.customStatus,
      lastUpdatedTime: l.lastUpdatedTime,
      history: l.history,
      played: l.history.map((e) => ({ ...e, IsPlayed: true })),
      rows: l.rows,
      inbox: l.inbox.map((m) => this.inboxItemFrom(m)),
      nextSeq: l.maxSeq + 1,
      open: new Map(),
      busy: false,
      queued: false,
      purged: false,
      retryAt: 0,
      lastTs: lastStarted ? Date.parse(lastStarted.Timestamp) : 0,
      warnedHistory: false,
    };
  }

  private inboxItemFrom(m: InboxMessage): InboxItem {
    if (m.kind === 'event')
      return { kind: 'event', event: events.eventRaised(m.ts, m.name, m.input), seq: m.seq };
    return { kind: m.kind, reason: m.reason, seq: m.seq };
  }

  /** After a restart: every scheduled item without a completion runs again / is re-armed (§11). */
  private resumeOpenWork(inst: Instance): void {
    const scheduled = new Map<number, HistoryEvent>();
    for (const e of inst.history) {
      if (isSchedulingEvent(e)) scheduled.set(e.EventId, e);
      const done = completedId(e);
      if (done !== undefined) scheduled.delete(done);
    }
    for (const [id, e] of scheduled) {
      switch (e.EventType) {
        case EventType.TaskScheduled:
          this.dispatchActivity(inst, id, e.Name ?? '', e.Input ?? null);
          break;
        case EventType.TimerCreated:
          this.armTimer(inst, id, e.FireAt ?? new Date().toISOString());
          break;
        case EventType.SubOrchestrationInstanceCreated:
          this.resumeChild(inst, id, e);
          break;
        default:
          break;
      }
    }
  }

  private resumeChild(parent: Instance, id: number, e: HistoryEvent): void {
    parent.open.set(id, { kind: 'subOrchestration' });
    const childId = e.InstanceId ?? '';
    const child = this.instances.get(childId);
    const linked =
      child?.parent?.instanceId === parent.id &&
      child.parent.executionId === parent.executionId &&
      child.parent.taskScheduledId === id;
    if (child && linked) {
      if (isTerminal(child.status)) this.notifyParent(child);
      return; // still running: it notifies the parent when it finishes
    }
    // The parent recorded the child but crashed before creating it.
    this.background(
      this.createChild(parent, id, e.Name ?? '', childId, e.Input ?? null),
      `starting sub-orchestration ${childId}`,
    );
  }

  private background(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.log.error(`durable: ${what} failed: ${String(err)}`));
  }

  // ---------------------------------------------------------------------------------------------------
  // Client operations (used by the HTTP API)

  orchestratorFunction(name: string): RegisteredFunction | undefined {
    const fn = this.opts.registry.get(name);
    return fn?.kind === 'orchestration' ? fn : undefined;
  }

  private unknownFunction(name: string, kind: 'orchestration' | 'activity'): string {
    const label = kind === 'orchestration' ? 'orchestrator' : 'activity';
    return (
      `The function '${name}' doesn't exist, is disabled, or is not an ${label} function. Additional info: ` +
      `The following are the known ${label} functions: ${knownList(this.opts.registry.byKind(kind))}.`
    );
  }

  /** Creates (or replaces a finished) instance; resolves once it is persisted as Pending. */
  async startNew(o: StartOptions): Promise<Instance> {
    const fn = this.orchestratorFunction(o.name);
    if (!fn)
      throw new ApiError(
        400,
        this.unknownFunction(o.name, 'orchestration'),
        'One or more of the arguments submitted is incorrect',
      );
    const id = o.instanceId ?? randomUUID().replace(/-/g, '');
    validateInstanceId(id);
    try {
      checkPayload('The orchestration input', o.input, this.config.maxPayloadBytes);
    } catch (e) {
      throw new ApiError(400, (e as Error).message, 'One or more of the arguments submitted is incorrect');
    }
    const existing = this.instances.get(id);
    if (existing && !existing.purged) {
      const replaceable =
        this.config.overridableExistingInstanceStates === 'AnyState' || isTerminal(existing.status);
      if (!replaceable) {
        throw new ApiError(
          500,
          `An Orchestration instance with the status ${existing.status} already exists.`,
        );
      }
    }
    return this.createInstance(fn.name, id, o.input, o.version ?? '', o.parent, existing);
  }

  private async createInstance(
    name: string,
    id: string,
    input: string | null,
    version: string,
    parent: ParentRef | undefined,
    existing: Instance | undefined,
  ): Promise<Instance> {
    const now = Date.now();
    const inst: Instance = {
      id,
      name,
      version,
      gen: existing ? existing.gen + 1 : 0,
      executionId: newExecutionId(),
      input,
      createdTime: now,
      ...(parent ? { parent } : {}),
      status: 'Pending',
      output: null,
      customStatus: null,
      lastUpdatedTime: now,
      history: [],
      played: [],
      rows: 0,
      inbox: [],
      nextSeq: existing?.nextSeq ?? 1,
      open: new Map(),
      busy: false,
      queued: false,
      purged: false,
      retryAt: 0,
      lastTs: 0,
      warnedHistory: false,
    };
    if (existing) {
      // The old incarnation stops receiving anything; its leftovers are garbage.
      this.retire(existing);
      const leftovers = existing.inbox.flatMap((i) =>
        'seq' in i && i.seq !== undefined ? [inboxRowKey(i.seq)] : [],
      );
      if (leftovers.length > 0) await this.store.deleteRows(id, leftovers);
    }
    this.instances.set(id, inst);
    try {
      await this.store.writeInstance(this.record(inst));
    } catch (e) {
      if (this.instances.get(id) === inst) {
        if (existing) this.instances.set(id, existing);
        else this.instances.delete(id);
      }
      if (e instanceof EntityTooLargeError) {
        throw new ApiError(400, e.message, 'One or more of the arguments submitted is incorrect');
      }
      throw e;
    }
    this.kick(inst);
    return inst;
  }

  /** Stops an instance object from receiving work (replaced, purged or continued-as-new). */
  private retire(inst: Instance): void {
    for (const w of inst.open.values()) w.timer?.cancel();
    inst.open.clear();
    inst.shadow = undefined;
  }

  private record(inst: Instance): InstanceRecord {
    return {
      instanceId: inst.id,
      name: inst.name,
      version: inst.version,
      gen: inst.gen,
      executionId: inst.executionId,
      input: inst.input,
      createdTime: inst.createdTime,
      ...(inst.parent ? { parent: inst.parent } : {}),
      status: inst.status,
      customStatus: inst.customStatus,
      lastUpdatedTime: inst.lastUpdatedTime,
    };
  }

  get(id: string): Instance | undefined {
    const inst = this.instances.get(id);
    return inst && !inst.purged ? inst : undefined;
  }

  /** Persists an inbox message before acknowledging it, so a crash cannot lose it. */
  private async enqueuePersisted(
    inst: Instance,
    item: Extract<InboxItem, { kind: 'event' | 'terminate' | 'suspend' | 'resume' }>,
    message: InboxMessage,
  ): Promise<void> {
    try {
      await this.store.putInbox(inst.id, message);
    } catch (e) {
      if (e instanceof EntityTooLargeError) throw new ApiError(400, e.message, 'Invalid event data');
      throw e;
    }
    if (this.instances.get(inst.id) !== inst) return; // replaced or purged meanwhile
    inst.inbox.push(item);
    this.kick(inst);
  }

  async raiseEvent(id: string, name: string, inputJson: string | null): Promise<void> {
    const inst = this.get(id);
    if (!inst) throw new ApiError(404, `No instance with ID '${id}' found.`);
    if (isTerminal(inst.status)) throw new ApiError(410, `Instance '${id}' is ${inst.status}.`);
    try {
      checkPayload(`The data of event '${name}'`, inputJson, this.config.maxPayloadBytes);
    } catch (e) {
      throw new ApiError(400, (e as Error).message, 'Invalid event data');
    }
    const seq = inst.nextSeq++;
    const ts = Date.now();
    const input = inputJson ?? 'null';
    await this.enqueuePersisted(
      inst,
      { kind: 'event', event: events.eventRaised(ts, name, input), seq },
      { seq, kind: 'event', name, input, ts },
    );
  }

  async control(id: string, kind: 'terminate' | 'suspend' | 'resume', reason: string): Promise<void> {
    const inst = this.get(id);
    if (!inst) throw new ApiError(404, `No instance with ID '${id}' found.`);
    if (isTerminal(inst.status)) throw new ApiError(410, `Instance '${id}' is ${inst.status}.`);
    const seq = inst.nextSeq++;
    await this.enqueuePersisted(inst, { kind, reason, seq }, { seq, kind, reason, ts: Date.now() });
  }

  async purge(id: string): Promise<boolean> {
    const inst = this.get(id);
    if (!inst) return false;
    inst.purged = true;
    this.retire(inst);
    inst.inbox = [];
    this.instances.delete(id);
    await this.store.deleteInstance(id);
    return true;
  }

  // ---------------------------------------------------------------------------------------------------
  // Scheduling of episodes

  private runnable(inst: Instance): boolean {
    if (inst.purged || this.stopping || isTerminal(inst.status) || Date.now() < inst.retryAt) return false;
    if (inst.inbox.some((i) => i.kind !== 'event')) return true;
    if (inst.status === 'Suspended') return false;
    return inst.inbox.length > 0 || inst.history.length === 0;
  }

  kick(inst: Instance): void {
    if (inst.busy || inst.queued || !this.runnable(inst)) return;
    inst.queued = true;
    this.orchestratorLimiter.run(async () => {
      inst.queued = false;
      if (inst.busy || !this.runnable(inst)) return;
      inst.busy = true;
      const p = this.runEpisode(inst)
        .catch((err: unknown) => {
          this.log.error(`durable: episode of '${inst.id}' failed, will retry: ${String(err)}`);
          inst.shadow = undefined;
          inst.retryAt = Date.now() + 1000;
          setTimeout(() => this.kick(inst), 1000).unref();
        })
        .finally(() => {
          inst.busy = false;
          this.inflight.delete(p);
          this.kick(inst);
        });
      this.inflight.add(p);
      await p;
    });
  }

  private nextTimestamp(inst: Instance, batch: InboxItem[]): number {
    let ts = Math.max(Date.now(), inst.lastTs + 1);
    for (const item of batch) {
      if (item.kind === 'event' && item.event.EventType === EventType.TimerFired && item.event.FireAt) {
        ts = Math.max(ts, Date.parse(item.event.FireAt));
      }
    }
    return ts;
  }

  /** Takes the inbox prefix one episode processes (bounded so its inbox rows can be released in one go). */
  private takeBatch(inst: Instance): InboxItem[] {
    let persisted = 0;
    let n = 0;
    while (n < inst.inbox.length) {
      const item = inst.inbox[n]!;
      if ('seq' in item && item.seq !== undefined) {
        if (persisted >= 50) break;
        persisted++;
      }
      n++;
    }
    return inst.inbox.splice(0, n);
  }

  private async runEpisode(inst: Instance): Promise<void> {
    const batch = this.takeBatch(inst);
    try {
      await this.processBatch(inst, batch);
    } catch (err) {
      // Nothing was applied: give the batch back, in order, for the retry.
      if (this.instances.get(inst.id) === inst) inst.inbox.unshift(...batch);
      throw err;
    }
  }

  private async processBatch(inst: Instance, batch: InboxItem[]): Promise<void> {
    const consumed: number[] = [];
    const deliver: HistoryEvent[] = [];
    const held: InboxItem[] = [];
    const pre: HistoryEvent[] = [];
    let status = inst.status;
    let terminateReason: string | undefined;
    let abort: string | undefined;
    const stamp = Math.max(Date.now(), inst.lastTs + 1);
    for (const item of batch) {
      if ('seq' in item && item.seq !== undefined) consumed.push(item.seq);
      switch (item.kind) {
        case 'terminate':
          terminateReason ??= item.reason;
          break;
        case 'suspend':
          if (status !== 'Suspended') {
            status = 'Suspended';
            pre.push(events.executionSuspended(stamp, item.reason));
          }
          break;
        case 'resume':
          if (status === 'Suspended') {
            status = inst.history.length === 0 ? 'Pending' : 'Running';
            pre.push(events.executionResumed(stamp, item.reason));
            for (const h of held.splice(0)) if (h.kind === 'event') deliver.push(h.event);
          }
          break;
        case 'abort':
          abort ??= item.message;
          break;
        case 'event':
          if (status === 'Suspended') {
            held.push(item);
            const seq = consumed.indexOf(item.seq ?? -1);
            if (seq >= 0) consumed.splice(seq, 1);
          } else {
            deliver.push(item.event);
          }
          break;
      }
      if (terminateReason !== undefined) break;
    }
    // Held events go back to the front of the inbox, ahead of anything that arrived meanwhile.
    if (held.length > 0) inst.inbox.unshift(...held);

    if (terminateReason !== undefined) return this.terminateNow(inst, terminateReason, consumed, batch);
    if (abort !== undefined) {
      return this.finishFailed(
        inst,
        [...pre],
        consumed,
        `Orchestrator function '${inst.name}' failed: ${abort}`,
        {
          message: abort,
        },
      );
    }
    const needsStart = inst.history.length === 0;
    if (status === 'Suspended' || (deliver.length === 0 && !needsStart)) {
      // Only control events: record them, do not run the orchestrator.
      if (pre.length === 0 && consumed.length === 0) return;
      const ts = stamp;
      await this.persist(inst, pre, {
        status,
        lastUpdatedTime: ts,
        ...(consumed.length ? { consumed } : {}),
      });
      inst.status = status;
      inst.lastUpdatedTime = ts;
      inst.lastTs = Math.max(inst.lastTs, ts);
      this.releaseInbox(inst, consumed);
      return;
    }
    await this.runOrchestrator(inst, pre, deliver, consumed, batch);
  }

  private releaseInbox(inst: Instance, consumed: number[]): void {
    if (consumed.length === 0) return;
    this.background(
      this.store.deleteRows(
        inst.id,
        consumed.map((s) => inboxRowKey(s)),
      ),
      'releasing inbox rows',
    );
  }

  private async persist(inst: Instance, added: HistoryEvent[], snapshot: EpisodeSnapshot): Promise<void> {
    const started = performance.now();
    const used = await this.store.appendEpisode(inst.id, inst.gen, inst.rows, added, snapshot);
    this.stats.persistMs += performance.now() - started;
    inst.rows += used;
    for (const e of added) {
      inst.history.push(e);
      inst.played.push({ ...e, IsPlayed: true });
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // The orchestrator episode

  private payload(inst: Instance, fresh: HistoryEvent[]): Record<string, unknown> {
    const history = inst.played.concat(fresh.map((e) => ({ ...e, IsPlayed: false })));
    let input: unknown = null;
    if (inst.input !== null) input = JSON.parse(inst.input);
    return {
      history,
      input,
      instanceId: inst.id,
      isReplaying: false,
      parentInstanceId: inst.parent?.instanceId ?? null,
      upperSchemaVersion: 1,
      upperSchemaVersionNew: 2,
      longRunningTimerIntervalDuration: formatTimeSpan(this.config.longRunningTimerIntervalMs),
      maximumShortTimerDuration: formatTimeSpan(this.config.maximumShortTimerMs),
      defaultHttpAsyncRequestSleepTimeMillseconds: 30000,
    };
  }

  private async runOrchestrator(
    inst: Instance,
    pre: HistoryEvent[],
    deliver: HistoryEvent[],
    consumed: number[],
    batch: InboxItem[],
  ): Promise<void> {
    const ts = this.nextTimestamp(inst, batch);
    const fresh: HistoryEvent[] = [...pre, events.orchestratorStarted(ts)];
    if (inst.history.length === 0) {
      fresh.push(
        events.executionStarted(ts, {
          name: inst.name,
          input: inst.input,
          instanceId: inst.id,
          executionId: inst.executionId,
          version: inst.version,
          ...(inst.parent
            ? {
                parent: {
                  Name: inst.parent.name,
                  OrchestrationInstance: {
                    InstanceId: inst.parent.instanceId,
                    ExecutionId: inst.parent.executionId,
                  },
                  TaskScheduleId: inst.parent.taskScheduledId,
                },
              }
            : {}),
        }),
      );
    }
    for (const e of deliver) fresh.push(e);
    const fail = (
      message: string,
      failure: { message: string; stack?: string },
      extra: HistoryEvent[] = [],
    ) => this.finishFailed(inst, [...fresh, ...extra], consumed, message, failure, ts);

    const fn = this.orchestratorFunction(inst.name);
    if (!fn) {
      const msg = this.unknownFunction(inst.name, 'orchestration');
      return fail(msg, { message: msg });
    }

    // 1. Run the real orchestrator over the whole history.
    let state: OrchestratorState | undefined;
    let thrown: { message: string; stack?: string } | undefined;
    const invokeStarted = performance.now();
    this.stats.episodes++;
    this.stats.historyEventsSent += inst.history.length + fresh.length;
    try {
      const result = await this.opts.invoke(
        fn,
        { kind: 'orchestration', payload: this.payload(inst, fresh) },
        { invocationId: randomUUID() },
      );
      if (isOrchestratorState(result)) state = result;
      else
        thrown = {
          message: `the orchestrator returned an unexpected value (${typeof result}), not an OrchestratorState`,
        };
    } catch (err) {
      const parsed = parseOrchestratorFailure(err);
      thrown = {
        message: parsed.message,
        ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
      };
      if (parsed.state && 'customStatus' in parsed.state) {
        try {
          inst.customStatus = toJsonText(parsed.state.customStatus, 'The custom status');
        } catch {
          // keep the previous custom status
        }
      }
    }
    this.stats.invokeMs += performance.now() - invokeStarted;
    if (this.instances.get(inst.id) !== inst) return; // purged or replaced while the orchestrator ran
    if (thrown || !state) {
      const t = thrown ?? { message: 'no orchestrator state' };
      return fail(`Orchestrator function '${inst.name}' failed: ${t.message}`, t);
    }

    // 2. Shadow replay: which ids the library gave the actions, which of them are new.
    const replayStarted = performance.now();
    const top = topLevelActions(state);
    let newItems: WorkItem[];
    let shadow = inst.shadow;
    if (shadow && shadow.syncActions(top) === -1) {
      for (const e of fresh) shadow.apply(e);
      newItems = shadow.takeNew();
    } else {
      const full = replayFromHistory(top, [...inst.history, ...fresh], this.replayOptions());
      if (full.nonDeterminism) {
        inst.shadow = undefined;
        return fail(full.nonDeterminism, { message: full.nonDeterminism });
      }
      shadow = full.shadow;
      newItems = full.newItems;
    }
    this.stats.replayMs += performance.now() - replayStarted;
    if (shadow.items.length > this.config.maxOrchestrationActions) {
      const msg = `Orchestrator function '${inst.name}' failed: the orchestration exceeded the maximum of ${this.config.maxOrchestrationActions} actions (maxOrchestrationActions).`;
      inst.shadow = undefined;
      return fail(msg, { message: msg });
    }

    // 3. Custom status, output and new work, each checked before anything is persisted.
    let customStatus: string | undefined;
    const scheduling: HistoryEvent[] = [];
    try {
      if ('customStatus' in state && state.customStatus !== undefined) {
        customStatus = toJsonText(state.customStatus, 'The custom status');
        checkPayload('The custom status', customStatus, this.config.maxPayloadBytes);
      }
      for (const item of newItems) scheduling.push(this.schedulingEvent(inst, item, ts, state.isDone));
    } catch (err) {
      inst.shadow = undefined;
      const message = err instanceof Error ? err.message : String(err);
      return fail(`Orchestrator function '${inst.name}' failed: ${message}`, { message });
    }

    if (state.isDone && shadow.continueAsNew) {
      inst.shadow = undefined;
      return this.continueAsNew(inst, shadow.continueAsNew, consumed, customStatus, ts);
    }
    if (state.isDone) {
      let output: string;
      try {
        output = toJsonText(state.output, 'The orchestrator output');
        checkPayload('The orchestrator output', output, this.config.maxPayloadBytes);
      } catch (err) {
        inst.shadow = undefined;
        const message = err instanceof Error ? err.message : String(err);
        return fail(`Orchestrator function '${inst.name}' failed: ${message}`, { message }, scheduling);
      }
      const added = [
        ...fresh,
        ...scheduling,
        events.orchestratorCompleted(ts),
        events.executionCompleted(ts, OrchestrationStatusCode.Completed, output),
      ];
      await this.persist(inst, added, {
        status: 'Completed',
        lastUpdatedTime: ts,
        ...(customStatus !== undefined ? { customStatus } : {}),
        ...(consumed.length ? { consumed } : {}),
      });
      inst.shadow = undefined;
      this.applyTerminal(inst, 'Completed', output, ts, customStatus, consumed);
      return;
    }

    // 4. Persist the episode, then start the new work.
    const added = [...fresh, ...scheduling, events.orchestratorCompleted(ts)];
    try {
      await this.persist(inst, added, {
        status: 'Running',
        lastUpdatedTime: ts,
        ...(customStatus !== undefined ? { customStatus } : {}),
        ...(consumed.length ? { consumed } : {}),
      });
    } catch (err) {
      inst.shadow = undefined;
      throw err;
    }
    inst.shadow = shadow;
    inst.status = 'Running';
    inst.lastUpdatedTime = ts;
    inst.lastTs = ts;
    if (customStatus !== undefined) inst.customStatus = customStatus;
    this.releaseInbox(inst, consumed);
    this.warnLongHistory(inst);
    for (let i = 0; i < newItems.length; i++) this.dispatch(inst, newItems[i]!, scheduling[i]!);
    this.cancelAbandonedTimers(inst);
  }

  private replayOptions() {
    return {
      maxShortTimerMs: this.config.maximumShortTimerMs,
      longTimerIntervalMs: this.config.longRunningTimerIntervalMs,
    };
  }

  private warnLongHistory(inst: Instance): void {
    if (inst.warnedHistory || inst.history.length < this.config.historyWarningEvents) return;
    inst.warnedHistory = true;
    this.log.warn(
      `durable: instance '${inst.id}' (${inst.name}) has ${inst.history.length} history events; every episode replays ` +
        `all of them. Consider continueAsNew to bound the history.`,
    );
  }

  /** Timers the orchestrator canceled (e.g. the loser of Task.any) need not fire: drop them. */
  private cancelAbandonedTimers(inst: Instance): void {
    if (!inst.shadow) return;
    for (const id of inst.shadow.canceledOpenTimers()) {
      const w = inst.open.get(id);
      if (w?.kind !== 'timer') continue;
      w.timer?.cancel();
      inst.open.delete(id);
    }
  }

  /** Builds the scheduling event for a new work item, validating it (unknown names, limits, unsupported). */
  private schedulingEvent(inst: Instance, item: WorkItem, ts: number, finalEpisode: boolean): HistoryEvent {
    const a = item.action;
    switch (item.kind) {
      case 'activity': {
        const name = a.functionName ?? '';
        const fn = this.opts.registry.get(name);
        if (!finalEpisode && fn?.kind !== 'activity') throw new Error(this.unknownFunction(name, 'activity'));
        const input = encodeActivityInput(a.input);
        checkPayload(`The input of activity '${name}'`, input, this.config.maxPayloadBytes);
        return events.taskScheduled(ts, item.id, fn?.name ?? name, input);
      }
      case 'timer':
        return events.timerCreated(ts, item.id, item.fireAt ?? ts);
      case 'subOrchestration': {
        const name = a.functionName ?? '';
        const fn = this.orchestratorFunction(name);
        if (!finalEpisode && !fn) throw new Error(this.unknownFunction(name, 'orchestration'));
        const childId = a.instanceId || `${inst.executionId}:${item.id}`;
        if (childId === inst.id || childId === inst.parent?.instanceId) {
          throw new Error(
            'The instance ID of a sub-orchestration must be different than the instance ID of a parent orchestration.',
          );
        }
        validateInstanceId(childId);
        const input = encodeOrchestrationInput(a.input);
        checkPayload(`The input of sub-orchestration '${name}'`, input, this.config.maxPayloadBytes);
        return events.subOrchestrationCreated(ts, item.id, fn?.name ?? name, childId, input);
      }
      case 'callHttp':
        throw new Error(
          'context.df.callHttp is not supported by devhost (durable HTTP calls need the Durable extension). ' +
            'Call the endpoint from an activity instead, or run the app on Azure.',
        );
      default:
        throw new Error(
          `Durable entities are not supported by devhost (the orchestrator used ${describeEntityAction(item)}). ` +
            'Use activities and orchestration state instead, or run the app on Azure.',
        );
    }
  }

  private dispatch(inst: Instance, item: WorkItem, scheduled: HistoryEvent): void {
    switch (item.kind) {
      case 'activity':
        this.dispatchActivity(inst, item.id, scheduled.Name ?? itemName(item), scheduled.Input ?? null);
        break;
      case 'timer':
        this.armTimer(inst, item.id, scheduled.FireAt ?? new Date().toISOString());
        break;
      case 'subOrchestration':
        inst.open.set(item.id, { kind: 'subOrchestration' });
        this.background(
          this.createChild(
            inst,
            item.id,
            scheduled.Name ?? '',
            scheduled.InstanceId ?? '',
            scheduled.Input ?? null,
          ),
          `starting sub-orchestration ${scheduled.InstanceId ?? ''}`,
        );
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Work: activities, timers, sub-orchestrations

  private dispatchActivity(inst: Instance, id: number, name: string, scheduledInput: string | null): void {
    inst.open.set(id, { kind: 'activity' });
    const gen = inst.gen;
    const queued = performance.now();
    this.activityLimiter.run(async () => {
      if (!this.isCurrent(inst, gen, id) || this.stopping) return;
      this.stats.activities++;
      this.stats.activityQueueMs += performance.now() - queued;
      const fn = this.opts.registry.get(name);
      let event: HistoryEvent;
      let abort: string | undefined;
      if (!fn || fn.kind !== 'activity') {
        event = events.taskFailed(Date.now(), id, {
          reason: this.unknownFunction(name, 'activity'),
          details: '',
        });
      } else {
        try {
          const input = decodeActivityInput(scheduledInput);
          const result = await this.opts.invoke(
            fn,
            { kind: 'activity', input },
            { invocationId: randomUUID() },
          );
          const text = encodeActivityResult(result);
          checkPayload(`The output of activity '${fn.name}'`, text, this.config.maxPayloadBytes);
          event = events.taskCompleted(Date.now(), id, text);
        } catch (err) {
          if (err instanceof PayloadTooLargeError) abort = err.message;
          event = events.taskFailed(Date.now(), id, activityFailure(fn.name, err));
        }
      }
      if (abort !== undefined) {
        if (this.isCurrent(inst, gen, id)) {
          inst.open.delete(id);
          inst.inbox.push({ kind: 'abort', message: abort });
          this.kick(inst);
        }
        return;
      }
      this.deliver(inst, gen, id, event);
    });
  }

  private isCurrent(inst: Instance, gen: number, id: number): boolean {
    return this.instances.get(inst.id) === inst && inst.gen === gen && inst.open.has(id) && !inst.purged;
  }

  private deliver(inst: Instance, gen: number, id: number, event: HistoryEvent): void {
    if (!this.isCurrent(inst, gen, id)) return;
    inst.open.delete(id);
    inst.inbox.push({ kind: 'event', event });
    this.kick(inst);
  }

  private armTimer(inst: Instance, id: number, fireAt: string): void {
    const at = Date.parse(fireAt);
    const timer = this.timers.schedule(at, { inst, gen: inst.gen, id, fireAt });
    inst.open.set(id, { kind: 'timer', timer });
  }

  private onTimer(p: TimerPayload): void {
    this.deliver(p.inst, p.gen, p.id, events.timerFired(Date.now(), p.id, p.fireAt));
  }

  private async createChild(
    parent: Instance,
    taskId: number,
    name: string,
    childId: string,
    input: string | null,
  ): Promise<void> {
    const gen = parent.gen;
    const ref: ParentRef = {
      instanceId: parent.id,
      executionId: parent.executionId,
      name: parent.name,
      taskScheduledId: taskId,
    };
    const existing = this.get(childId);
    if (existing && !isTerminal(existing.status)) {
      this.deliver(
        parent,
        gen,
        taskId,
        events.subOrchestrationFailed(Date.now(), taskId, {
          reason: `An Orchestration instance with the status ${existing.status} already exists.`,
          details: `Message: An Orchestration instance with the status ${existing.status} already exists., StackTrace: `,
        }),
      );
      return;
    }
    try {
      await this.createInstance(name, childId, input, '', ref, existing);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.deliver(
        parent,
        gen,
        taskId,
        events.subOrchestrationFailed(Date.now(), taskId, {
          reason: `Starting sub-orchestration '${childId}' failed: ${message}`,
          details: `Message: ${message}, StackTrace: `,
        }),
      );
    }
  }

  /** A finished child reports to its parent (SubOrchestrationInstanceCompleted / Failed, §7.6). */
  private notifyParent(child: Instance): void {
    const ref = child.parent;
    if (!ref) return;
    const parent = this.get(ref.instanceId);
    if (!parent || parent.executionId !== ref.executionId) return;
    const id = ref.taskScheduledId;
    const now = Date.now();
    let event: HistoryEvent;
    if (child.status === 'Completed') {
      event = events.subOrchestrationCompleted(now, id, child.output ?? 'null');
    } else if (child.status === 'Terminated') {
      // Production sends Details = null, which the JS parent cannot parse; an empty string keeps it catchable.
      event = events.subOrchestrationFailed(now, id, { reason: child.output ?? '', details: '' });
    } else {
      const f = child.failure ?? { message: child.output ?? '' };
      const failure: Failure = {
        reason: child.output ?? '',
        details: `Message: ${f.message}, StackTrace: ${f.stack ?? ''}`,
      };
      event = events.subOrchestrationFailed(now, id, failure);
    }
    this.deliver(parent, parent.gen, id, event);
  }

  // ---------------------------------------------------------------------------------------------------
  // Endings

  private async finishFailed(
    inst: Instance,
    fresh: HistoryEvent[],
    consumed: number[],
    output: string,
    failure: { message: string; stack?: string },
    at?: number,
  ): Promise<void> {
    const ts = at ?? Math.max(Date.now(), inst.lastTs + 1);
    const hasStarted = fresh.some((e) => e.EventType === EventType.OrchestratorStarted);
    const added = [
      ...fresh,
      ...(hasStarted ? [events.orchestratorCompleted(ts)] : []),
      events.executionCompleted(ts, OrchestrationStatusCode.Failed, output),
    ];
    await this.persist(inst, added, {
      status: 'Failed',
      lastUpdatedTime: ts,
      ...(inst.customStatus !== null ? { customStatus: inst.customStatus } : {}),
      ...(consumed.length ? { consumed } : {}),
    });
    inst.failure = failure;
    inst.shadow = undefined;
    this.log.warn(`durable: instance '${inst.id}' (${inst.name}) failed: ${output}`);
    this.applyTerminal(inst, 'Failed', output, ts, undefined, consumed);
  }

  private async terminateNow(
    inst: Instance,
    reason: string,
    consumed: number[],
    batch: InboxItem[],
  ): Promise<void> {
    const ts = Math.max(Date.now(), inst.lastTs + 1);
    const added = [
      events.executionTerminated(ts, reason),
      events.executionCompleted(ts, OrchestrationStatusCode.Terminated, reason),
    ];
    // Everything still queued for this instance is dropped with it.
    const dropped = [
      ...new Set(
        [...batch, ...inst.inbox].flatMap((i) =>
          'seq' in i && i.seq !== undefined && !consumed.includes(i.seq) ? [i.seq] : [],
        ),
      ),
    ];
    inst.inbox = [];
    await this.persist(inst, added, {
      status: 'Terminated',
      lastUpdatedTime: ts,
      consumed: [...consumed, ...dropped],
    });
    inst.shadow = undefined;
    this.applyTerminal(inst, 'Terminated', reason, ts, undefined, [...consumed, ...dropped]);
  }

  private applyTerminal(
    inst: Instance,
    status: RuntimeStatus,
    output: string,
    ts: number,
    customStatus: string | undefined,
    consumed: number[],
  ): void {
    inst.status = status;
    inst.output = output;
    inst.lastUpdatedTime = ts;
    inst.lastTs = Math.max(inst.lastTs, ts);
    if (customStatus !== undefined) inst.customStatus = customStatus;
    for (const w of inst.open.values()) w.timer?.cancel();
    inst.open.clear();
    // Messages that arrived after the final episode started are dropped, as DTFx drops them.
    const late = inst.inbox.flatMap((i) => ('seq' in i && i.seq !== undefined ? [i.seq] : []));
    inst.inbox = [];
    this.releaseInbox(inst, [...consumed, ...late]);
    this.notifyParent(inst);
  }

  private async continueAsNew(
    inst: Instance,
    action: Action,
    consumed: number[],
    customStatus: string | undefined,
    ts: number,
  ): Promise<void> {
    let input: string;
    try {
      // The library pre-stringifies string inputs and the extension stores the value as given, so a string
      // arrives double-encoded in the next generation (durable-host-spec §7.4), exactly as on Azure.
      input = toJsonText(action.input, 'The continueAsNew input');
      checkPayload('The continueAsNew input', input, this.config.maxPayloadBytes);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return this.finishFailed(
        inst,
        [],
        consumed,
        `Orchestrator function '${inst.name}' failed: ${message}`,
        {
          message,
        },
      );
    }
    // Inbox rows consumed by the old generation go first: the new instance record makes old history garbage.
    if (consumed.length > 0) await this.store.deleteRows(inst.id, consumed.map(inboxRowKey));
    const next = {
      gen: inst.gen + 1,
      executionId: newExecutionId(),
      input,
      status: 'Running' as RuntimeStatus,
      customStatus: customStatus ?? inst.customStatus,
      lastUpdatedTime: ts,
    };
    try {
      await this.store.writeInstance({ ...this.record(inst), ...next });
    } catch (err) {
      if (!(err instanceof EntityTooLargeError)) throw err;
      return this.finishFailed(inst, [], [], `Orchestrator function '${inst.name}' failed: ${err.message}`, {
        message: err.message,
      });
    }
    const oldGen = inst.gen;
    const oldRows = inst.rows;
    this.retire(inst);
    Object.assign(inst, next, { history: [], played: [], rows: 0, lastTs: ts });
    this.background(this.collectGeneration(inst.id, oldGen, oldRows), 'removing the previous generation');
  }

  private async collectGeneration(instanceId: string, gen: number, rows: number): Promise<void> {
    await this.store.deleteRows(
      instanceId,
      Array.from({ length: rows }, (_, i) => historyRowKey(gen, i)),
    );
  }
}

function describeEntityAction(item: WorkItem): string {
  const a = item.action;
  const target = a.instanceId ? ` on '${a.instanceId}'` : '';
  switch (item.kind) {
    case 'callEntity':
      return `callEntity '${a.operation ?? ''}'${target}`;
    case 'signalEntity':
      return `signalEntity '${a.operation ?? ''}'${target}`;
    case 'lockEntities':
      return 'lock()';
    default:
      return 'an entity operation';
  }
}
