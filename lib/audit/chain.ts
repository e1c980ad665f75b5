import { createHash } from 'node:crypto';

/**
 * The audit chain's pure part: what an entry is, how it is hashed, and how a chain is checked.
 * No I/O: the log (log.ts) and the anchors (anchors.ts) feed it what they read.
 */

/** prevHash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** One audit event as it is hashed: everything but the hash and Cosmos's own fields. */
export interface AuditEntryBody {
  seq: number;
  /** ISO 8601 time of the write (the writer's clock; order is `seq`, not `at`). */
  at: string;
  /** What happened: `pipeline.changed`, `approval.requested`, `alias.moved`, `rollback`… */
  kind: string;
  /** Who did it (a principal, `approval:<id>`, `system`). */
  actor: string;
  /** What it is about: `pipeline/<name>`, `model/<name>/<version>`. */
  subject: string;
  data: Record<string, unknown>;
  prevHash: string;
}

export interface AuditEntry extends AuditEntryBody {
  hash: string;
}

/** A head hash written to immutable Blob storage: the chain reached `seq` with `hash` at `at`. */
export interface AuditAnchor {
  seq: number;
  hash: string;
  at: string;
}

/**
 * JSON with object keys sorted at every depth and no insignificant whitespace, so one entry has one
 * byte string whatever order its fields were written or read back in. Entries hold only JSON
 * values (strings, finite numbers, booleans, null, arrays, objects); `undefined` members are
 * dropped as JSON.stringify drops them. Small enough to own rather than depend on: its output is
 * part of the record's format and must never change with a library upgrade.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** SHA-256 (lower-case hex) of the canonical JSON of the entry's hashed fields. */
export function hashEntry(entry: AuditEntryBody): string {
  const { seq, at, kind, actor, subject, data, prevHash } = entry;
  return createHash('sha256')
    .update(canonicalJson({ seq, at, kind, actor, subject, data, prevHash }))
    .digest('hex');
}

/** What verification found wrong, named after what someone did to the record. */
export type TamperKind = 'edited' | 'deleted' | 'reordered' | 'truncated';

export interface VerifyProblem {
  kind: TamperKind;
  /** The first bad entry's sequence number (for a deletion or truncation: the first missing one). */
  seq: number;
  message: string;
}

export type VerifyResult =
  | { valid: true; entries: number; head: { seq: number; hash: string }; anchors: number }
  | { valid: false; entries: number; anchors: number; firstBad: VerifyProblem };

/**
 * Walks entries in `seq` order, carrying what it needs to check the next one, so a long chain is
 * checked page by page without holding it. Checks per entry, in this order: no gap in `seq`
 * (deleted), the stored hash is the hash of the fields (edited), `prevHash` is the previous
 * entry's hash (reordered, or an entry put back in another place). {@link finish} then checks the
 * end of the chain against the head document and every anchor (truncated).
 */
export class ChainWalker {
  private expected = 1;
  private prevHash = GENESIS_HASH;
  private readonly hashes = new Map<number, string>();
  private problem: VerifyProblem | undefined;
  count = 0;

  constructor(private readonly anchoredSeqs: ReadonlySet<number> = new Set()) {}

  get failed(): VerifyProblem | undefined {
    return this.problem;
  }

  /** Feeds the next entry (entries must come sorted by seq); false once a problem is found. */
  push(entry: AuditEntry): boolean {
    if (this.problem) return false;
    this.count++;
    if (entry.seq > this.expected) {
      const missing = entry.seq - this.expected;
      this.problem = {
        kind: 'deleted',
        seq: this.expected,
        message: `entry ${this.expected}${missing > 1 ? `–${entry.seq - 1}` : ''} is missing: the chain goes from ${this.expected - 1} to ${entry.seq}`,
      };
      return false;
    }
    if (entry.seq < this.expected) {
      this.problem = {
        kind: 'reordered',
        seq: entry.seq,
        message: `entry ${entry.seq} appears twice (or out of order) after entry ${this.expected - 1}`,
      };
      return false;
    }
    const computed = hashEntry(entry);
    if (computed !== entry.hash) {
      this.problem = {
        kind: 'edited',
        seq: entry.seq,
        message: `entry ${entry.seq} (${entry.kind}, ${entry.subject}) was changed: its fields hash to ${computed}, it says ${entry.hash}`,
      };
      return false;
    }
    if (entry.prevHash !== this.prevHash) {
      this.problem = {
        kind: 'reordered',
        seq: entry.seq,
        message: `entry ${entry.seq} (${entry.kind}, ${entry.subject}) does not follow entry ${entry.seq - 1}: its prevHash ${entry.prevHash} is not that entry's hash ${this.prevHash}`,
      };
      return false;
    }
    if (this.anchoredSeqs.has(entry.seq)) this.hashes.set(entry.seq, entry.hash);
    this.prevHash = entry.hash;
    this.expected++;
    return true;
  }

  /** The last good entry's seq and hash. */
  get last(): { seq: number; hash: string } {
    return { seq: this.expected - 1, hash: this.prevHash };
  }

  /**
   * Ends the walk: the head document (what writers last committed) and every anchor must be
   * reached by the chain with the same hash.
   */
  finish(head: { seq: number; hash: string } | undefined, anchors: readonly AuditAnchor[]): VerifyResult {
    const base = { entries: this.count, anchors: anchors.length };
    if (this.problem) return { valid: false, ...base, firstBad: this.problem };
    const last = this.last;
    const truncated = (seq: number, message: string): VerifyResult => ({
      valid: false,
      ...base,
      firstBad: { kind: 'truncated', seq, message },
    });
    if (head && head.seq > last.seq) {
      return truncated(
        last.seq + 1,
        `the chain ends at entry ${last.seq}, but its head says ${head.seq} entries were written: entries ${last.seq + 1}–${head.seq} are gone`,
      );
    }
    if (head && head.seq < last.seq) {
      return {
        valid: false,
        ...base,
        firstBad: {
          kind: 'edited',
          seq: head.seq + 1,
          message: `entries ${head.seq + 1}–${last.seq} were added outside the log: its head says ${head.seq} entries were written`,
        },
      };
    }
    if (head && head.seq === last.seq && head.hash !== last.hash) {
      return {
        valid: false,
        ...base,
        firstBad: {
          kind: 'edited',
          seq: last.seq,
          message: `entry ${last.seq} is not the one the head recorded (head hash ${head.hash}, entry hash ${last.hash})`,
        },
      };
    }
    for (const anchor of [...anchors].sort((a, b) => a.seq - b.seq)) {
      if (anchor.seq > last.seq) {
        return truncated(
          last.seq + 1,
          `the anchor of ${anchor.at} says the chain reached entry ${anchor.seq}, but it ends at entry ${last.seq}: it was truncated after that anchor`,
        );
      }
      const hash = anchor.seq === 0 ? GENESIS_HASH : this.hashes.get(anchor.seq);
      if (hash !== anchor.hash) {
        return truncated(
          anchor.seq,
          `the anchor of ${anchor.at} holds hash ${anchor.hash} for entry ${anchor.seq}, which the chain no longer has (${hash ?? 'none'}): it was cut back and rewritten after that anchor`,
        );
      }
    }
    return { valid: true, ...base, head: last };
  }
}

/** Verifies a whole chain held in memory (tests, small chains). */
export function verifyChain(
  entries: readonly AuditEntry[],
  head: { seq: number; hash: string } | undefined,
  anchors: readonly AuditAnchor[],
): VerifyResult {
  const walker = new ChainWalker(new Set(anchors.map((a) => a.seq)));
  for (const e of [...entries].sort((a, b) => a.seq - b.seq)) if (!walker.push(e)) break;
  return walker.finish(head, anchors);
}
