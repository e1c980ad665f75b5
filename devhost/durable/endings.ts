/**
 * How an execution ends (durable-host-spec §7.4, §7.5): completed, failed, terminated, or continued as
 * new. Each ending is persisted first, then applied in memory: open work is dropped, messages that
 * arrived too late are released, and a child reports to its parent.
 */
import type { Action } from './actions';
import { EventType, events, type HistoryEvent, OrchestrationStatusCode, type RuntimeStatus } from './history';
import type { TaskHub } from './hub';
import {
  type InboxItem,
  type Instance,
  instanceRecord,
  newExecutionId,
  persistedSeqs,
  nextStamp,
  retire,
} from './instance';
import { checkPayload, toJsonText } from './payload';
import { EntityTooLargeError, historyRowKey, inboxRowKey } from './store';

export class Endings {
  constructor(
    private readonly hub: TaskHub,
    /** Tells the parent of a finished sub-orchestration (work.ts). */
    private readonly notifyParent: (child: Instance) => void,
  ) {}

  async completed(
    inst: Instance,
    added: HistoryEvent[],
    output: string,
    ts: number,
    customStatus: string | undefined,
    consumed: number[],
  ): Promise<void> {
    await this.hub.persist(inst, added, {
      status: 'Completed',
      lastUpdatedTime: ts,
      ...(customStatus !== undefined ? { customStatus } : {}),
      ...(consumed.length ? { consumed } : {}),
    });
    this.applyTerminal(inst, 'Completed', output, ts, customStatus, consumed);
  }

  async failed(
    inst: Instance,
    fresh: HistoryEvent[],
    consumed: number[],
    output: string,
    failure: { message: string; stack?: string },
    at?: number,
  ): Promise<void> {
    const ts = at ?? nextStamp(inst, this.hub.now());
    const hasStarted = fresh.some((e) => e.EventType === EventType.OrchestratorStarted);
    const added = [
      ...fresh,
      ...(hasStarted ? [events.orchestratorCompleted(ts)] : []),
      events.executionCompleted(ts, OrchestrationStatusCode.Failed, output),
    ];
    await this.hub.persist(inst, added, {
      status: 'Failed',
      lastUpdatedTime: ts,
      ...(inst.customStatus !== null ? { customStatus: inst.customStatus } : {}),
      ...(consumed.length ? { consumed } : {}),
    });
    inst.failure = failure;
    this.hub.log.warn(`durable: instance '${inst.id}' (${inst.name}) failed: ${output}`);
    this.applyTerminal(inst, 'Failed', output, ts, undefined, consumed);
  }

  async terminated(inst: Instance, reason: string, consumed: number[], batch: InboxItem[]): Promise<void> {
    const ts = nextStamp(inst, this.hub.now());
    const added = [
      events.executionTerminated(ts, reason),
      events.executionCompleted(ts, OrchestrationStatusCode.Terminated, reason),
    ];
    // Everything still queued for this instance is dropped with it.
    const dropped = [
      ...new Set(persistedSeqs([...batch, ...inst.inbox]).filter((seq) => !consumed.includes(seq))),
    ];
    inst.inbox = [];
    await this.hub.persist(inst, added, {
      status: 'Terminated',
      lastUpdatedTime: ts,
      consumed: [...consumed, ...dropped],
    });
    this.applyTerminal(inst, 'Terminated', reason, ts, undefined, [...consumed, ...dropped]);
  }

  async continueAsNew(
    inst: Instance,
    action: Action,
    consumed: number[],
    customStatus: string | undefined,
    ts: number,
    /** The episode's scheduling events: the entity signals among them are sent. */
    scheduling: readonly HistoryEvent[] = [],
  ): Promise<void> {
    const failMessage = (message: string) => `Orchestrator function '${inst.name}' failed: ${message}`;
    let input: string;
    try {
      // The library pre-stringifies string inputs and the extension stores the value as given, so a string
      // arrives double-encoded in the next generation (durable-host-spec §7.4), exactly as on Azure.
      input = toJsonText(action.input, 'The continueAsNew input');
      checkPayload('The continueAsNew input', input, this.hub.config.maxPayloadBytes);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return this.failed(inst, [], consumed, failMessage(message), { message });
    }
    const { store } = this.hub;
    // Inbox rows consumed by the old generation go first: the new instance record makes old history garbage.
    if (consumed.length > 0) await store.deleteRows(inst.id, consumed.map(inboxRowKey));
    const next = {
      gen: inst.gen + 1,
      executionId: newExecutionId(),
      input,
      status: 'Running' as RuntimeStatus,
      customStatus: customStatus ?? inst.customStatus,
      lastUpdatedTime: ts,
    };
    const sent = this.hub.entities?.messagesOf(inst, scheduling) ?? [];
    try {
      await store.writeInstance({ ...instanceRecord(inst), ...next }, sent);
    } catch (err) {
      if (!(err instanceof EntityTooLargeError)) throw err;
      return this.failed(inst, [], [], failMessage(err.message), { message: err.message });
    }
    if (sent.length > 0) this.hub.entities?.enqueue(sent);
    const oldGen = inst.gen;
    const oldRows = inst.rows;
    retire(inst);
    Object.assign(inst, next, { history: [], played: [], rows: 0, lastTs: ts });
    // A critical section does not outlive its execution.
    this.hub.entities?.released(inst.id);
    this.hub.background(
      store.deleteRows(
        inst.id,
        Array.from({ length: oldRows }, (_, i) => historyRowKey(oldGen, i)),
      ),
      'removing the previous generation',
    );
  }

  private applyTerminal(
    inst: Instance,
    status: RuntimeStatus,
    output: string,
    ts: number,
    customStatus: string | undefined,
    consumed: number[],
  ): void {
    inst.status = status;
    inst.output = output;
    inst.lastUpdatedTime = ts;
    inst.lastTs = Math.max(inst.lastTs, ts);
    if (customStatus !== undefined) inst.customStatus = customStatus;
    retire(inst);
    // Messages that arrived after the final episode started are dropped, as DTFx drops them.
    const late = persistedSeqs(inst.inbox);
    inst.inbox = [];
    this.hub.releaseInbox(inst, [...consumed, ...late]);
    // Entities the execution still held locked (it ended inside a critical section) are free again.
    this.hub.entities?.released(inst.id);
    this.notifyParent(inst);
  }
}
