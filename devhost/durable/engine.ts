/**
 * The Durable engine: instances, their inboxes and episodes (durable-host-spec §5, §7, §11).
 *
 * An episode takes everything waiting in an instance's inbox, appends it to the history after a fresh
 * `OrchestratorStarted`, runs the real orchestrator over the whole history, derives the sequence ids of
 * the returned actions by shadow replay, persists the episode (append-only, one entity in the common
 * case) and only then dispatches the new work. One episode runs per instance at a time; activity and
 * orchestrator concurrency follow host.json.
 *
 * Live state stays in memory between episodes (history, shadow replay, open work), so an episode never
 * re-reads storage and devhost's own work per episode is proportional to the new events. Storage is
 * read once, at start, to resume every unfinished instance after a crash.
 *
 * This class only wires the parts together and is what the HTTP API and `index.ts` use:
 *
 * | part                | file           | does                                                        |
 * |---------------------|----------------|-------------------------------------------------------------|
 * | `TaskHub`           | hub.ts         | instances in memory, the store, stats, episode writes       |
 * | `InstanceManager`   | instances.ts   | client operations: start, raise event, control, purge       |
 * | `EpisodeScheduler`  | scheduler.ts   | which instance runs an episode when, concurrency, retry     |
 * | `EpisodeRunner`     | episode.ts     | one episode: control messages, orchestrator, replay, persist|
 * | `WorkRunner`        | work.ts        | activities, timers, sub-orchestrations and their completions|
 * | `Endings`           | endings.ts     | completed, failed, terminated, continued as new             |
 */
import type { DurableEngineOptions } from '../contracts';
import type { DurableConfig } from './config';
import { Endings } from './endings';
import { EntityRunner } from './entities';
import { EpisodeRunner } from './episode';
import { isTerminal } from './history';
import { type EngineStats, TaskHub } from './hub';
import { type Instance, instanceFromLoaded } from './instance';
import { InstanceManager, type StartOptions } from './instances';
import { EpisodeScheduler } from './scheduler';
import { SqliteTaskHubStore } from './sqliteStore';
import { inboxRowKey, type TaskHubStorage } from './store';
import { WorkRunner } from './work';

export class DurableEngineCore {
  readonly instances: Map<string, Instance>;
  readonly stats: EngineStats;
  private readonly hub: TaskHub;
  private readonly scheduler: EpisodeScheduler;
  private readonly manager: InstanceManager;
  private readonly work: WorkRunner;
  private readonly episodes: EpisodeRunner;
  private readonly entityRunner: EntityRunner | undefined;

  constructor(
    opts: DurableEngineOptions,
    readonly config: DurableConfig,
    store: TaskHubStorage,
  ) {
    const hub = new TaskHub(opts, config, store);
    this.hub = hub;
    this.instances = hub.instances;
    this.stats = hub.stats;
    // The scheduler runs episodes, which are built last: it only calls them once something is kicked.
    this.scheduler = new EpisodeScheduler(hub, (inst, batch) => this.episodes.process(inst, batch));
    const kick = (inst: Instance): void => this.scheduler.kick(inst);
    this.manager = new InstanceManager(hub, kick);
    this.work = new WorkRunner(hub, {
      kick,
      createChild: (name, childId, input, parent, existing) =>
        this.manager.create(name, childId, input, '', parent, existing),
    });
    if (store instanceof SqliteTaskHubStore) {
      this.entityRunner = new EntityRunner(hub, store, kick);
      hub.entities = this.entityRunner;
    }
    const endings = new Endings(hub, (child) => this.work.notifyParent(child));
    this.episodes = new EpisodeRunner(hub, this.work, endings);
  }

  // ---------------------------------------------------------------------------------------------------
  // Lifecycle

  async restore(): Promise<void> {
    const { store, log } = this.hub;
    const loaded = await store.loadAll();
    for (const l of loaded) this.instances.set(l.record.instanceId, instanceFromLoaded(l));
    let resumed = 0;
    for (const l of loaded) {
      const inst = this.instances.get(l.record.instanceId)!;
      const garbage = [...l.garbage];
      if (isTerminal(inst.status)) {
        for (const m of l.inbox) garbage.push(inboxRowKey(m.seq));
        inst.inbox = [];
      } else {
        this.work.resumeOpenWork(inst);
        resumed++;
      }
      if (garbage.length > 0) this.hub.background(store.deleteRows(inst.id, garbage), 'garbage collection');
    }
    for (const inst of this.instances.values()) this.kick(inst);
    this.entityRunner?.restore();
    if (loaded.length > 0) log.info(`durable: restored ${loaded.length} instance(s), ${resumed} unfinished`);
  }

  async stop(): Promise<void> {
    this.hub.stopping = true;
    this.work.stop();
    this.entityRunner?.stop();
    await this.scheduler.drain(Date.now() + 5000);
    const st = this.stats;
    if (st.episodes > 0) {
      const avg = (ms: number, n: number): string => (n ? (ms / n).toFixed(2) : '0');
      this.hub.log.info(
        `durable stats: episodes=${st.episodes} avgInvokeMs=${avg(st.invokeMs, st.episodes)} ` +
          `avgReplayMs=${avg(st.replayMs, st.episodes)} avgPersistMs=${avg(st.persistMs, st.episodes)} ` +
          `avgHistoryEvents=${avg(st.historyEventsSent, st.episodes)} activities=${st.activities} ` +
          `avgActivityQueueMs=${avg(st.activityQueueMs, st.activities)}`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Client operations (used by the HTTP API)

  get(id: string): Instance | undefined {
    return this.hub.get(id);
  }

  /** Creates (or replaces a finished) instance; resolves once it is persisted as Pending. */
  startNew(o: StartOptions): Promise<Instance> {
    return this.manager.startNew(o);
  }

  raiseEvent(id: string, name: string, inputJson: string | null): Promise<void> {
    return this.manager.raiseEvent(id, name, inputJson);
  }

  control(id: string, kind: 'terminate' | 'suspend' | 'resume', reason: string): Promise<void> {
    return this.manager.control(id, kind, reason);
  }

  purge(id: string): Promise<boolean> {
    return this.manager.purge(id);
  }

  /** Durable entities, when the store keeps them. */
  get entities(): EntityRunner | undefined {
    return this.entityRunner;
  }

  /** Queues an episode for `inst` if it has something to do. */
  kick(inst: Instance): void {
    this.scheduler.kick(inst);
  }
}
