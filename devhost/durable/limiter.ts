/** A FIFO concurrency limiter: `maxConcurrentActivityFunctions` / `maxConcurrentOrchestratorFunctions`. */
export class Limiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly limit: number) {}

  /** Runs `task` when a slot is free; tasks start in submission order. */
  run(task: () => Promise<void>): void {
    this.queue.push(() => {
      this.running++;
      task()
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          this.next();
        });
    });
    this.next();
  }

  get active(): number {
    return this.running;
  }

  get waiting(): number {
    return this.queue.length;
  }

  private next(): void {
    while (this.running < this.limit && this.queue.length > 0) this.queue.shift()!();
  }
}
