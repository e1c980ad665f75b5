/**
 * One episode of one instance (durable-host-spec §5): apply the control messages of the batch, then
 * append the delivered events after a fresh `OrchestratorStarted`, run the real orchestrator over the
 * whole history, derive the sequence ids of the returned actions by shadow replay, check every output,
 * persist the episode (append-only) and only then start the new work.
 */
import { randomUUID } from 'node:crypto';
import { isOrchestratorState, type OrchestratorState, topLevelActions } from './actions';
import { planBatch } from './batch';
import { formatTimeSpan } from './config';
import type { Endings } from './endings';
import { EventType, events, type HistoryEvent, OrchestrationStatusCode } from './history';
import type { TaskHub } from './hub';
import { type InboxItem, type Instance, nextStamp } from './instance';
import { schedulingEvent } from './newWork';
import { checkPayload, parseOrchestratorFailure, toJsonText } from './payload';
import { replayFromHistory, type WorkItem } from './replay';
import type { WorkRunner } from './work';

type Failure = { message: string; stack?: string };

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class EpisodeRunner {
  constructor(
    private readonly hub: TaskHub,
    private readonly work: WorkRunner,
    private readonly endings: Endings,
  ) {}

  /** Runs one episode over `batch` (taken from the inbox by the scheduler). */
  async process(inst: Instance, batch: InboxItem[]): Promise<void> {
    const plan = planBatch(inst, batch, this.hub.now());
    const { consumed, pre, status, stamp } = plan;
    // Held events go back to the front of the inbox, ahead of anything that arrived meanwhile.
    if (plan.held.length > 0) inst.inbox.unshift(...plan.held);

    if (plan.terminateReason !== undefined)
      return this.endings.terminated(inst, plan.terminateReason, consumed, batch);
    if (plan.abort !== undefined) {
      return this.endings.failed(
        inst,
        [...pre],
        consumed,
        `Orchestrator function '${inst.name}' failed: ${plan.abort}`,
        {
          message: plan.abort,
        },
      );
    }
    const needsStart = inst.history.length === 0;
    if (status === 'Suspended' || (plan.deliver.length === 0 && !needsStart)) {
      // Only control events: record them, do not run the orchestrator.
      if (pre.length === 0 && consumed.length === 0) return;
      await this.hub.persist(inst, pre, {
        status,
        lastUpdatedTime: stamp,
        ...(consumed.length ? { consumed } : {}),
      });
      inst.status = status;
      inst.lastUpdatedTime = stamp;
      inst.lastTs = Math.max(inst.lastTs, stamp);
      this.hub.releaseInbox(inst, consumed);
      return;
    }
    await this.runOrchestrator(inst, pre, plan.deliver, consumed, batch);
  }

  private async runOrchestrator(
    inst: Instance,
    pre: HistoryEvent[],
    deliver: HistoryEvent[],
    consumed: number[],
    batch: InboxItem[],
  ): Promise<void> {
    const { hub } = this;
    const { config, stats } = hub;
    const ts = nextTimestamp(inst, batch, this.hub.now());
    const fresh: HistoryEvent[] = [...pre, events.orchestratorStarted(ts)];
    if (inst.history.length === 0) fresh.push(executionStarted(inst, ts));
    for (const e of deliver) fresh.push(e);
    const fail = (message: string, failure: Failure, extra: HistoryEvent[] = []) =>
      this.endings.failed(inst, [...fresh, ...extra], consumed, message, failure, ts);
    const failWith = (message: string, extra: HistoryEvent[] = []) => {
      inst.shadow = undefined;
      return fail(`Orchestrator function '${inst.name}' failed: ${message}`, { message }, extra);
    };

    const fn = hub.orchestratorFunction(inst.name);
    if (!fn) {
      const msg = hub.unknownFunction(inst.name, 'orchestration');
      return fail(msg, { message: msg });
    }

    // 1. Run the real orchestrator over the whole history.
    let state: OrchestratorState | undefined;
    let thrown: Failure | undefined;
    const invokeStarted = performance.now();
    stats.episodes++;
    stats.historyEventsSent += inst.history.length + fresh.length;
    try {
      const result = await hub.opts.invoke(
        fn,
        { kind: 'orchestration', payload: this.payload(inst, fresh) },
        { invocationId: randomUUID() },
      );
      if (isOrchestratorState(result)) state = result;
      else
        thrown = {
          message: `the orchestrator returned an unexpected value (${typeof result}), not an OrchestratorState`,
        };
    } catch (err) {
      const parsed = parseOrchestratorFailure(err);
      thrown = {
        message: parsed.message,
        ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
      };
      if (parsed.state && 'customStatus' in parsed.state) {
        try {
          inst.customStatus = toJsonText(parsed.state.customStatus, 'The custom status');
        } catch {
          // keep the previous custom status
        }
      }
    }
    stats.invokeMs += performance.now() - invokeStarted;
    if (hub.instances.get(inst.id) !== inst) return; // purged or replaced while the orchestrator ran
    if (thrown || !state) {
      const t = thrown ?? { message: 'no orchestrator state' };
      return fail(`Orchestrator function '${inst.name}' failed: ${t.message}`, t);
    }

    // 2. Shadow replay: which ids the library gave the actions, which of them are new.
    const replayStarted = performance.now();
    const top = topLevelActions(state);
    let newItems: WorkItem[];
    let shadow = inst.shadow;
    if (shadow && shadow.syncActions(top) === -1) {
      for (const e of fresh) shadow.apply(e);
      newItems = shadow.takeNew();
    } else {
      const full = replayFromHistory(top, [...inst.history, ...fresh], {
        maxShortTimerMs: config.maximumShortTimerMs,
        longTimerIntervalMs: config.longRunningTimerIntervalMs,
        httpAsyncSleepMs: config.httpAsyncSleepMs,
      });
      if (full.nonDeterminism) {
        inst.shadow = undefined;
        return fail(full.nonDeterminism, { message: full.nonDeterminism });
      }
      shadow = full.shadow;
      newItems = full.newItems;
    }
    stats.replayMs += performance.now() - replayStarted;
    if (shadow.items.length > config.maxOrchestrationActions) {
      const msg = `Orchestrator function '${inst.name}' failed: the orchestration exceeded the maximum of ${config.maxOrchestrationActions} actions (maxOrchestrationActions).`;
      inst.shadow = undefined;
      return fail(msg, { message: msg });
    }

    // 3. Custom status, output and new work, each checked before anything is persisted.
    let customStatus: string | undefined;
    const scheduling: HistoryEvent[] = [];
    try {
      if ('customStatus' in state && state.customStatus !== undefined) {
        customStatus = toJsonText(state.customStatus, 'The custom status');
        checkPayload('The custom status', customStatus, config.maxPayloadBytes);
      }
      for (const item of newItems) scheduling.push(schedulingEvent(hub, inst, item, ts, state.isDone));
    } catch (err) {
      return failWith(messageOf(err));
    }
    // Entity calls now wait for their answer by request id, which only the EventSent carries.
    for (const e of scheduling) if (e.EventType === EventType.EventSent) shadow.apply(e);

    if (state.isDone && shadow.continueAsNew) {
      inst.shadow = undefined;
      return this.endings.continueAsNew(inst, shadow.continueAsNew, consumed, customStatus, ts, scheduling);
    }
    if (state.isDone) {
      let output: string;
      try {
        output = toJsonText(state.output, 'The orchestrator output');
        checkPayload('The orchestrator output', output, config.maxPayloadBytes);
      } catch (err) {
        return failWith(messageOf(err), scheduling);
      }
      const added = [
        ...fresh,
        ...scheduling,
        events.orchestratorCompleted(ts),
        events.executionCompleted(ts, OrchestrationStatusCode.Completed, output),
      ];
      return this.endings.completed(inst, added, output, ts, customStatus, consumed);
    }

    // 4. Persist the episode, then start the new work.
    const added = [...fresh, ...scheduling, events.orchestratorCompleted(ts)];
    try {
      await hub.persist(inst, added, {
        status: 'Running',
        lastUpdatedTime: ts,
        ...(customStatus !== undefined ? { customStatus } : {}),
        ...(consumed.length ? { consumed } : {}),
      });
    } catch (err) {
      inst.shadow = undefined;
      throw err;
    }
    inst.shadow = shadow;
    inst.status = 'Running';
    inst.lastUpdatedTime = ts;
    inst.lastTs = ts;
    if (customStatus !== undefined) inst.customStatus = customStatus;
    hub.releaseInbox(inst, consumed);
    this.warnLongHistory(inst);
    for (let i = 0; i < newItems.length; i++) this.work.dispatch(inst, newItems[i]!, scheduling[i]!);
    this.cancelAbandonedTimers(inst);
  }

  /** The invocation payload the library's orchestrator handler expects (spec §5.2). */
  private payload(inst: Instance, fresh: HistoryEvent[]): Record<string, unknown> {
    const { config } = this.hub;
    const history = inst.played.concat(fresh.map((e) => ({ ...e, IsPlayed: false })));
    let input: unknown = null;
    if (inst.input !== null) input = JSON.parse(inst.input);
    return {
      history,
      input,
      instanceId: inst.id,
      isReplaying: false,
      parentInstanceId: inst.parent?.instanceId ?? null,
      upperSchemaVersion: 1,
      // V4: V3 plus entity critical sections (`context.df.lock`), which devhost implements (entities.ts).
      // Without the entity store (Table storage) a lock fails the instance naming it (newWork.ts).
      upperSchemaVersionNew: 3,
      longRunningTimerIntervalDuration: formatTimeSpan(config.longRunningTimerIntervalMs),
      maximumShortTimerDuration: formatTimeSpan(config.maximumShortTimerMs),
      defaultHttpAsyncRequestSleepTimeMillseconds: config.httpAsyncSleepMs,
    };
  }

  private warnLongHistory(inst: Instance): void {
    if (inst.warnedHistory || inst.history.length < this.hub.config.historyWarningEvents) return;
    inst.warnedHistory = true;
    this.hub.log.warn(
      `durable: instance '${inst.id}' (${inst.name}) has ${inst.history.length} history events; every episode replays ` +
        `all of them. Consider continueAsNew to bound the history.`,
    );
  }

  /** Timers the orchestrator canceled (e.g. the loser of Task.any) need not fire: drop them. */
  private cancelAbandonedTimers(inst: Instance): void {
    if (!inst.shadow) return;
    for (const id of inst.shadow.canceledOpenTimers()) {
      const w = inst.open.get(id);
      if (w?.kind !== 'timer') continue;
      w.timer?.cancel();
      inst.open.delete(id);
    }
  }
}

/** The episode's timestamp: after the previous one, and not before a timer it delivers was due. */
function nextTimestamp(inst: Instance, batch: InboxItem[], now: number): number {
  let ts = nextStamp(inst, now);
  for (const item of batch) {
    if (item.kind === 'event' && item.event.EventType === EventType.TimerFired && item.event.FireAt) {
      ts = Math.max(ts, Date.parse(item.event.FireAt));
    }
  }
  return ts;
}

function executionStarted(inst: Instance, ts: number): HistoryEvent {
  return events.executionStarted(ts, {
    name: inst.name,
    input: inst.input,
    instanceId: inst.id,
    executionId: inst.executionId,
    version: inst.version,
    ...(inst.parent
      ? {
          parent: {
            Name: inst.parent.name,
            OrchestrationInstance: {
              InstanceId: inst.parent.instanceId,
              ExecutionId: inst.parent.executionId,
            },
            TaskScheduleId: inst.parent.taskScheduledId,
          },
        }
      : {}),
  });
}
