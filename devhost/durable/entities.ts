/**
 * Durable entities (durable-host-spec appendix B): each entity (`@name@key`) has a queue of operations
 * and at most one batch running. A batch takes every queued operation, in arrival order, calls the
 * app's `df.app.entity` function once with the library's batch protocol (`{ self, exists, state, batch }`)
 * and commits its outcome in one SQLite transaction: the new state, the removal of the operations it
 * ran, the signals the entity sent and the answers to calling orchestrations (inbox rows of those
 * instances). Only then is anything delivered, so a kill of every process at any moment neither loses
 * an acknowledged operation nor runs a committed one twice.
 *
 * Operations reach the queue from clients (`signalEntity`, the entity HTTP API), from orchestrations
 * (`EventSent` events, committed with the episode that sent them: `TaskHub.persist`) and from other
 * entities (their signals, committed with their batch).
 *
 * Critical sections (`context.df.lock`, replay schema V4) follow the extension's protocol: the lock
 * request visits the entities of the section one after the other in scheduler-id order (so two sections
 * cannot deadlock), each taking its lock for the orchestration execution, and the last one answers the
 * orchestration. While an entity is locked only that execution's messages run; everything else stays
 * queued, in order, until a release (one per entity, sent when the section ends) or until the
 * execution ends, continues as new or is purged (a lock of an execution that no longer runs is free).
 */
import { randomUUID } from 'node:crypto';
import type { RegisteredFunction } from '../contracts';
import { ApiError } from './apiError';
import { entitySchedulerId, parseEntityId } from './entityTypes';
import { EventType, type HistoryEvent, isTerminal } from './history';
import type { EntitySink, TaskHub } from './hub';
import { inboxItemFrom, type Instance } from './instance';
import { Limiter } from './limiter';
import { checkPayload, PayloadTooLargeError } from './payload';
import type { SqliteTaskHubStore } from './sqliteStore';
import type {
  EntityBatchCommit,
  EntityCaller,
  InboxMessage,
  StoredEntityMessage,
  StoredEntityRecord,
} from './store';

interface LiveEntity {
  id: string;
  name: string;
  key: string;
  record: StoredEntityRecord | null;
  queue: StoredEntityMessage[];
  running: boolean;
}

/** What the entity function returns (the library's `EntityState`). */
interface BatchResult {
  entityExists?: boolean;
  entityState?: string;
  results?: { isError?: boolean; result?: string; duration?: number }[];
  signals?: { target?: { name?: string; key?: string }; name?: string; input?: string }[];
}

/**
 * The request message recorded in an orchestration's `EventSent.Input` (the library reads `id`). A lock
 * request carries the sorted scheduler ids of its critical section in `lockset` (position `pos`); a
 * release carries `release: true`.
 */
interface RequestMessage {
  id: string;
  op: string;
  signal: boolean;
  input?: string;
  parent?: string;
  parentExecution?: string;
  timestamp: string;
  lockset?: string[];
  pos?: number;
  release?: boolean;
}

/** What a granted lock request answers (the library resolves `lock()` with its own lock object). */
const lockGranted = JSON.stringify({ result: JSON.stringify('Lock Acquisition Completed') });

const exists = (r: StoredEntityRecord | null): boolean => r !== null && r.missing !== true;

const sameCaller = (a: EntityCaller | undefined, b: EntityCaller): boolean =>
  a !== undefined && a.instanceId === b.instanceId && a.executionId === b.executionId;

/** Largest number of operations one entity batch runs (the rest wait for the next batch). */
const maxBatch = 200;

export class EntityRunner implements EntitySink {
  private readonly entities = new Map<string, LiveEntity>();
  private readonly limiter: Limiter;
  private nextSeq = 1;
  private stopped = false;
  private readonly idle = new Set<() => void>();

  constructor(
    private readonly hub: TaskHub,
    private readonly store: SqliteTaskHubStore,
    private readonly kickInstance: (inst: Instance) => void,
  ) {
    this.limiter = new Limiter(hub.config.maxConcurrentOrchestratorFunctions);
  }

  /** Loads every entity and queued operation, and runs what was queued before a crash. */
  restore(): void {
    const { records, queue } = this.store.loadEntities();
    for (const r of records) this.entity(r.entityId).record = r;
    for (const m of queue) {
      this.entity(m.entityId).queue.push(m);
      this.nextSeq = Math.max(this.nextSeq, m.seq + 1);
    }
    for (const e of this.entities.values()) this.schedule(e);
    if (records.length + queue.length > 0) {
      this.hub.log.info(
        `durable: restored ${records.length} entit(ies), ${queue.length} queued operation(s)`,
      );
    }
  }

  stop(): void {
    this.stopped = true;
  }

  /** The state of an entity, or undefined when it does not exist. */
  read(name: string, key: string): { exists: boolean; state?: string } {
    const e = this.entities.get(entitySchedulerId(name, key));
    if (!e?.record || !exists(e.record)) return { exists: false };
    return e.record.state === undefined ? { exists: true } : { exists: true, state: e.record.state };
  }

  /**
   * The entities that exist (`GET entities[/{name}]`), ordered by id so pages are stable: name
   * case-insensitive, last operation time within [from, to].
   */
  list(q: {
    name?: string;
    fromMs: number;
    toMs: number;
  }): { name: string; key: string; lastModified: number; state?: string }[] {
    const name = q.name?.toLowerCase();
    const out: { name: string; key: string; lastModified: number; state?: string }[] = [];
    for (const e of this.entities.values()) {
      const r = e.record;
      if (!r || !exists(r) || (name !== undefined && e.name !== name)) continue;
      if (r.lastModified < q.fromMs || r.lastModified > q.toMs) continue;
      out.push({
        name: e.name,
        key: e.key,
        lastModified: r.lastModified,
        ...(r.state === undefined ? {} : { state: r.state }),
      });
    }
    return out.sort((a, b) =>
      a.name === b.name ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.name < b.name ? -1 : 1,
    );
  }

  /** A client's signal: persisted before it resolves (the HTTP API answers 202 after that). */
  async signal(name: string, key: string, op: string, inputJson: string | undefined): Promise<void> {
    if (!this.entityFunction(name)) {
      throw new ApiError(400, this.unknownEntity(name), 'No such entity function');
    }
    const m = this.message(entitySchedulerId(name, key), op, inputJson);
    await this.store.putEntityMessages([m]);
    this.enqueue([m]);
  }

  /**
   * The entity operations an episode's new events send, to be committed with the episode. `EventSent`
   * carries the target, the operation and the request message (durable-host-spec appendix B).
   */
  messagesOf(inst: Instance, added: readonly HistoryEvent[]): StoredEntityMessage[] {
    const out: StoredEntityMessage[] = [];
    for (const e of added) {
      if (e.EventType !== EventType.EventSent || !e.InstanceId?.startsWith('@')) continue;
      const req = JSON.parse(e.Input ?? '{}') as RequestMessage;
      const caller = { instanceId: inst.id, executionId: inst.executionId };
      if (req.lockset || req.release) {
        const m = this.message(e.InstanceId, '', undefined);
        m.caller = caller;
        m.requestId = req.id;
        if (req.lockset) m.lock = { set: req.lockset, pos: req.pos ?? 0 };
        else m.release = true;
        out.push(m);
        continue;
      }
      const m = this.message(e.InstanceId, e.Name ?? req.op, req.input);
      if (!req.signal) {
        m.requestId = req.id;
        m.caller = { instanceId: inst.id, executionId: inst.executionId };
      }
      out.push(m);
    }
    return out;
  }

  /** Queues operations whose rows are committed. */
  enqueue(messages: readonly StoredEntityMessage[]): void {
    for (const m of messages) {
      const e = this.entity(m.entityId);
      e.queue.push(m);
      // A message for an entity another execution holds waits for the release: nothing to look at now
      // (keeps a stream of signals to a locked entity linear).
      const h = e.record?.lockedBy;
      if (h && !sameCaller(m.caller, h) && this.caller(h)) continue;
      this.schedule(e);
    }
  }

  /** The `EventSent.Input` of an orchestration's call or signal (a fresh request id). */
  static requestMessage(inst: Instance, op: string, input: unknown, signal: boolean, ts: number): string {
    const req: RequestMessage = {
      id: randomUUID(),
      op,
      signal,
      ...(input === undefined ? {} : { input: JSON.stringify(input) }),
      parent: inst.id,
      parentExecution: inst.executionId,
      timestamp: new Date(ts).toISOString(),
    };
    return JSON.stringify(req);
  }

  /**
   * The `EventSent.Input` of an orchestration's lock request (`context.df.lock`): sent to the first entity
   * of `set` (scheduler ids, sorted), which forwards it to the next once it holds its lock.
   */
  static lockMessage(inst: Instance, requestId: string, set: readonly string[], ts: number): string {
    const req: RequestMessage = {
      id: requestId,
      op: '',
      signal: false,
      parent: inst.id,
      parentExecution: inst.executionId,
      timestamp: new Date(ts).toISOString(),
      lockset: [...set],
      pos: 0,
    };
    return JSON.stringify(req);
  }

  /** The `EventSent.Input` of the release of one locked entity at the end of a critical section. */
  static releaseMessage(inst: Instance, requestId: string, ts: number): string {
    const req: RequestMessage = {
      id: requestId,
      op: '',
      signal: true,
      parent: inst.id,
      parentExecution: inst.executionId,
      timestamp: new Date(ts).toISOString(),
      release: true,
    };
    return JSON.stringify(req);
  }

  /**
   * An orchestration execution ended (or continued as new, or was purged): the entities it still held
   * locked are free again, and what waited for them runs.
   */
  released(instanceId: string): void {
    for (const e of this.entities.values()) {
      if (e.record?.lockedBy?.instanceId === instanceId) this.schedule(e);
    }
  }

  entityFunction(name: string): RegisteredFunction | undefined {
    const fn = this.hub.opts.registry.get(name);
    return fn?.kind === 'entity' ? fn : undefined;
  }

  unknownEntity(name: string): string {
    const known = this.hub.opts.registry
      .byKind('entity')
      .map((f) => `'${f.name}'`)
      .join(', ');
    return (
      `The function '${name}' doesn't exist, is disabled, or is not an entity function. Additional info: ` +
      `The following are the known entity functions: ${known}.`
    );
  }

  /**
   * Resolves once no entity has a running batch or operations that could run now (operations waiting
   * for another execution's lock to be released do not count).
   */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  private isIdle(): boolean {
    for (const e of this.entities.values()) if (e.running || this.runnable(e)) return false;
    return true;
  }

  private message(entityId: string, op: string, inputJson: string | undefined): StoredEntityMessage {
    return { entityId, seq: this.nextSeq++, op, ...(inputJson === undefined ? {} : { input: inputJson }) };
  }

  private entity(id: string): LiveEntity {
    let e = this.entities.get(id);
    if (!e) {
      const { name, key } = parseEntityId(id);
      e = { id, name, key, record: null, queue: [], running: false };
      this.entities.set(id, e);
    }
    return e;
  }

  private schedule(e: LiveEntity): void {
    if (e.running || this.stopped || !this.runnable(e)) return;
    e.running = true;
    this.limiter.run(async () => {
      try {
        await this.runBatch(e);
      } catch (err) {
        // Storage failed: the operations stay queued (in memory and on disk); try again shortly.
        this.hub.log.error(`durable: entity '${e.id}' batch failed: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        e.running = false;
        this.schedule(e);
        if (!e.running && this.idle.size > 0 && this.isIdle()) {
          for (const resolve of this.idle) resolve();
          this.idle.clear();
        }
      }
    });
  }

  /** The orchestration holding the entity's lock, while it runs (a lock of an ended execution is free). */
  private holder(e: LiveEntity): EntityCaller | undefined {
    const h = e.record?.lockedBy;
    return h && this.caller(h) ? h : undefined;
  }

  /**
   * What runs next: while the entity is locked, only the holder's messages (everything else waits, in
   * order, for the release); otherwise the queued operations in arrival order up to the next lock
   * request or release, which then runs on its own (`control`).
   */
  private plan(e: LiveEntity): { ops: StoredEntityMessage[]; control?: StoredEntityMessage } {
    const holder = this.holder(e);
    const ops: StoredEntityMessage[] = [];
    for (const m of e.queue) {
      if (holder && !sameCaller(m.caller, holder)) continue;
      if (m.lock || m.release) return ops.length === 0 ? { ops, control: m } : { ops };
      ops.push(m);
      if (ops.length >= maxBatch) break;
    }
    return { ops };
  }

  private runnable(e: LiveEntity): boolean {
    if (e.queue.length === 0) return false;
    if (!e.record?.lockedBy) return true;
    const p = this.plan(e);
    return p.ops.length > 0 || p.control !== undefined;
  }

  /** The record to store: null when the entity neither exists nor is locked. */
  private recordOf(
    e: LiveEntity,
    entityExists: boolean,
    state: string | undefined,
    lastModified: number,
    lockedBy: EntityCaller | undefined,
  ): StoredEntityRecord | null {
    if (!entityExists && !lockedBy) return null;
    return {
      entityId: e.id,
      ...(state === undefined ? {} : { state }),
      lastModified,
      ...(lockedBy ? { lockedBy } : {}),
      ...(entityExists ? {} : { missing: true as const }),
    };
  }

  private async runBatch(e: LiveEntity): Promise<void> {
    if (this.stopped) return;
    const { ops, control } = this.plan(e);
    if (control) return this.runControl(e, control);
    if (ops.length === 0) return;
    const fn = this.entityFunction(e.name);
    let result: BatchResult;
    if (!fn) {
      const message = this.unknownEntity(e.name);
      this.hub.log.warn(`durable: ${ops.length} operation(s) for entity '${e.id}' dropped: ${message}`);
      result = {
        entityExists: exists(e.record),
        ...(e.record?.state === undefined ? {} : { entityState: e.record.state }),
        results: ops.map(() => ({ isError: true, result: JSON.stringify(message) })),
        signals: [],
      };
    } else {
      const batch = {
        self: { name: e.name, key: e.key },
        exists: exists(e.record),
        ...(e.record?.state === undefined ? {} : { state: e.record.state }),
        batch: ops.map((m) => ({
          name: m.op,
          signal: m.requestId === undefined,
          ...(m.input === undefined ? {} : { input: m.input }),
          ...(m.requestId === undefined ? {} : { id: m.requestId }),
        })),
      };
      const returned = await this.hub.opts.invoke(
        fn,
        { kind: 'entity', batch },
        { invocationId: randomUUID() },
      );
      result = (typeof returned === 'string' ? JSON.parse(returned) : returned) as BatchResult;
      if (!result || typeof result !== 'object' || !Array.isArray(result.results)) {
        throw new Error(`the entity function '${fn.name}' returned no batch result (${typeof returned})`);
      }
    }
    result = this.withinLimits(e, ops, result);

    const now = this.hub.now();
    const record = this.recordOf(
      e,
      result.entityExists === true,
      typeof result.entityState === 'string' ? result.entityState : undefined,
      now,
      this.holder(e),
    );
    const sent: StoredEntityMessage[] = [];
    for (const s of result.signals ?? []) {
      if (!s.target?.name || s.target.key === undefined || !s.name) continue;
      sent.push(
        this.message(entitySchedulerId(s.target.name, s.target.key), s.name, s.input ? s.input : undefined),
      );
    }
    const replies: { inst: Instance; message: InboxMessage }[] = [];
    ops.forEach((m, i) => {
      if (m.requestId === undefined || !m.caller) return;
      const inst = this.caller(m.caller);
      if (!inst) return; // the caller finished, was purged or moved on: nobody waits for the answer
      const r = result.results?.[i] ?? {
        isError: true,
        result: JSON.stringify('the operation produced no result'),
      };
      const response = {
        ...(r.result === undefined ? {} : { result: r.result }),
        ...(r.isError ? { exceptionType: 'Error' } : {}),
      };
      replies.push({ inst, message: this.reply(inst, m.requestId, JSON.stringify(response), now) });
    });
    const commit: EntityBatchCommit = {
      entityId: e.id,
      record,
      done: ops.map((m) => m.seq),
      sent,
      replies: replies.map((r) => ({ instanceId: r.inst.id, message: r.message })),
    };
    await this.commit(e, commit, sent, replies);
  }

  /**
   * A lock request or a release. A lock request takes the entity's lock for its orchestration (unless
   * that execution has ended meanwhile: then it is dropped) and goes on to the next entity of the
   * critical section, the last one answering the orchestration; a release frees the entity if the
   * sender holds it. Both commit in one transaction with the message's removal.
   */
  private async runControl(e: LiveEntity, m: StoredEntityMessage): Promise<void> {
    const now = this.hub.now();
    let lockedBy = this.holder(e);
    const sent: StoredEntityMessage[] = [];
    const replies: { inst: Instance; message: InboxMessage }[] = [];
    if (m.release) {
      if (lockedBy && sameCaller(m.caller, lockedBy)) lockedBy = undefined;
    } else if (m.lock && m.caller && m.requestId !== undefined) {
      const inst = this.caller(m.caller);
      if (inst) {
        lockedBy = m.caller;
        const next = m.lock.set[m.lock.pos + 1];
        if (next !== undefined) {
          const forward = this.message(next, '', undefined);
          forward.caller = m.caller;
          forward.requestId = m.requestId;
          forward.lock = { set: m.lock.set, pos: m.lock.pos + 1 };
          sent.push(forward);
        } else {
          replies.push({ inst, message: this.reply(inst, m.requestId, lockGranted, now) });
        }
      }
    }
    const record = this.recordOf(
      e,
      exists(e.record),
      e.record?.state,
      e.record?.lastModified ?? now,
      lockedBy,
    );
    const commit: EntityBatchCommit = {
      entityId: e.id,
      record,
      done: [m.seq],
      sent,
      replies: replies.map((r) => ({ instanceId: r.inst.id, message: r.message })),
    };
    await this.commit(e, commit, sent, replies);
  }

  private reply(inst: Instance, requestId: string, input: string, now: number): InboxMessage {
    return { seq: inst.nextSeq++, kind: 'event', name: requestId, input, ts: now };
  }

  private async commit(
    e: LiveEntity,
    commit: EntityBatchCommit,
    sent: StoredEntityMessage[],
    replies: { inst: Instance; message: InboxMessage }[],
  ): Promise<void> {
    await this.store.commitEntityBatch(commit);
    e.record = commit.record;
    const done = new Set(commit.done);
    e.queue = e.queue.filter((m) => !done.has(m.seq));
    this.enqueue(sent);
    for (const r of replies) {
      r.inst.inbox.push(inboxItemFrom(r.message));
      this.kickInstance(r.inst);
    }
  }

  /**
   * DEVHOST_DURABLE_MAX_PAYLOAD_BYTES for what a batch would store: a new state over the limit undoes the
   * whole batch (state unchanged, no signals sent, every operation fails naming the sizes); a result over
   * it fails that operation; a signal input over it is not sent (logged).
   */
  private withinLimits(e: LiveEntity, ops: readonly StoredEntityMessage[], result: BatchResult): BatchResult {
    const limit = this.hub.config.maxPayloadBytes;
    const failure = (err: unknown): { isError: true; result: string } => ({
      isError: true,
      result: JSON.stringify(err instanceof Error ? err.message : String(err)),
    });
    try {
      if (typeof result.entityState === 'string') {
        checkPayload(`The state of entity '${e.id}'`, result.entityState, limit);
      }
    } catch (err) {
      if (!(err instanceof PayloadTooLargeError)) throw err;
      this.hub.log.warn(
        `durable: entity '${e.id}': ${err.message} The batch of ${ops.length} operation(s) was undone.`,
      );
      return {
        entityExists: exists(e.record),
        ...(e.record?.state === undefined ? {} : { entityState: e.record.state }),
        results: ops.map(() => failure(err)),
        signals: [],
      };
    }
    const results = (result.results ?? []).map((r, i) => {
      try {
        checkPayload(`The result of operation '${ops[i]?.op ?? ''}' of entity '${e.id}'`, r.result, limit);
        return r;
      } catch (err) {
        if (!(err instanceof PayloadTooLargeError)) throw err;
        return failure(err);
      }
    });
    const signals = (result.signals ?? []).filter((sig) => {
      try {
        checkPayload(`The input of signal '${sig.name ?? ''}' sent by entity '${e.id}'`, sig.input, limit);
        return true;
      } catch (err) {
        if (!(err instanceof PayloadTooLargeError)) throw err;
        this.hub.log.warn(`durable: ${err.message} The signal was not sent.`);
        return false;
      }
    });
    return { ...result, results, signals };
  }

  private caller(c: EntityCaller): Instance | undefined {
    const inst = this.hub.get(c.instanceId);
    if (!inst || inst.executionId !== c.executionId || isTerminal(inst.status)) return undefined;
    return inst;
  }
}
