/**
 * Scheduling of episodes (durable-host-spec §5.1): an instance with something in its inbox is queued
 * for an episode; one episode runs per instance at a time and at most `maxConcurrentOrchestratorFunctions`
 * at once. An episode that throws (e.g. storage unavailable) applied nothing: its batch goes back to the
 * inbox and the instance is retried a second later.
 */
import { isTerminal } from './history';
import type { TaskHub } from './hub';
import type { InboxItem, Instance } from './instance';
import { Limiter } from './limiter';

/** Persisted inbox messages one episode takes at most (their rows are released in one go). */
const maxBatchMessages = 50;

/** Runs one episode over `batch`; rejects only if nothing of it was applied. */
export type ProcessBatch = (inst: Instance, batch: InboxItem[]) => Promise<void>;

export class EpisodeScheduler {
  private readonly limiter: Limiter;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly hub: TaskHub,
    private readonly processBatch: ProcessBatch,
  ) {
    this.limiter = new Limiter(hub.config.maxConcurrentOrchestratorFunctions);
  }

  /** Queues an episode for `inst` if it has something to do and none is queued or running. */
  kick(inst: Instance): void {
    if (inst.busy || inst.queued || !this.runnable(inst)) return;
    inst.queued = true;
    this.limiter.run(async () => {
      inst.queued = false;
      if (inst.busy || !this.runnable(inst)) return;
      inst.busy = true;
      const p = this.runEpisode(inst)
        .catch((err: unknown) => {
          this.hub.log.error(`durable: episode of '${inst.id}' failed, will retry: ${String(err)}`);
          inst.shadow = undefined;
          inst.retryAt = Date.now() + 1000;
          setTimeout(() => this.kick(inst), 1000).unref();
        })
        .finally(() => {
          inst.busy = false;
          this.inflight.delete(p);
          this.kick(inst);
        });
      this.inflight.add(p);
      await p;
    });
  }

  /** Waits until the running episodes end, at most until `deadline` (ms since epoch). */
  async drain(deadline: number): Promise<void> {
    while (this.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, 100))]);
    }
  }

  private runnable(inst: Instance): boolean {
    if (inst.purged || this.hub.stopping || isTerminal(inst.status) || Date.now() < inst.retryAt)
      return false;
    if (inst.inbox.some((i) => i.kind !== 'event')) return true;
    if (inst.status === 'Suspended') return false;
    return inst.inbox.length > 0 || inst.history.length === 0;
  }

  private async runEpisode(inst: Instance): Promise<void> {
    const batch = takeBatch(inst);
    try {
      await this.processBatch(inst, batch);
    } catch (err) {
      // Nothing was applied: give the batch back, in order, for the retry.
      if (this.hub.instances.get(inst.id) === inst) inst.inbox.unshift(...batch);
      throw err;
    }
  }
}

/** Takes the inbox prefix one episode processes (bounded so its inbox rows can be released in one go). */
function takeBatch(inst: Instance): InboxItem[] {
  let persisted = 0;
  let n = 0;
  while (n < inst.inbox.length) {
    const item = inst.inbox[n]!;
    if ('seq' in item && item.seq !== undefined) {
      if (persisted >= maxBatchMessages) break;
      persisted++;
    }
    n++;
  }
  return inst.inbox.splice(0, n);
}
