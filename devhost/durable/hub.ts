/**
 * The engine's shared state: every instance in memory, the store that makes them durable, the episode
 * statistics and the few writes every part of the engine makes (append an episode, release inbox rows).
 * The parts of the engine (scheduler, episodes, work, endings, instance management) each hold this one
 * object instead of reaching into each other's fields.
 */
import { type HostClock, wallClock } from '../clock/clock';
import type { DurableEngineOptions, Logger, RegisteredFunction } from '../contracts';
import type { DurableConfig } from './config';
import type { HistoryEvent } from './history';
import type { Instance } from './instance';
import { type EpisodeSnapshot, inboxRowKey, type StoredEntityMessage, type TaskHubStorage } from './store';

/** What the rest of the engine needs of Durable entities (entities.ts implements it). */
export interface EntitySink {
  /** The entity operations in an episode's new events (EventSent), to commit with the episode. */
  messagesOf(inst: Instance, added: readonly HistoryEvent[]): StoredEntityMessage[];
  /** Queues operations whose rows are committed. */
  enqueue(messages: readonly StoredEntityMessage[]): void;
  entityFunction(name: string): RegisteredFunction | undefined;
  /** The extension's message for a name that is not an entity function. */
  unknownEntity(name: string): string;
  /** An execution ended, continued as new or was purged: the entities it held locked are free. */
  released(instanceId: string): void;
}

/** Where episode time goes; logged when devhost stops (the benchmark reads it). */
export interface EngineStats {
  episodes: number;
  invokeMs: number;
  replayMs: number;
  persistMs: number;
  activities: number;
  /** Time activities waited between being dispatched and starting (concurrency limit). */
  activityQueueMs: number;
  historyEventsSent: number;
}

export class TaskHub {
  readonly instances = new Map<string, Instance>();
  readonly stats: EngineStats = {
    episodes: 0,
    invokeMs: 0,
    replayMs: 0,
    persistMs: 0,
    activities: 0,
    activityQueueMs: 0,
    historyEventsSent: 0,
  };
  readonly log: Logger;
  /** What "now" is for everything the engine time-stamps or schedules (devhost's movable clock). */
  readonly clock: HostClock;
  /** Set once by `stop()`: no episode or activity starts after it. */
  stopping = false;
  /** Durable entities (set by the engine; absent on a store that cannot keep them). */
  entities: EntitySink | undefined;

  constructor(
    readonly opts: DurableEngineOptions,
    readonly config: DurableConfig,
    readonly store: TaskHubStorage,
  ) {
    this.log = opts.log;
    this.clock = opts.clock ?? wallClock;
  }

  /** The engine's current time in epoch ms (the wall clock plus devhost's clock offset). */
  now(): number {
    return this.clock.now();
  }

  /** The live (not purged) instance with this id. */
  get(id: string): Instance | undefined {
    const inst = this.instances.get(id);
    return inst && !inst.purged ? inst : undefined;
  }

  /** Whether work `id` of generation `gen` may still report to `inst` (not replaced, purged or finished). */
  isCurrent(inst: Instance, gen: number, id: number): boolean {
    return this.instances.get(inst.id) === inst && inst.gen === gen && inst.open.has(id) && !inst.purged;
  }

  orchestratorFunction(name: string): RegisteredFunction | undefined {
    const fn = this.opts.registry.get(name);
    return fn?.kind === 'orchestration' ? fn : undefined;
  }

  /** The extension's message for a name that is not a registered function of that kind. */
  unknownFunction(name: string, kind: 'orchestration' | 'activity'): string {
    const label = kind === 'orchestration' ? 'orchestrator' : 'activity';
    const known = this.opts.registry
      .byKind(kind)
      .map((f) => `'${f.name}'`)
      .join(', ');
    return (
      `The function '${name}' doesn't exist, is disabled, or is not an ${label} function. Additional info: ` +
      `The following are the known ${label} functions: ${known}.`
    );
  }

  /** Runs storage work nobody waits for; a failure is logged, never thrown. */
  background(p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => this.log.error(`durable: ${what} failed: ${String(err)}`));
  }

  /** Appends an episode's events to the stored history, then to the in-memory copies. */
  async persist(inst: Instance, added: HistoryEvent[], snapshot: EpisodeSnapshot): Promise<void> {
    const started = performance.now();
    // Operations the episode sends to entities (EventSent) are queued in the same commit.
    const sent = this.entities?.messagesOf(inst, added) ?? [];
    const used = await this.store.appendEpisode(inst.id, inst.gen, inst.rows, added, snapshot, sent);
    this.stats.persistMs += performance.now() - started;
    if (sent.length > 0) this.entities?.enqueue(sent);
    inst.rows += used;
    for (const e of added) {
      inst.history.push(e);
      inst.played.push({ ...e, IsPlayed: true });
    }
  }

  /** Deletes inbox rows an episode has consumed (their effect is already in the history). */
  releaseInbox(inst: Instance, consumed: number[]): void {
    if (consumed.length === 0) return;
    this.background(
      this.store.deleteRows(
        inst.id,
        consumed.map((s) => inboxRowKey(s)),
      ),
      'releasing inbox rows',
    );
  }
}
