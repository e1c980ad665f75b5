import { createHash } from 'node:crypto';
import type { Container, JSONObject, OperationInput } from '@azure/cosmos';
import { TransientError } from '../errors';
import { mapStorageError, statusOf } from '../storage/errors';
import type { AnchorStore } from './anchors';
import type { AuditAnchor, AuditEntry, AuditEntryBody, VerifyResult } from './chain';
import { ChainWalker, GENESIS_HASH, hashEntry } from './chain';

/**
 * The audit log in Cosmos DB (container `audit`, partition key `/chain`). Every document sits in one
 * logical partition, so a write is one transactional batch:
 *
 *   Replace the head (If-Match its ETag; Create it for the first entry)
 *   Create the entry `e<seq>`           (seq = head.seq + 1, prevHash = head.hash)
 *   Create the key document `k<sha256(key)>`
 *
 * Two writers that read the same head both build entry seq+1; the batch of the second fails on the
 * head's ETag and applies nothing, and that writer reads the new head and tries again. The head's
 * replace is the batch's first operation, so this holds even where a batch is not atomic (the
 * local emulator stops at the first failed operation without undoing earlier ones). No entry is lost and none is written twice. The key document makes {@link AuditLog.record}
 * idempotent: an event recorded again (a retried activity or request) finds its key and returns
 * the entry already written. One logical partition holds up to 20 GB, years of governance events.
 */

/** The chain every entry belongs to (the partition key value). */
export const AUDIT_CHAIN = 'sluice';

/** One governance event to record. */
export interface AuditEvent {
  kind: string;
  actor: string;
  subject: string;
  data: Record<string, unknown>;
  /**
   * Names the event, not the write: recording the same key again returns the first entry. A
   * retried operation passes the same key, so it is recorded exactly once.
   */
  key: string;
  /** Also anchor the head to immutable Blob storage after this entry (deployments). */
  anchor?: boolean;
}

/** What the stores (pipelines, approvals, registry) need: one call per governance event. */
export interface AuditSink {
  record(event: AuditEvent): Promise<AuditEntry>;
}

interface HeadDoc {
  id: 'head';
  chain: string;
  type: 'head';
  seq: number;
  hash: string;
  updatedAt: string;
}

interface KeyDoc {
  id: string;
  chain: string;
  type: 'key';
  key: string;
  seq: number;
}

type EntryDoc = AuditEntry & { id: string; chain: string; type: 'entry' };

export const entryId = (seq: number) => `e${String(seq).padStart(12, '0')}`;
const keyId = (key: string) => `k${createHash('sha256').update(key).digest('hex')}`;

const MAX_ATTEMPTS = 40;
const PAGE = 500;

const strip = <T extends object>(doc: T): T => {
  const out = { ...doc } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (k.startsWith('_')) delete out[k];
  return out as T;
};

/** The entry as hashed and returned: no document id, chain or type. */
const toEntry = (doc: EntryDoc): AuditEntry => {
  const { seq, at, kind, actor, subject, data, prevHash, hash } = doc;
  return { seq, at, kind, actor, subject, data, prevHash, hash };
};

export interface AuditLogOptions {
  /** Where heads are anchored; without it `anchor` events are recorded but not anchored. */
  anchors?: AnchorStore;
  now?: () => Date;
  /** Pause between lost races (default: a short random pause growing with the attempt). */
  sleep?: (attempt: number) => Promise<void>;
}

export interface AuditPage {
  entries: AuditEntry[];
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next?: number;
}

export class AuditLog implements AuditSink {
  private readonly now: () => Date;
  private readonly sleep: (attempt: number) => Promise<void>;

  constructor(
    private readonly container: Container,
    private readonly options: AuditLogOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.sleep =
      options.sleep ??
      ((attempt) =>
        new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt))));
  }

  get anchors(): AnchorStore | undefined {
    return this.options.anchors;
  }

  /**
   * Appends the event (or returns the entry its key already has). A lost race is retried with a
   * random pause, a bounded number of times; then TransientError `audit_busy`. A Cosmos failure is
   * a TransientError or NonRetriableError from the storage adapter. Callers let it fail their
   * operation: the event must not be dropped, and the retry records it once (same key).
   */
  async record(event: AuditEvent): Promise<AuditEntry> {
    const entry = await this.append(event);
    if (event.anchor) await this.anchor();
    return entry;
  }

  private async append(event: AuditEvent): Promise<AuditEntry> {
    const kid = keyId(event.key);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // Head first, then the key: a writer that records the same key after these reads changes
      // the head, so this batch's first operation fails and nothing of it applies.
      const head = await this.read<HeadDoc>('head');
      const known = await this.recorded(kid);
      if (known) return known;
      const seq = (head?.seq ?? 0) + 1;
      const at = this.now().toISOString();
      const body: AuditEntryBody = {
        seq,
        at,
        kind: event.kind,
        actor: event.actor,
        subject: event.subject,
        // Through JSON once, so what is hashed is what Cosmos stores and returns.
        data: JSON.parse(JSON.stringify(event.data)) as Record<string, unknown>,
        prevHash: head?.hash ?? GENESIS_HASH,
      };
      const entry: AuditEntry = { ...body, hash: hashEntry(body) };
      const nextHead: HeadDoc = {
        id: 'head',
        chain: AUDIT_CHAIN,
        type: 'head',
        seq,
        hash: entry.hash,
        updatedAt: at,
      };
      const doc: EntryDoc = { id: entryId(seq), chain: AUDIT_CHAIN, type: 'entry', ...entry };
      const keyDoc: KeyDoc = { id: kid, chain: AUDIT_CHAIN, type: 'key', key: event.key.slice(0, 1024), seq };
      const json = (d: object) => d as unknown as JSONObject;
      const outcome = await this.commit([
        head
          ? { operationType: 'Replace', id: 'head', resourceBody: json(nextHead), ifMatch: head._etag }
          : { operationType: 'Create', resourceBody: json(nextHead) },
        { operationType: 'Create', resourceBody: json(doc) },
        { operationType: 'Create', resourceBody: json(keyDoc) },
      ]);
      if (outcome === 'ok') return entry;
      await this.sleep(attempt);
    }
    throw new TransientError('audit_busy', `audit log: ${MAX_ATTEMPTS} writers won the race before this one`);
  }

  /** The entry an event key was recorded as, if it was. */
  private async recorded(kid: string): Promise<AuditEntry | undefined> {
    const known = await this.read<KeyDoc>(kid);
    if (!known) return undefined;
    const existing = await this.read<EntryDoc>(entryId(known.seq));
    return existing ? toEntry(strip(existing)) : undefined;
  }

  /**
   * Writes the current head to the anchor store (`{ seq, hash, at }`), unless that seq is anchored
   * already. Returns the anchor (and whether this call wrote it), or undefined when there is
   * nothing to anchor or no store.
   */
  async anchor(): Promise<{ anchor: AuditAnchor; written: boolean } | undefined> {
    const store = this.options.anchors;
    const head = await this.head();
    if (!store || !head || head.seq === 0) return undefined;
    const anchor: AuditAnchor = { seq: head.seq, hash: head.hash, at: this.now().toISOString() };
    return store.write(anchor);
  }

  /** The head: how many entries were written and the last one's hash. */
  async head(): Promise<{ seq: number; hash: string } | undefined> {
    const head = await this.read<HeadDoc>('head');
    return head ? { seq: head.seq, hash: head.hash } : undefined;
  }

  /** Entries with from <= seq <= to, sorted by seq. */
  async range(from: number, to: number): Promise<AuditEntry[]> {
    const docs = await this.query<EntryDoc>(
      'SELECT * FROM c WHERE c.chain = @chain AND c.type = "entry" AND c.seq >= @from AND c.seq <= @to',
      { '@from': from, '@to': to },
    );
    return docs.map((d) => toEntry(strip(d))).sort((a, b) => a.seq - b.seq);
  }

  /**
   * Newest first, `limit` at a time, optionally only one subject (exact, or every subject under
   * it: `model/churn` matches `model/churn/3`). `before` is the `next` of the previous page.
   */
  async page(options: { subject?: string; before?: number; limit?: number } = {}): Promise<AuditPage> {
    const limit = Math.min(Math.max(options.limit ?? 50, 1), 500);
    const before = options.before ?? Number.MAX_SAFE_INTEGER;
    const subject = options.subject;
    const where = subject ? ' AND (c.subject = @subject OR STARTSWITH(c.subject, @under))' : '';
    const docs = await this.query<EntryDoc>(
      `SELECT * FROM c WHERE c.chain = @chain AND c.type = "entry" AND c.seq < @before${where}`,
      { '@before': before, ...(subject ? { '@subject': subject, '@under': `${subject}/` } : {}) },
    );
    const sorted = docs.map((d) => toEntry(strip(d))).sort((a, b) => b.seq - a.seq);
    const entries = sorted.slice(0, limit);
    const last = entries[entries.length - 1];
    return { entries, ...(sorted.length > limit && last ? { next: last.seq } : {}) };
  }

  /** Every entry of one subject (or under it), oldest first. */
  async bySubject(subject: string): Promise<AuditEntry[]> {
    const docs = await this.query<EntryDoc>(
      'SELECT * FROM c WHERE c.chain = @chain AND c.type = "entry" AND (c.subject = @subject OR STARTSWITH(c.subject, @under))',
      { '@subject': subject, '@under': `${subject}/` },
    );
    return docs.map((d) => toEntry(strip(d))).sort((a, b) => a.seq - b.seq);
  }

  /**
   * Walks the whole chain page by page (never all of it in memory) and checks it against its head
   * and every anchor: valid, or the first bad entry and what was done to it.
   */
  async verify(): Promise<VerifyResult> {
    const head = await this.head();
    const anchors = this.options.anchors ? await this.options.anchors.list() : [];
    const walker = new ChainWalker(new Set(anchors.map((a) => a.seq)));
    const end = head?.seq ?? 0;
    walk: for (let from = 1; from <= end; from += PAGE) {
      for (const entry of await this.range(from, Math.min(end, from + PAGE - 1))) {
        if (!walker.push(entry)) break walk;
      }
    }
    if (!walker.failed) {
      // Entries past the head were written around the log (or the head was rolled back).
      for (const entry of await this.range(end + 1, Number.MAX_SAFE_INTEGER)) if (!walker.push(entry)) break;
    }
    return walker.finish(head, anchors);
  }

  private async read<T>(id: string): Promise<(T & { _etag: string }) | undefined> {
    try {
      const { resource } = await this.container.item(id, AUDIT_CHAIN).read<T & { _etag: string }>();
      return resource ?? undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw mapStorageError(err, 'cosmos', `read audit/${id}`);
    }
  }

  private async query<T>(query: string, params: Record<string, string | number>): Promise<T[]> {
    const parameters = [
      { name: '@chain', value: AUDIT_CHAIN },
      ...Object.entries(params).map(([name, value]) => ({ name, value })),
    ];
    try {
      const { resources } = await this.container.items
        .query<T>({ query, parameters }, { partitionKey: AUDIT_CHAIN })
        .fetchAll();
      return resources;
    } catch (err) {
      throw mapStorageError(err, 'cosmos', 'query audit');
    }
  }

  /** One transactional batch; 'conflict' when an ETag or id precondition failed (nothing applied). */
  private async commit(ops: OperationInput[]): Promise<'ok' | 'conflict'> {
    // Each operation names the partition too (the Cosmos emulator reads it per operation).
    const withKey = ops.map((op) => ({ ...op, partitionKey: AUDIT_CHAIN }) as OperationInput);
    let codes: number[];
    try {
      const res = await this.container.items.batch(withKey, AUDIT_CHAIN);
      codes = (res.result ?? []).map((r) => r.statusCode);
      if (codes.length === 0) codes = [res.code ?? 500];
    } catch (err) {
      const code = statusOf(err);
      if (code === 409 || code === 412) return 'conflict';
      throw mapStorageError(err, 'cosmos', 'append audit entry');
    }
    if (codes.every((c) => c < 400)) return 'ok';
    if (codes.some((c) => c === 409 || c === 412)) return 'conflict';
    const code = codes.find((c) => c >= 400 && c !== 424) ?? 500;
    throw mapStorageError(
      { code, message: `batch failed: ${codes.join(', ')}` },
      'cosmos',
      'append audit entry',
    );
  }
}
