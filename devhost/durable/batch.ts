/**
 * What one episode does with the inbox messages it took (durable-host-spec §7.5): control messages
 * (terminate, suspend, resume, abort) are applied in arrival order; events are delivered to the
 * orchestrator unless the instance is suspended, in which case they are held for later. Pure: it reads
 * the instance and returns the plan; the episode applies it.
 */
import { events, type HistoryEvent, type RuntimeStatus } from './history';
import { type InboxItem, type Instance, nextStamp } from './instance';

export interface BatchPlan {
  /** Inbox rows whose effect this episode records (held events are not among them). */
  consumed: number[];
  /** Events for the orchestrator. */
  deliver: HistoryEvent[];
  /** Events that arrived while suspended; they go back to the front of the inbox. */
  held: InboxItem[];
  /** ExecutionSuspended / ExecutionResumed events, recorded before anything else. */
  pre: HistoryEvent[];
  /** The runtime status after the control messages. */
  status: RuntimeStatus;
  terminateReason?: string;
  abort?: string;
  /** The timestamp of the control events. */
  stamp: number;
}

/** `now`: the engine's clock (devhost's movable clock); the wall clock when not given. */
export function planBatch(inst: Instance, batch: readonly InboxItem[], now: number = Date.now()): BatchPlan {
  const consumed: number[] = [];
  const deliver: HistoryEvent[] = [];
  const held: InboxItem[] = [];
  const pre: HistoryEvent[] = [];
  let status = inst.status;
  let terminateReason: string | undefined;
  let abort: string | undefined;
  const stamp = nextStamp(inst, now);
  for (const item of batch) {
    if ('seq' in item && item.seq !== undefined) consumed.push(item.seq);
    switch (item.kind) {
      case 'terminate':
        terminateReason ??= item.reason;
        break;
      case 'suspend':
        if (status !== 'Suspended') {
          status = 'Suspended';
          pre.push(events.executionSuspended(stamp, item.reason));
        }
        break;
      case 'resume':
        if (status === 'Suspended') {
          status = inst.history.length === 0 ? 'Pending' : 'Running';
          pre.push(events.executionResumed(stamp, item.reason));
          // Delivered now, so their inbox rows are consumed with this episode after all.
          for (const h of held.splice(0)) {
            if (h.kind !== 'event') continue;
            deliver.push(h.event);
            if (h.seq !== undefined) consumed.push(h.seq);
          }
        }
        break;
      case 'abort':
        abort ??= item.message;
        break;
      case 'event':
        if (status === 'Suspended') {
          held.push(item);
          const seq = consumed.indexOf(item.seq ?? -1);
          if (seq >= 0) consumed.splice(seq, 1);
        } else {
          deliver.push(item.event);
        }
        break;
    }
    if (terminateReason !== undefined) break;
  }
  return {
    consumed,
    deliver,
    held,
    pre,
    status,
    stamp,
    ...(terminateReason !== undefined ? { terminateReason } : {}),
    ...(abort !== undefined ? { abort } : {}),
  };
}
