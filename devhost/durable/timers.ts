/**
 * Durable timers (durable-host-spec §7.2): one Node timer armed for the earliest due entry of a min-heap,
 * so thousands of pending durable timers cost one `setTimeout`. Waits longer than what `setTimeout`
 * accepts (2^31-1 ms) are re-armed in chunks, invisibly to the orchestrator. Due times are on the
 * engine's clock (`now`, devhost's movable clock): after the clock moves, `rearm()` fires at once every
 * entry now due.
 */

const maxDelayMs = 2 ** 30;

interface Entry<T> {
  fireAt: number;
  seq: number;
  payload: T;
  canceled: boolean;
}

export interface TimerHandle {
  cancel(): void;
}

export class TimerService<T> {
  private readonly heap: Entry<T>[] = [];
  private seq = 0;
  private handle: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private stopped = false;

  constructor(
    private readonly onFire: (payload: T, fireAt: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  schedule(fireAt: number, payload: T): TimerHandle {
    const entry: Entry<T> = { fireAt, seq: this.seq++, payload, canceled: false };
    this.push(entry);
    this.arm();
    return {
      cancel: () => {
        entry.canceled = true;
      },
    };
  }

  get size(): number {
    return this.heap.length;
  }

  /** The clock moved: re-arms for the first entry's new distance (firing what is due now). */
  rearm(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = undefined;
    this.armedFor = Infinity;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.handle) clearTimeout(this.handle);
    this.handle = undefined;
    this.heap.length = 0;
  }

  private arm(): void {
    if (this.stopped) return;
    while (this.heap.length > 0 && this.heap[0]!.canceled) this.pop();
    const first = this.heap[0];
    if (!first) return;
    if (this.handle && this.armedFor <= first.fireAt) return;
    if (this.handle) clearTimeout(this.handle);
    const delay = Math.max(0, Math.min(first.fireAt - this.now(), maxDelayMs));
    this.armedFor = first.fireAt;
    this.handle = setTimeout(() => this.fire(), delay);
    this.handle.unref?.();
  }

  private fire(): void {
    this.handle = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]!.fireAt <= now) {
      const e = this.pop();
      if (!e.canceled) this.onFire(e.payload, e.fireAt);
    }
    this.arm();
  }

  private less(a: Entry<T>, b: Entry<T>): boolean {
    return a.fireAt < b.fireAt || (a.fireAt === b.fireAt && a.seq < b.seq);
  }

  private push(e: Entry<T>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Entry<T> {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
