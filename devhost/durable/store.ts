/**
 * Task-hub persistence in Table storage (Azurite locally), as devhost did it before the SQLite store;
 * the engine's store types and row keys are defined here and shared by both stores. One table per hub,
 * `<hub>Devhost`, one partition per instance:
 *
 *   RowKey `I`                     the instance record: name, input, parent, created time, generation
 *   RowKey `H<gen>_<index>`        history, append-only: the events one episode added, plus the status
 *                                  snapshot after it (the episode's commit record)
 *   RowKey `Q<seq>`                inbox messages accepted by the API but not yet processed
 *                                  (raised events, terminate / suspend / resume requests)
 *
 * An episode is persisted with a single entity write in the common case (no batch transaction needed:
 * the last row of an episode is the commit record), which keeps the per-step cost low. Large episodes
 * spill over several rows and several string properties, keeping each entity far below the 1 MB entity
 * and 64 KB property limits; rows of an episode whose final row never landed are ignored on load.
 * A new generation (continue-as-new, or reuse of a finished instance id) makes older `H` rows garbage.
 */
import { odata, RestError, TableClient, type TableEntityResult } from '@azure/data-tables';
import type { HistoryEvent, RuntimeStatus } from './history';

/** Characters per string property: ≤ 64 KB even if every character takes 3 bytes in UTF-8 (or 2 in UTF-16). */
const pieceChars = 16_000;
/** String properties per history row (≤ 288k characters ⇒ well under the 1 MB entity limit). */
const piecesPerRow = 18;

export interface ParentRef {
  instanceId: string;
  executionId: string;
  name: string;
  taskScheduledId: number;
}

/** The `I` row. Written at creation, on continue-as-new and when a finished instance id is reused. */
export interface InstanceRecord {
  instanceId: string;
  name: string;
  version: string;
  gen: number;
  executionId: string;
  /** JSON text of the current execution's input, or null. */
  input: string | null;
  createdTime: number;
  parent?: ParentRef;
  status: RuntimeStatus;
  customStatus: string | null;
  lastUpdatedTime: number;
}

/** The state an episode leaves behind, stored with its last history row. */
export interface EpisodeSnapshot {
  status: RuntimeStatus;
  lastUpdatedTime: number;
  /** Present when the episode changed the custom status (JSON text). */
  customStatus?: string;
  /** Inbox sequence numbers this episode consumed. */
  consumed?: number[];
}

export type InboxMessage =
  | { seq: number; kind: 'event'; name: string; input: string | null; ts: number }
  | { seq: number; kind: 'terminate' | 'suspend' | 'resume'; reason: string; ts: number };

export interface LoadedInstance {
  record: InstanceRecord;
  history: HistoryEvent[];
  /** History rows of the current generation that belong to committed episodes. */
  rows: number;
  status: RuntimeStatus;
  customStatus: string | null;
  lastUpdatedTime: number;
  /** Unprocessed inbox messages, in arrival order. */
  inbox: InboxMessage[];
  maxSeq: number;
  /** Rows that are garbage (old generations, torn episodes, consumed inbox messages). */
  garbage: string[];
}

/**
 * What the engine needs from task-hub storage. Row keys name what the engine deletes: `I` (the instance
 * record), `historyRowKey(gen, index)` (history rows) and `inboxRowKey(seq)` (inbox messages).
 */
export interface TaskHubStorage {
  /** `entityMessages`: operations sent to entities, committed with the record (SQLite store only). */
  writeInstance(r: InstanceRecord, entityMessages?: readonly StoredEntityMessage[]): Promise<void>;
  /** Appends one episode atomically (a crash leaves all of it or none); returns the history rows it used. */
  appendEpisode(
    instanceId: string,
    gen: number,
    firstIndex: number,
    events: HistoryEvent[],
    snapshot: EpisodeSnapshot,
    /** Operations the episode sent to Durable entities, committed with it (SQLite store only). */
    entityMessages?: readonly StoredEntityMessage[],
  ): Promise<number>;
  putInbox(instanceId: string, m: InboxMessage): Promise<void>;
  deleteRows(instanceId: string, rowKeys: readonly string[]): Promise<void>;
  deleteInstance(instanceId: string): Promise<void>;
  loadAll(): Promise<LoadedInstance[]>;
  close(): void;
}

// Durable entities (SQLite store only): one record per entity that exists, and the queue of operations
// accepted for an entity and not yet run.

/** An orchestration waiting for the answer to a `callEntity`. */
export interface EntityCaller {
  instanceId: string;
  executionId: string;
}

/** One queued operation for an entity. `seq` orders the operations of every entity. */
export interface StoredEntityMessage {
  /** The scheduler id, `@<name lower-cased>@<key>`. */
  entityId: string;
  seq: number;
  op: string;
  /** JSON text of the operation input, absent when there is none. */
  input?: string;
  /** Calls only: the request id the answer is raised under, and who waits for it. */
  requestId?: string;
  caller?: EntityCaller;
  /**
   * A lock request of an orchestration's critical section (`context.df.lock`): every entity of `set`
   * (scheduler ids, sorted) is locked in that order, this message being at position `pos`; `caller` is
   * the orchestration and `requestId` its lock request id. `op` is empty.
   */
  lock?: { set: string[]; pos: number };
  /** The end of `caller`'s critical section: the entity is unlocked. `op` is empty. */
  release?: true;
}

/** The stored state of an entity that exists (or is locked). */
export interface StoredEntityRecord {
  entityId: string;
  /** JSON text of the state, absent when the entity has none. */
  state?: string;
  lastModified: number;
  /** The orchestration whose critical section holds the entity's lock. */
  lockedBy?: EntityCaller;
  /** Kept only for its lock: the entity itself does not exist (never ran, or was deleted). */
  missing?: true;
}

export interface EntityBatchCommit {
  entityId: string;
  /** The entity after the batch; null when it does not exist any more (or never did). */
  record: StoredEntityRecord | null;
  /** `seq` of the operations the batch ran. */
  done: number[];
  /** Signals the entity sent to entities. */
  sent: StoredEntityMessage[];
  /** Answers to callers, as inbox rows of their instances. */
  replies: { instanceId: string; message: InboxMessage }[];
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');
export const historyRowKey = (gen: number, index: number): string => `H${pad(gen, 6)}_${pad(index, 9)}`;
export const inboxRowKey = (seq: number): string => `Q${pad(seq, 12)}`;

interface EpisodeChunk {
  e: HistoryEvent[];
  s: EpisodeSnapshot;
}

type Row = Record<string, unknown> & { partitionKey: string; rowKey: string };

/** End of a slice of at most `max` characters that does not split a UTF-16 surrogate pair. */
function sliceEnd(text: string, start: number, max: number): number {
  let end = Math.min(text.length, start + max);
  if (end < text.length && end > start) {
    const code = text.charCodeAt(end - 1);
    if (code >= 0xd800 && code <= 0xdbff) end--; // a lone surrogate would turn into U+FFFD on the wire
  }
  return end;
}

/**
 * JSON text with every non-ASCII character escaped (`\\uXXXX`): the same JSON value, but pure ASCII on
 * the wire. Azurite corrupts multi-byte characters that straddle a chunk of a large request body, and a
 * piece boundary can no longer split a character.
 */
export function asciiJson(text: string): string {
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Largest text kept inside one entity (instance record, inbox message): ≈ 960 KB as UTF-16. */
export const entityTextChars = 480_000;

export class EntityTooLargeError extends Error {
  constructor(what: string, chars: number) {
    super(
      `${what} is too large for devhost's task-hub storage (${chars.toLocaleString('en-US')} characters once ` +
        `encoded, at most ${entityTextChars.toLocaleString('en-US')}). Lower the payload size.`,
    );
    this.name = 'EntityTooLargeError';
  }
}

/** Writes text into properties `<name>0..k` (16k characters each) and `<name>N`. */
function putText(row: Record<string, unknown>, name: string, text: string | null): void {
  if (text === null) {
    row[`${name}N`] = -1;
    return;
  }
  let n = 0;
  for (let at = 0; at < text.length; n++) {
    const end = sliceEnd(text, at, pieceChars);
    row[`${name}${n}`] = text.slice(at, end);
    at = end;
  }
  row[`${name}N`] = n;
}

function getText(row: Record<string, unknown>, name: string): string | null {
  const n = Number(row[`${name}N`] ?? -1);
  if (n < 0) return null;
  let text = '';
  for (let i = 0; i < n; i++) text += String(row[`${name}${i}`] ?? '');
  return text;
}

/** Splits text into string properties `D0..Dn`, `piecesPerRow` per row. */
function toRows(instanceId: string, gen: number, firstIndex: number, text: string): Row[] {
  const rows: Row[] = [];
  let offset = 0;
  for (let index = firstIndex; offset < text.length || rows.length === 0; index++) {
    const row: Row = { partitionKey: instanceId, rowKey: historyRowKey(gen, index), G: gen, X: index, N: 0 };
    let n = 0;
    for (; n < piecesPerRow && offset < text.length; n++) {
      const end = sliceEnd(text, offset, pieceChars);
      row[`D${n}`] = text.slice(offset, end);
      offset = end;
    }
    row.N = n;
    row.Last = offset >= text.length;
    rows.push(row);
  }
  return rows;
}

function rowText(e: TableEntityResult<Record<string, unknown>>): string {
  const n = Number(e.N ?? 0);
  let text = '';
  for (let i = 0; i < n; i++) text += String(e[`D${i}`] ?? '');
  return text;
}

const isNotFound = (e: unknown): boolean => e instanceof RestError && e.statusCode === 404;

/**
 * The task hub in Table storage: how devhost persisted it before the SQLite store (sqliteStore.ts).
 * Kept to import, on the first start on a data folder, the hub an older devhost left in Azurite.
 */
export class TaskHubStore implements TaskHubStorage {
  private constructor(
    private readonly client: TableClient,
    readonly tableName: string,
  ) {}

  static tableNameFor(hubName: string): string {
    let name = hubName.replace(/[^A-Za-z0-9]/g, '');
    if (!/^[A-Za-z]/.test(name)) name = `H${name}`;
    return `${name}Devhost`.slice(0, 63);
  }

  /** Opens the hub's table, creating it unless `create` is false (then undefined when it does not exist). */
  static async open(connectionString: string, hubName: string): Promise<TaskHubStore>;
  static async open(
    connectionString: string,
    hubName: string,
    create: false,
  ): Promise<TaskHubStore | undefined>;
  static async open(
    connectionString: string,
    hubName: string,
    create = true,
  ): Promise<TaskHubStore | undefined> {
    const tableName = TaskHubStore.tableNameFor(hubName);
    const insecure = /TableEndpoint=http:|UseDevelopmentStorage=true|DefaultEndpointsProtocol=http;/i.test(
      connectionString,
    );
    const client = TableClient.fromConnectionString(connectionString, tableName, {
      allowInsecureConnection: insecure,
      retryOptions: { maxRetries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000 },
    });
    if (create) await client.createTable();
    else {
      const first = await client
        .listEntities({ queryOptions: { select: ['RowKey'] } })
        .byPage({ maxPageSize: 1 })
        .next()
        .then(
          () => true,
          (e: unknown) => (isNotFound(e) ? false : Promise.reject(e)),
        );
      if (!first) return undefined;
    }
    return new TaskHubStore(client, tableName);
  }

  /** Deletes the hub's table (after its instances were imported elsewhere). */
  async drop(): Promise<void> {
    await this.client.deleteTable();
  }

  close(): void {
    // HTTP clients hold nothing that needs closing.
  }

  async writeInstance(r: InstanceRecord): Promise<void> {
    const input = r.input === null ? null : asciiJson(r.input);
    const customStatus = r.customStatus === null ? null : asciiJson(r.customStatus);
    const chars = (input?.length ?? 0) + (customStatus?.length ?? 0);
    if (chars > entityTextChars)
      throw new EntityTooLargeError(`The input of instance '${r.instanceId}'`, chars);
    const row: Row = {
      partitionKey: r.instanceId,
      rowKey: 'I',
      Name: r.name,
      Version: r.version,
      G: r.gen,
      ExecutionId: r.executionId,
      Created: r.createdTime,
      Parent: r.parent ? asciiJson(JSON.stringify(r.parent)) : undefined,
      Status: r.status,
      Updated: r.lastUpdatedTime,
    };
    putText(row, 'Input', input);
    putText(row, 'CustomStatus', customStatus);
    await this.client.upsertEntity(row, 'Replace');
  }

  /**
   * Appends one episode: its events and the snapshot after it. Returns the number of rows used. The
   * final row is written last, so a crash in between leaves only ignorable rows.
   */
  async appendEpisode(
    instanceId: string,
    gen: number,
    firstIndex: number,
    events: HistoryEvent[],
    snapshot: EpisodeSnapshot,
  ): Promise<number> {
    const chunk: EpisodeChunk = { e: events, s: snapshot };
    const rows = toRows(instanceId, gen, firstIndex, asciiJson(JSON.stringify(chunk)));
    if (rows.length > 1) {
      await Promise.all(rows.slice(0, -1).map((row) => this.client.upsertEntity(row, 'Replace')));
    }
    await this.client.upsertEntity(rows[rows.length - 1]!, 'Replace');
    return rows.length;
  }

  async putInbox(instanceId: string, m: InboxMessage): Promise<void> {
    const text = asciiJson(JSON.stringify(m));
    if (text.length > entityTextChars) throw new EntityTooLargeError('The message', text.length);
    const row: Row = { partitionKey: instanceId, rowKey: inboxRowKey(m.seq) };
    putText(row, 'M', text);
    await this.client.createEntity(row);
  }

  /** Deletes rows, ignoring the ones already gone. */
  async deleteRows(instanceId: string, rowKeys: readonly string[]): Promise<void> {
    const width = 16;
    for (let i = 0; i < rowKeys.length; i += width) {
      await Promise.all(
        rowKeys.slice(i, i + width).map((rk) =>
          this.client.deleteEntity(instanceId, rk).catch((e: unknown) => {
            if (!isNotFound(e)) throw e;
          }),
        ),
      );
    }
  }

  /** Purge: every row of the instance's partition. */
  async deleteInstance(instanceId: string): Promise<void> {
    const keys: string[] = [];
    const iter = this.client.listEntities({
      queryOptions: { filter: odata`PartitionKey eq ${instanceId}`, select: ['RowKey'] },
    });
    for await (const e of iter) keys.push(e.rowKey!);
    // The instance row goes last: until it is gone, a restart still sees (and can re-purge) the instance.
    await this.deleteRows(
      instanceId,
      keys.filter((k) => k !== 'I'),
    );
    await this.deleteRows(instanceId, ['I']);
  }

  /** Reads the whole hub (startup). */
  async loadAll(): Promise<LoadedInstance[]> {
    const byPartition = new Map<string, TableEntityResult<Record<string, unknown>>[]>();
    for await (const e of this.client.listEntities<Record<string, unknown>>()) {
      const list = byPartition.get(e.partitionKey!) ?? [];
      list.push(e);
      byPartition.set(e.partitionKey!, list);
    }
    const out: LoadedInstance[] = [];
    for (const [instanceId, rows] of byPartition) {
      const loaded = this.assemble(instanceId, rows);
      if (loaded) out.push(loaded);
    }
    return out;
  }

  private assemble(
    instanceId: string,
    rows: TableEntityResult<Record<string, unknown>>[],
  ): LoadedInstance | undefined {
    const inst = rows.find((r) => r.rowKey === 'I');
    if (!inst) return undefined; // a partially purged partition: nothing to resume
    const gen = Number(inst.G ?? 0);
    const record: InstanceRecord = {
      instanceId,
      name: String(inst.Name ?? ''),
      version: String(inst.Version ?? ''),
      gen,
      executionId: String(inst.ExecutionId ?? ''),
      input: getText(inst, 'Input'),
      createdTime: Number(inst.Created ?? Date.now()),
      status: (inst.Status as RuntimeStatus | undefined) ?? 'Pending',
      customStatus: getText(inst, 'CustomStatus'),
      lastUpdatedTime: Number(inst.Updated ?? inst.Created ?? Date.now()),
      ...(typeof inst.Parent === 'string' ? { parent: JSON.parse(inst.Parent) as ParentRef } : {}),
    };
    const garbage: string[] = [];
    const historyRows = rows
      .filter((r) => r.rowKey!.startsWith('H'))
      .sort((a, b) => (a.rowKey! < b.rowKey! ? -1 : 1));
    const history: HistoryEvent[] = [];
    const consumed = new Set<number>();
    let status = record.status;
    let customStatus = record.customStatus;
    let lastUpdatedTime = record.lastUpdatedTime;
    let committedRows = 0;
    let pending = '';
    let expected = 0;
    let torn = false;
    for (const r of historyRows) {
      if (Number(r.G) !== gen || torn) {
        garbage.push(r.rowKey!);
        continue;
      }
      if (Number(r.X) !== expected) {
        // A gap means an episode never fully landed; everything after it is unusable.
        torn = true;
        garbage.push(r.rowKey!);
        continue;
      }
      expected++;
      pending += rowText(r);
      if (r.Last === true) {
        const chunk = JSON.parse(pending) as EpisodeChunk;
        pending = '';
        committedRows = expected;
        for (const e of chunk.e) history.push(e);
        status = chunk.s.status;
        lastUpdatedTime = chunk.s.lastUpdatedTime;
        if (chunk.s.customStatus !== undefined) customStatus = chunk.s.customStatus;
        for (const q of chunk.s.consumed ?? []) consumed.add(q);
      }
    }
    // Rows of an episode whose last row is missing are garbage (the episode will run again).
    for (const r of historyRows) {
      if (Number(r.G) === gen && Number(r.X) >= committedRows && !garbage.includes(r.rowKey!)) {
        garbage.push(r.rowKey!);
      }
    }
    const inbox: InboxMessage[] = [];
    let maxSeq = 0;
    for (const r of rows) {
      if (!r.rowKey!.startsWith('Q')) continue;
      const m = JSON.parse(getText(r, 'M') ?? 'null') as InboxMessage;
      maxSeq = Math.max(maxSeq, m.seq);
      if (consumed.has(m.seq)) garbage.push(r.rowKey!);
      else inbox.push(m);
    }
    inbox.sort((a, b) => a.seq - b.seq);
    return {
      record,
      history,
      rows: committedRows,
      status,
      customStatus,
      lastUpdatedTime,
      inbox,
      maxSeq,
      garbage,
    };
  }
}
