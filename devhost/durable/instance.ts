/**
 * One orchestration instance as the engine keeps it in memory between episodes: identity, status,
 * history, inbox and open work (durable-host-spec §5). Plain data plus the functions that build it,
 * convert it to and from its stored record, and take it out of service.
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from './apiError';
import { EventType, events, type HistoryEvent, type RuntimeStatus } from './history';
import type { ShadowReplay } from './replay';
import type { InboxMessage, InstanceRecord, LoadedInstance, ParentRef } from './store';
import type { TimerHandle } from './timers';

export type InboxItem =
  | { kind: 'event'; event: HistoryEvent; seq?: number }
  | { kind: 'terminate' | 'suspend' | 'resume'; reason: string; seq?: number }
  /** Fails the instance at the next episode (e.g. an activity returned an oversized payload). */
  | { kind: 'abort'; message: string };

/** Work the orchestrator scheduled that has not completed yet, keyed by its sequence id. */
export interface OpenWork {
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

/** A fresh id without dashes (execution ids, and instance ids the client leaves to the host). */
export const newExecutionId = (): string => randomUUID().replace(/-/g, '');

/** The sequence numbers of the persisted inbox rows among `items` (in-memory items have none). */
export function persistedSeqs(items: readonly InboxItem[]): number[] {
  return items.flatMap((i) => ('seq' in i && i.seq !== undefined ? [i.seq] : []));
}

/** A fresh, Pending instance with an empty history. */
export function newInstance(o: {
  id: string;
  name: string;
  version: string;
  gen: number;
  input: string | null;
  parent: ParentRef | undefined;
  nextSeq: number;
  now: number;
}): Instance {
  return {
    id: o.id,
    name: o.name,
    version: o.version,
    gen: o.gen,
    executionId: newExecutionId(),
    input: o.input,
    createdTime: o.now,
    ...(o.parent ? { parent: o.parent } : {}),
    status: 'Pending',
    output: null,
    customStatus: null,
    lastUpdatedTime: o.now,
    history: [],
    played: [],
    rows: 0,
    inbox: [],
    nextSeq: o.nextSeq,
    open: new Map(),
    busy: false,
    queued: false,
    purged: false,
    retryAt: 0,
    lastTs: 0,
    warnedHistory: false,
  };
}

/** Rebuilds an instance from what the store loaded at start (its open work is resumed separately). */
export function instanceFromLoaded(l: LoadedInstance): Instance {
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
    inbox: l.inbox.map(inboxItemFrom),
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

/** The in-memory inbox item of a stored inbox message. */
export function inboxItemFrom(m: InboxMessage): InboxItem {
  if (m.kind === 'event')
    return { kind: 'event', event: events.eventRaised(m.ts, m.name, m.input), seq: m.seq };
  return { kind: m.kind, reason: m.reason, seq: m.seq };
}

/** The stored instance record (the row every status query and restart reads). */
export function instanceRecord(inst: Instance): InstanceRecord {
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

/**
 * A history timestamp for the instance at `now` (the engine's clock): never before its last one, so
 * events stay ordered.
 */
export const nextStamp = (inst: Pick<Instance, 'lastTs'>, now: number): number =>
  Math.max(now, inst.lastTs + 1);

/** Stops an instance object from receiving work (replaced, purged or continued-as-new). */
export function retire(inst: Instance): void {
  for (const w of inst.open.values()) w.timer?.cancel();
  inst.open.clear();
  inst.shadow = undefined;
}
