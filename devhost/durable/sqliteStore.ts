/**
 * Task-hub persistence in a SQLite file devhost owns (`<dataDir>/durable/<hub>.sqlite`, `node:sqlite`),
 * or in memory for `--in-memory`:
 *
 *   instances (id, record)            the instance record: name, input, parent, created time, generation
 *   history   (id, gen, idx, episode) append-only: the events one episode added plus the status snapshot
 *                                     after it, one row per episode
 *   inbox     (id, seq, message)      messages accepted by the API but not yet processed
 *   entities  (id, record)            a Durable entity's state (`@name@key`), written with each batch
 *   entity_queue (id, seq, message)   operations accepted for an entity and not yet run
 *
 * Every method is one SQLite transaction, committed before its promise resolves, so whatever the
 * engine acknowledged is in the file: an episode is there whole or not at all (no torn episodes to
 * skip, unlike the Table store), and a kill of every process at any moment loses nothing committed.
 *
 * Journal: WAL with `synchronous = NORMAL`. A commit is written to the WAL file (the operating system's
 * page cache) before it returns, which is all a process kill — of devhost alone or of its whole group
 * — can threaten: the kernel still writes those pages. Only a power loss or kernel crash can lose the
 * last commits (never corrupt the file); `FULL` would fsync every commit, a few milliseconds per step
 * on ordinary disks, for a guarantee a local development host does not need. docs/devhost.md, "What
 * survives what", says so.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type * as Sqlite from 'node:sqlite';
import type { DatabaseSync as Database, StatementSync } from 'node:sqlite';
import type { Logger } from '../contracts';
import type { HistoryEvent } from './history';
import {
  type EntityBatchCommit,
  type StoredEntityMessage,
  type StoredEntityRecord,
  TaskHubStore,
  EntityTooLargeError,
  entityTextChars,
  type EpisodeSnapshot,
  type InboxMessage,
  type InstanceRecord,
  type LoadedInstance,
  type TaskHubStorage,
  historyRowKey,
  inboxRowKey,
} from './store';

/**
 * `node:sqlite` in Node 22 prints "ExperimentalWarning: SQLite is an experimental feature" once, on
 * first load. That one warning is dropped (it says nothing a devhost user can act on); every other
 * warning, and this one for code that loads `node:sqlite` itself later, still shows.
 */
function loadSqlite(): typeof Sqlite {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning.message;
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (
      (type === 'ExperimentalWarning' || (warning as Error).name === 'ExperimentalWarning') &&
      /SQLite/.test(text)
    )
      return;
    return (emitWarning as (...a: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('node:sqlite') as typeof Sqlite;
  } finally {
    process.emitWarning = emitWarning;
  }
}

const schema = `
  CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS history (
    id TEXT NOT NULL, gen INTEGER NOT NULL, idx INTEGER NOT NULL, episode TEXT NOT NULL,
    PRIMARY KEY (id, gen, idx)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS inbox (
    id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS entities (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS entity_queue (
    id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

interface Episode {
  e: HistoryEvent[];
  s: EpisodeSnapshot;
}

const historyKey = /^H(\d+)_(\d+)$/;
const inboxKey = /^Q(\d+)$/;

export class SqliteTaskHubStore implements TaskHubStorage {
  private readonly stmt: Record<
    | 'putInstance'
    | 'putEpisode'
    | 'putInbox'
    | 'deleteInstanceRow'
    | 'deleteHistory'
    | 'deleteInbox'
    | 'getMeta'
    | 'putMeta'
    | 'putEntity'
    | 'deleteEntity'
    | 'putEntityMessage'
    | 'deleteEntityMessage',
    StatementSync
  >;

  private constructor(
    private readonly db: Database,
    /** The file, or `:memory:`. */
    readonly location: string,
  ) {
    this.stmt = {
      putInstance: db.prepare('INSERT OR REPLACE INTO instances (id, record) VALUES (?, ?)'),
      putEpisode: db.prepare('INSERT OR REPLACE INTO history (id, gen, idx, episode) VALUES (?, ?, ?, ?)'),
      putInbox: db.prepare('INSERT INTO inbox (id, seq, message) VALUES (?, ?, ?)'),
      deleteInstanceRow: db.prepare('DELETE FROM instances WHERE id = ?'),
      deleteHistory: db.prepare('DELETE FROM history WHERE id = ? AND gen = ? AND idx = ?'),
      deleteInbox: db.prepare('DELETE FROM inbox WHERE id = ? AND seq = ?'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      putMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      putEntity: db.prepare('INSERT OR REPLACE INTO entities (id, record) VALUES (?, ?)'),
      deleteEntity: db.prepare('DELETE FROM entities WHERE id = ?'),
      putEntityMessage: db.prepare('INSERT INTO entity_queue (id, seq, message) VALUES (?, ?, ?)'),
      deleteEntityMessage: db.prepare('DELETE FROM entity_queue WHERE id = ? AND seq = ?'),
    };
  }

  /** The file of a hub under a data folder. */
  static fileFor(dataDir: string, hubName: string): string {
    const name = hubName.replace(/[^A-Za-z0-9_-]/g, '_') || 'hub';
    return path.join(dataDir, 'durable', `${name}.sqlite`);
  }

  /** Opens (creating if needed) the hub's file under `dataDir`, or an in-memory hub when `dataDir` is null. */
  static open(dataDir: string | null, hubName: string): SqliteTaskHubStore {
    const { DatabaseSync } = loadSqlite();
    let location = ':memory:';
    if (dataDir !== null) {
      location = SqliteTaskHubStore.fileFor(dataDir, hubName);
      mkdirSync(path.dirname(location), { recursive: true });
    }
    const db = new DatabaseSync(location);
    try {
      // A second devhost on the same folder is refused by services.lock (also with --no-services); this
      // only covers a short overlap.
      db.exec('PRAGMA busy_timeout = 5000');
      if (dataDir !== null) db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec(schema);
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteTaskHubStore(db, location);
  }

  getMeta(key: string): string | undefined {
    const row = this.stmt.getMeta.get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmt.putMeta.run(key, value);
  }

  /** Runs `fn` in one transaction (joining the current one, if any). */
  transaction<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  writeInstance(r: InstanceRecord, entityMessages: readonly StoredEntityMessage[] = []): Promise<void> {
    const write = (): void => {
      // The same bound, measured the same way, as the Table store: the limit does not depend on the storage.
      const chars = encodedChars(r.input ?? '') + encodedChars(r.customStatus ?? '');
      if (chars > entityTextChars)
        throw new EntityTooLargeError(`The input of instance '${r.instanceId}'`, chars);
      this.stmt.putInstance.run(r.instanceId, JSON.stringify(r));
      // Signals sent by the episode that continued as new commit with the new generation.
      for (const m of entityMessages) this.putEntityMessageRow(m);
    };
    return settle(() => (entityMessages.length === 0 ? write() : this.transaction(write)));
  }

  appendEpisode(
    instanceId: string,
    gen: number,
    firstIndex: number,
    events: HistoryEvent[],
    snapshot: EpisodeSnapshot,
    entityMessages: readonly StoredEntityMessage[] = [],
  ): Promise<number> {
    const write = (): number => {
      const episode: Episode = { e: events, s: snapshot };
      this.stmt.putEpisode.run(instanceId, gen, firstIndex, JSON.stringify(episode));
      // Messages the episode sent to entities commit with it: none is lost, none is sent twice.
      for (const m of entityMessages) this.putEntityMessageRow(m);
      return 1;
    };
    // One statement commits on its own; only an episode that also queues entity operations needs BEGIN.
    return settle(() => (entityMessages.length === 0 ? write() : this.transaction(write)));
  }

  /** Queues operations for entities (a client's signal), committed before the promise resolves. */
  putEntityMessages(messages: readonly StoredEntityMessage[]): Promise<void> {
    return settle(() =>
      this.transaction(() => {
        for (const m of messages) this.putEntityMessageRow(m);
      }),
    );
  }

  /**
   * The outcome of one entity batch, in one transaction: the entity's new state (or its deletion), the
   * removal of the operations it ran, the signals it sent to other entities and the answers to the
   * orchestrations that called it (as inbox rows of those instances).
   */
  commitEntityBatch(b: EntityBatchCommit): Promise<void> {
    return settle(() =>
      this.transaction(() => {
        if (b.record) this.stmt.putEntity.run(b.entityId, JSON.stringify(b.record));
        else this.stmt.deleteEntity.run(b.entityId);
        for (const seq of b.done) this.stmt.deleteEntityMessage.run(b.entityId, seq);
        for (const m of b.sent) this.putEntityMessageRow(m);
        for (const r of b.replies)
          this.stmt.putInbox.run(r.instanceId, r.message.seq, JSON.stringify(r.message));
      }),
    );
  }

  /** Every stored entity and every queued entity operation (in arrival order). */
  loadEntities(): { records: StoredEntityRecord[]; queue: StoredEntityMessage[] } {
    const records: StoredEntityRecord[] = [];
    for (const row of this.db.prepare('SELECT record FROM entities').iterate()) {
      records.push(JSON.parse((row as { record: string }).record) as StoredEntityRecord);
    }
    const queue: StoredEntityMessage[] = [];
    for (const row of this.db.prepare('SELECT message FROM entity_queue ORDER BY seq').iterate()) {
      queue.push(JSON.parse((row as { message: string }).message) as StoredEntityMessage);
    }
    return { records, queue };
  }

  private putEntityMessageRow(m: StoredEntityMessage): void {
    const text = JSON.stringify(m);
    const chars = encodedChars(text);
    if (chars > entityTextChars)
      throw new EntityTooLargeError(`The operation '${m.op}' for entity '${m.entityId}'`, chars);
    this.stmt.putEntityMessage.run(m.entityId, m.seq, text);
  }

  putInbox(instanceId: string, m: InboxMessage): Promise<void> {
    return settle(() => {
      const text = JSON.stringify(m);
      const chars = encodedChars(text);
      if (chars > entityTextChars) throw new EntityTooLargeError('The message', chars);
      this.stmt.putInbox.run(instanceId, m.seq, text);
    });
  }

  /** Deletes rows named by the engine's row keys, ignoring the ones already gone. */
  deleteRows(instanceId: string, rowKeys: readonly string[]): Promise<void> {
    return settle(() =>
      this.transaction(() => {
        for (const key of rowKeys) {
          const h = historyKey.exec(key);
          const q = inboxKey.exec(key);
          if (h) this.stmt.deleteHistory.run(instanceId, Number(h[1]), Number(h[2]));
          else if (q) this.stmt.deleteInbox.run(instanceId, Number(q[1]));
          else if (key === 'I') this.stmt.deleteInstanceRow.run(instanceId);
          else throw new Error(`unknown task-hub row key '${key}'`);
        }
      }),
    );
  }

  deleteInstance(instanceId: string): Promise<void> {
    return settle(() =>
      this.transaction(() => {
        for (const table of ['history', 'inbox', 'instances'])
          this.db.prepare(`DELETE FROM ${table} WHERE id = ?`).run(instanceId);
      }),
    );
  }

  /** Writes instances loaded from another store (the import of an older devhost's Table-storage hub). */
  importInstances(loaded: readonly LoadedInstance[]): void {
    this.transaction(() => {
      for (const l of loaded) {
        this.stmt.putInstance.run(l.record.instanceId, JSON.stringify(l.record));
        if (l.history.length > 0) {
          const snapshot: EpisodeSnapshot = {
            status: l.status,
            lastUpdatedTime: l.lastUpdatedTime,
            ...(l.customStatus === null ? {} : { customStatus: l.customStatus }),
          };
          const episode: Episode = { e: l.history, s: snapshot };
          this.stmt.putEpisode.run(l.record.instanceId, l.record.gen, 0, JSON.stringify(episode));
        }
        for (const m of l.inbox) this.stmt.putInbox.run(l.record.instanceId, m.seq, JSON.stringify(m));
      }
    });
  }

  loadAll(): Promise<LoadedInstance[]> {
    return settle(() => {
      const byId = new Map<string, LoadedInstance>();
      for (const row of this.db.prepare('SELECT id, record FROM instances').iterate()) {
        const { id, record } = row as { id: string; record: string };
        const r = JSON.parse(record) as InstanceRecord;
        byId.set(id, {
          record: r,
          history: [],
          rows: 0,
          status: r.status,
          customStatus: r.customStatus,
          lastUpdatedTime: r.lastUpdatedTime,
          inbox: [],
          maxSeq: 0,
          garbage: [],
        });
      }
      const consumed = new Map<string, Set<number>>();
      const history = this.db.prepare('SELECT id, gen, idx, episode FROM history ORDER BY id, gen, idx');
      for (const row of history.iterate()) {
        const { id, gen, idx, episode } = row as { id: string; gen: number; idx: number; episode: string };
        const l = byId.get(id);
        // A history row of an older generation, or of a purge cut short, is garbage.
        if (!l || gen !== l.record.gen || idx !== l.rows) {
          if (l) l.garbage.push(historyRowKey(gen, idx));
          continue;
        }
        const chunk = JSON.parse(episode) as Episode;
        for (const e of chunk.e) l.history.push(e);
        l.rows++;
        l.status = chunk.s.status;
        l.lastUpdatedTime = chunk.s.lastUpdatedTime;
        if (chunk.s.customStatus !== undefined) l.customStatus = chunk.s.customStatus;
        const used = consumed.get(id) ?? new Set<number>();
        for (const q of chunk.s.consumed ?? []) used.add(q);
        consumed.set(id, used);
      }
      for (const row of this.db.prepare('SELECT id, seq, message FROM inbox ORDER BY id, seq').iterate()) {
        const { id, seq, message } = row as { id: string; seq: number; message: string };
        const l = byId.get(id);
        if (!l) continue;
        l.maxSeq = Math.max(l.maxSeq, seq);
        if (consumed.get(id)?.has(seq)) l.garbage.push(inboxRowKey(seq));
        else l.inbox.push(JSON.parse(message) as InboxMessage);
      }
      return [...byId.values()];
    });
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}

/** Length of `text` once every non-ASCII character is escaped (`asciiJson`), without building it. */
function encodedChars(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) n += 5;
  return n;
}

/** Runs synchronous SQLite work as the engine's async store calls expect (errors as rejections). */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** Meta key recording that a data folder's Table-storage hub (devhost ≤ 0.1) was looked for and imported. */
const importedKey = 'importedFromTableStorage';

/**
 * Opens the hub's SQLite store. On the first start on a data folder, the hub an older devhost kept in
 * Azurite Table storage is imported (in-flight orchestrations carry on) and its table deleted.
 */
export async function openTaskHubStore(
  dataDir: string | null,
  hubName: string,
  storageConnectionString: string | undefined,
  log: Logger,
): Promise<SqliteTaskHubStore> {
  const store = SqliteTaskHubStore.open(dataDir, hubName);
  try {
    if (dataDir === null || storageConnectionString === undefined || store.getMeta(importedKey)) return store;
    const old = await TaskHubStore.open(storageConnectionString, hubName, false);
    if (!old) {
      store.setMeta(importedKey, 'none');
      return store;
    }
    const loaded = await old.loadAll();
    store.transaction(() => {
      store.importInstances(loaded);
      store.setMeta(importedKey, old.tableName);
    });
    log.info(
      `durable: imported ${loaded.length} instance(s) of task hub '${hubName}' from Table storage ` +
        `(${old.tableName}) into ${store.location}`,
    );
    await old.drop();
    return store;
  } catch (err) {
    store.close();
    throw err;
  }
}
