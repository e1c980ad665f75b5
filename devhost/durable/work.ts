/**
 * Open work (durable-host-spec §7.1-§7.3, §7.6, §11): activities run under
 * `maxConcurrentActivityFunctions`, durable timers are armed, sub-orchestrations are created, and each
 * completion goes to its instance's inbox as a history event, unless the instance moved on meanwhile
 * (replaced, purged, continued-as-new or finished). After a restart every scheduled item without a
 * completion runs again or is re-armed.
 */
import { randomUUID } from 'node:crypto';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { type DurableHttpRequestWire, httpActivityName, pollTag, sendDurableHttp } from './durableHttp';
import {
  completedId,
  EventType,
  events,
  type Failure,
  type HistoryEvent,
  isSchedulingEvent,
  isTerminal,
} from './history';
import type { TaskHub } from './hub';
import type { Instance } from './instance';
import { Limiter } from './limiter';
import {
  activityFailure,
  checkPayload,
  decodeActivityInput,
  encodeActivityResult,
  PayloadTooLargeError,
} from './payload';
import { itemName, type WorkItem } from './replay';
import type { ParentRef } from './store';
import { TimerService } from './timers';

interface TimerPayload {
  inst: Instance;
  gen: number;
  id: number;
  fireAt: string;
}

/** What open work needs from the rest of the engine. */
export interface WorkHooks {
  /** Queues an episode for an instance whose inbox received something. */
  kick(inst: Instance): void;
  /** Creates (or replaces the finished) instance `childId` as the child of `parent`. */
  createChild(
    name: string,
    childId: string,
    input: string | null,
    parent: ParentRef,
    existing: Instance | undefined,
  ): Promise<unknown>;
}

export class WorkRunner {
  private readonly activityLimiter: Limiter;
  private readonly timers: TimerService<TimerPayload>;
  private readonly httpTimers: TimerService<() => void>;
  private readonly unsubscribeClock: () => void;
  private credentialCache: TokenCredential | undefined;
  /** The Azure credential chain for ManagedIdentityTokenSource, created on first use. */
  private readonly credential = (): TokenCredential =>
    (this.credentialCache ??= new DefaultAzureCredential());

  constructor(
    private readonly hub: TaskHub,
    private readonly hooks: WorkHooks,
  ) {
    this.activityLimiter = new Limiter(hub.config.maxConcurrentActivityFunctions);
    const now = (): number => hub.now();
    this.timers = new TimerService(
      (p) => this.deliver(p.inst, p.gen, p.id, events.timerFired(now(), p.id, p.fireAt)),
      now,
    );
    this.httpTimers = new TimerService<() => void>((start) => start(), now);
    // devhost's clock moved forward: timers due before the new now fire promptly.
    this.unsubscribeClock = hub.clock.onMove(() => {
      this.timers.rearm();
      this.httpTimers.rearm();
    });
  }

  /** Stops firing timers (devhost is stopping). */
  stop(): void {
    this.unsubscribeClock();
    this.timers.stop();
    this.httpTimers.stop();
  }

  /** Starts the work an episode just recorded (`scheduled` is its scheduling event). */
  dispatch(inst: Instance, item: WorkItem, scheduled: HistoryEvent): void {
    switch (item.kind) {
      case 'activity':
        this.dispatchActivity(inst, item.id, scheduled.Name ?? itemName(item), scheduled.Input ?? null);
        break;
      case 'timer':
        this.armTimer(inst, item.id, scheduled.FireAt ?? new Date(this.hub.now()).toISOString());
        break;
      case 'callHttp':
        this.dispatchHttp(inst, item.id, scheduled);
        break;
      case 'subOrchestration':
        inst.open.set(item.id, { kind: 'subOrchestration' });
        this.startChild(
          inst,
          item.id,
          scheduled.Name ?? '',
          scheduled.InstanceId ?? '',
          scheduled.Input ?? null,
        );
        break;
      default:
        break;
    }
  }

  /** After a restart: every scheduled item without a completion runs again / is re-armed (§11). */
  resumeOpenWork(inst: Instance): void {
    const scheduled = new Map<number, HistoryEvent>();
    for (const e of inst.history) {
      if (isSchedulingEvent(e)) scheduled.set(e.EventId, e);
      const done = completedId(e);
      if (done !== undefined) scheduled.delete(done);
    }
    for (const [id, e] of scheduled) {
      switch (e.EventType) {
        case EventType.TaskScheduled:
          if (e.Name === httpActivityName) this.dispatchHttp(inst, id, e);
          else this.dispatchActivity(inst, id, e.Name ?? '', e.Input ?? null);
          break;
        case EventType.TimerCreated:
          this.armTimer(inst, id, e.FireAt ?? new Date(this.hub.now()).toISOString());
          break;
        case EventType.SubOrchestrationInstanceCreated:
          this.resumeChild(inst, id, e);
          break;
        default:
          break;
      }
    }
  }

  /** A finished child reports to its parent (SubOrchestrationInstanceCompleted / Failed, §7.6). */
  notifyParent(child: Instance): void {
    const ref = child.parent;
    if (!ref) return;
    const parent = this.hub.get(ref.instanceId);
    if (!parent || parent.executionId !== ref.executionId) return;
    const id = ref.taskScheduledId;
    const now = this.hub.now();
    let event: HistoryEvent;
    if (child.status === 'Completed') {
      event = events.subOrchestrationCompleted(now, id, child.output ?? 'null');
    } else if (child.status === 'Terminated') {
      // Production sends Details = null, which the JS parent cannot parse; an empty string keeps it catchable.
      event = events.subOrchestrationFailed(now, id, { reason: child.output ?? '', details: '' });
    } else {
      const f = child.failure ?? { message: child.output ?? '' };
      const failure: Failure = {
        reason: child.output ?? '',
        details: `Message: ${f.message}, StackTrace: ${f.stack ?? ''}`,
      };
      event = events.subOrchestrationFailed(now, id, failure);
    }
    this.deliver(parent, parent.gen, id, event);
  }

  private resumeChild(parent: Instance, id: number, e: HistoryEvent): void {
    parent.open.set(id, { kind: 'subOrchestration' });
    const childId = e.InstanceId ?? '';
    const child = this.hub.instances.get(childId);
    const linked =
      child?.parent?.instanceId === parent.id &&
      child.parent.executionId === parent.executionId &&
      child.parent.taskScheduledId === id;
    if (child && linked) {
      if (isTerminal(child.status)) this.notifyParent(child);
      return; // still running: it notifies the parent when it finishes
    }
    // The parent recorded the child but crashed before creating it.
    this.startChild(parent, id, e.Name ?? '', childId, e.Input ?? null);
  }

  private dispatchActivity(inst: Instance, id: number, name: string, scheduledInput: string | null): void {
    inst.open.set(id, { kind: 'activity' });
    const gen = inst.gen;
    const queued = performance.now();
    const { stats, config, opts } = this.hub;
    this.activityLimiter.run(async () => {
      if (!this.hub.isCurrent(inst, gen, id) || this.hub.stopping) return;
      stats.activities++;
      stats.activityQueueMs += performance.now() - queued;
      const fn = opts.registry.get(name);
      let event: HistoryEvent;
      let abort: string | undefined;
      if (!fn || fn.kind !== 'activity') {
        event = events.taskFailed(this.hub.now(), id, {
          reason: this.hub.unknownFunction(name, 'activity'),
          details: '',
        });
      } else {
        try {
          const input = decodeActivityInput(scheduledInput);
          const result = await opts.invoke(fn, { kind: 'activity', input }, { invocationId: randomUUID() });
          const text = encodeActivityResult(result);
          checkPayload(`The output of activity '${fn.name}'`, text, config.maxPayloadBytes);
          event = events.taskCompleted(this.hub.now(), id, text);
        } catch (err) {
          if (err instanceof PayloadTooLargeError) abort = err.message;
          event = events.taskFailed(this.hub.now(), id, activityFailure(fn.name, err));
        }
      }
      if (abort !== undefined) {
        if (this.hub.isCurrent(inst, gen, id)) {
          inst.open.delete(id);
          inst.inbox.push({ kind: 'abort', message: abort });
          this.hooks.kick(inst);
        }
        return;
      }
      this.deliver(inst, gen, id, event);
    });
  }

  /**
   * A durable HTTP call (`BuiltIn::HttpActivity`): a 202 poll waits for its timer's time (kept in the
   * scheduling event's tags, so a restart waits too), then the request runs under
   * `maxConcurrentActivityFunctions` like any activity.
   */
  private dispatchHttp(inst: Instance, id: number, scheduled: HistoryEvent): void {
    inst.open.set(id, { kind: 'activity' });
    const gen = inst.gen;
    const notBefore = Date.parse(scheduled.Tags?.[pollTag] ?? '');
    const start = (): void =>
      this.activityLimiter.run(() => this.runHttp(inst, gen, id, scheduled.Input ?? null));
    if (Number.isNaN(notBefore) || notBefore <= this.hub.now()) start();
    else this.httpTimers.schedule(notBefore, start);
  }

  private async runHttp(inst: Instance, gen: number, id: number, input: string | null): Promise<void> {
    if (!this.hub.isCurrent(inst, gen, id) || this.hub.stopping) return;
    this.hub.stats.activities++;
    let event: HistoryEvent;
    let abort: string | undefined;
    try {
      const [request] = JSON.parse(input ?? '[]') as [DurableHttpRequestWire];
      const response = await sendDurableHttp(request, this.credential, this.hub.config.httpTimeoutMs);
      const text = JSON.stringify(response);
      checkPayload(
        `The response of callHttp ${request.method} ${request.uri}`,
        text,
        this.hub.config.maxPayloadBytes,
      );
      event = events.taskCompleted(this.hub.now(), id, text);
    } catch (err) {
      if (err instanceof PayloadTooLargeError) abort = err.message;
      const message = err instanceof Error ? err.message : String(err);
      event = events.taskFailed(this.hub.now(), id, { reason: message, details: message });
    }
    if (abort !== undefined) {
      if (this.hub.isCurrent(inst, gen, id)) {
        inst.open.delete(id);
        inst.inbox.push({ kind: 'abort', message: abort });
        this.hooks.kick(inst);
      }
      return;
    }
    this.deliver(inst, gen, id, event);
  }

  private deliver(inst: Instance, gen: number, id: number, event: HistoryEvent): void {
    if (!this.hub.isCurrent(inst, gen, id)) return;
    inst.open.delete(id);
    inst.inbox.push({ kind: 'event', event });
    this.hooks.kick(inst);
  }

  private armTimer(inst: Instance, id: number, fireAt: string): void {
    const at = Date.parse(fireAt);
    const timer = this.timers.schedule(at, { inst, gen: inst.gen, id, fireAt });
    inst.open.set(id, { kind: 'timer', timer });
  }

  private startChild(
    parent: Instance,
    taskId: number,
    name: string,
    childId: string,
    input: string | null,
  ): void {
    this.hub.background(
      this.createChild(parent, taskId, name, childId, input),
      `starting sub-orchestration ${childId}`,
    );
  }

  private async createChild(
    parent: Instance,
    taskId: number,
    name: string,
    childId: string,
    input: string | null,
  ): Promise<void> {
    const gen = parent.gen;
    const ref: ParentRef = {
      instanceId: parent.id,
      executionId: parent.executionId,
      name: parent.name,
      taskScheduledId: taskId,
    };
    const existing = this.hub.get(childId);
    if (existing && !isTerminal(existing.status)) {
      this.deliver(
        parent,
        gen,
        taskId,
        events.subOrchestrationFailed(this.hub.now(), taskId, {
          reason: `An Orchestration instance with the status ${existing.status} already exists.`,
          details: `Message: An Orchestration instance with the status ${existing.status} already exists., StackTrace: `,
        }),
      );
      return;
    }
    try {
      await this.hooks.createChild(name, childId, input, ref, existing);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.deliver(
        parent,
        gen,
        taskId,
        events.subOrchestrationFailed(this.hub.now(), taskId, {
          reason: `Starting sub-orchestration '${childId}' failed: ${message}`,
          details: `Message: ${message}, StackTrace: `,
        }),
      );
    }
  }
}
