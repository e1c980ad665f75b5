/**
 * What devhost stores for Durable entities (durable-host-spec appendix B): one record per entity that
 * exists, and the queue of operations accepted for an entity and not yet run. Shared by the store and
 * the entity runner.
 */
import type { InboxMessage } from './store';

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
}

/** The stored state of an entity that exists. */
export interface StoredEntityRecord {
  entityId: string;
  /** JSON text of the state, absent when the entity has none. */
  state?: string;
  lastModified: number;
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

/** `@name@key` ⇒ { name, key } (the library's `EntityId.getEntityIdFromSchedulerId`). */
export function parseEntityId(schedulerId: string): { name: string; key: string } {
  const at = schedulerId.indexOf('@', 1);
  if (!schedulerId.startsWith('@') || at < 0)
    throw new Error(`'${schedulerId}' is not an entity id (@name@key)`);
  return { name: schedulerId.slice(1, at), key: schedulerId.slice(at + 1) };
}

export const entitySchedulerId = (name: string, key: string): string => `@${name.toLowerCase()}@${key}`;
