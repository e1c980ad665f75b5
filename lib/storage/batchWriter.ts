/**
 * The one batching writer of the serving path: predict's traffic stats (lib/rollout/traffic.ts)
 * and its monitoring samples (lib/monitoring/sampler.ts) both buffer in memory and write through
 * it, so neither writes per request nor on a request's path. The owner keeps its own in-memory
 * batch (a sum, a list) and tells the writer how much it added; the writer decides when to flush:
 *
 * - on size: once `flushEvery` units were added since the last flush;
 * - on time: `flushEveryMs` after the first unit of a batch (an unref'd timer);
 * - on shutdown: `close()` waits for a write in flight and writes what is left.
 *
 * One flush at a time. A flush `take`s the owner's batch (synchronously, so appends during a write
 * go to the next batch and none is lost) and writes it together with the items of earlier failed
 * writes, kept exactly as they were (same ids, same sequence numbers): `write` resolves with the
 * items it could not write (or rejects: all of them). At most `maxUnwritten` units are kept; the
 * oldest go first and are counted in `dropped`. After a failed write the next attempt waits for the
 * timer, so a storage outage is not retried in a tight loop.
 */

export interface BatchWriterOptions<T> {
  /** Drains the owner's batch into items to write; `seq` numbers this flush (unique per writer). */
  take(seq: number): T[];
  /** Writes items; resolves with those not written (kept for the next flush), or rejects (all kept). */
  write(items: T[], seq: number): Promise<T[] | void>;
  flushEveryMs: number;
  /** Units added since the last flush that start one. */
  flushEvery: number;
  /** Units of one item, for `maxUnwritten` (default 1). */
  weight?(item: T): number;
  /** Units of failed items kept for the next flush (default 100,000). */
  maxUnwritten?: number;
  log?: (message: string) => void;
}

export class BatchWriter<T> {
  private pending = 0;
  private unwritten: T[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Failed items dropped because more than `maxUnwritten` units were kept. */
  dropped = 0;

  constructor(private readonly options: BatchWriterOptions<T>) {}

  /** The owner added `units` to its batch: a flush starts now when due, else the timer is armed. */
  added(units = 1): void {
    this.pending += units;
    if (this.pending >= this.options.flushEvery) void this.flush();
    else this.arm();
  }

  /** Units added since the last flush took the batch. */
  get buffered(): number {
    return this.pending;
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.options.flushEveryMs);
    this.timer.unref();
  }

  /** Writes the owner's batch and the failed items kept (the flush in flight, if one is). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending === 0 && this.unwritten.length === 0) return Promise.resolve();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const seq = this.seq++;
    const fresh = this.pending > 0 ? this.options.take(seq) : [];
    this.pending = 0;
    const items = [...this.unwritten, ...fresh];
    this.unwritten = [];
    if (items.length === 0) return Promise.resolve();
    let failed = false;
    this.flushing = this.options
      .write(items, seq)
      .then(
        (left) => left ?? [],
        (err: unknown) => {
          this.options.log?.(`write failed, ${items.length} item(s) kept: ${(err as Error).message}`);
          return items;
        },
      )
      .then((left) => {
        if (left.length === 0) return;
        failed = true;
        this.keep(left);
      })
      .finally(() => {
        this.flushing = undefined;
        // What came during the write: flush now when due, else on the timer (always the timer
        // after a failed write).
        if (!failed && this.pending >= this.options.flushEvery) void this.flush();
        else if (this.pending > 0 || this.unwritten.length > 0) this.arm();
      });
    return this.flushing;
  }

  private keep(left: T[]): void {
    const weight = this.options.weight ?? (() => 1);
    const max = this.options.maxUnwritten ?? 100_000;
    let units = left.reduce((a, t) => a + weight(t), 0);
    let first = 0;
    while (units > max && first < left.length - 1) units -= weight(left[first++]!);
    if (first > 0) {
      this.dropped += first;
      this.options.log?.(`${first} oldest unwritten item(s) dropped (more than ${max} kept)`);
    }
    this.unwritten = left.slice(first);
  }

  /** Waits for a write in flight, then writes what is left (shutdown, tests). */
  async close(): Promise<void> {
    if (this.flushing) await this.flushing;
    await this.flush();
    if (this.timer && this.unwritten.length === 0 && this.pending === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}
