import { TransientError } from '../errors';
import type { ContainerName, CosmosStore, Stored } from './cosmos';

/**
 * An exclusive lease kept in one small Cosmos document: at most one holder at a time, whoever asks.
 * Taken with a conditional create (the first take ever) or an ETag-conditioned replace (every later
 * one), so of two concurrent takes exactly one wins and the other reads the winner. A holder that
 * `isActive` says has ended is taken over (a lost release never wedges the lease), and only the
 * holder can free it: a release by anyone else changes nothing.
 *
 * What the document looks like besides `holder` (its kind, partition, who holds it, since when) is
 * the caller's, described by a {@link LeaseSpec}; lib/approval/slot.ts (one approval at a time per
 * pipeline) and lib/registry/deployLock.ts (one deployment at a time per model) are the two users.
 */

/** What every lease document has: the id of the holder, or null when free. */
export interface LeaseDoc {
  id: string;
  holder: string | null;
}

/** How one kind of lease is stored. `H` is how a holder is named (a run id, or a run and its pipeline). */
export interface LeaseSpec<D extends LeaseDoc, H> {
  container: ContainerName;
  /** The document id (the same in every partition). */
  id: string;
  /** The partition key value of the lease `key` (a model name, `slot:<pipeline>`). */
  partition(key: string): string;
  /** The document of a lease taken for the first time. */
  fresh(key: string, holder: H, at: string): D;
  /**
   * The stored document with a new holder (taken at `at`), or freed (`holder` null): only the
   * document's own fields, none of Cosmos's system fields.
   */
  hold(current: D, holder: H | null, at?: string): D;
  /** The holder a held document names. */
  holderOf(doc: D): H;
  /** A holder's id, as `holder` stores it. */
  idOf(holder: H): string;
  /** The error code and the words for "too many concurrent changes" (a TransientError). */
  busyCode: string;
  describe(key: string): string;
}

export type LeaseTake<D, H> =
  | { granted: true; tookOverFrom?: H }
  /** Held by a live holder. */
  | { granted: false; holder: H; current: Stored<D> }
  /** Free (or its holder ended), but `turn` named someone who goes first. */
  | { granted: false; ahead: H };

const MAX_ATTEMPTS = 8;

export class CosmosLease<D extends LeaseDoc, H> {
  constructor(
    private readonly cosmos: Pick<CosmosStore, 'read' | 'create' | 'replace'>,
    private readonly spec: LeaseSpec<D, H>,
  ) {}

  /**
   * Takes the lease `key` for `who`. Granted when free, already held by `who` (a retried caller),
   * or held by a holder `isActive` says has ended (a takeover, named in the answer); otherwise the
   * live holder. `turn`, when given, is asked just before a free (or ended) lease would be taken:
   * a holder it names goes first, and `who` is refused with `ahead` (fair queues build on this).
   */
  async take(
    key: string,
    who: H,
    at: string,
    isActive: (holder: H) => Promise<boolean>,
    turn?: () => Promise<H | undefined>,
  ): Promise<LeaseTake<D, H>> {
    const { spec } = this;
    const whoId = spec.idOf(who);
    let asked = false;
    let ahead: H | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(key);
      if (current?.holder === whoId) return { granted: true };
      const held = current && current.holder !== null ? spec.holderOf(current) : undefined;
      if (current && held && (await isActive(held))) return { granted: false, holder: held, current };
      // Someone goes first, and the lease is still free (read again after asking): say who.
      if (ahead !== undefined) return { granted: false, ahead };
      if (turn && !asked) {
        // Once per take: a waiter ahead does not stop being ahead within one take's retries.
        asked = true;
        ahead = await turn();
        if (ahead !== undefined) continue;
      }
      if (!current) {
        if ((await this.cosmos.create(spec.container, spec.fresh(key, who, at))).ok) return { granted: true };
        continue; // someone created it first: read it again
      }
      if ((await this.cosmos.replace(spec.container, spec.hold(current, who, at), current._etag)).ok) {
        return { granted: true, ...(held ? { tookOverFrom: held } : {}) };
      }
    }
    throw new TransientError(spec.busyCode, `${spec.describe(key)}: too many concurrent takes`);
  }

  /**
   * Frees the lease if `holderId` holds it; false (and nothing changes) otherwise, so someone who
   * does not hold it can never free someone else's. Idempotent.
   */
  async release(key: string, holderId: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(key);
      if (!current || current.holder !== holderId) return false;
      if ((await this.cosmos.replace(this.spec.container, this.spec.hold(current, null), current._etag)).ok) {
        return true;
      }
    }
    throw new TransientError(this.spec.busyCode, `${this.spec.describe(key)}: too many concurrent changes`);
  }

  /** The stored document of `key`, or undefined when it was never taken. */
  read(key: string): Promise<Stored<D> | undefined> {
    return this.cosmos.read<D>(this.spec.container, this.spec.id, this.spec.partition(key));
  }
}
