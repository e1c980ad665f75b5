/**
 * Durable history events exactly as the orchestration trigger payload carries them (durable-host-spec
 * §5.2): PascalCase fields, numeric `EventType`, ISO `Timestamp`. These objects are what devhost stores
 * (append-only) and what the real `durable-functions` library replays.
 */

export enum EventType {
  ExecutionStarted = 0,
  ExecutionCompleted = 1,
  ExecutionTerminated = 3,
  TaskScheduled = 4,
  TaskCompleted = 5,
  TaskFailed = 6,
  SubOrchestrationInstanceCreated = 7,
  SubOrchestrationInstanceCompleted = 8,
  SubOrchestrationInstanceFailed = 9,
  TimerCreated = 10,
  TimerFired = 11,
  OrchestratorStarted = 12,
  OrchestratorCompleted = 13,
  EventSent = 14,
  EventRaised = 15,
  ContinueAsNew = 16,
  GenericEvent = 17,
  ExecutionSuspended = 19,
  ExecutionResumed = 20,
}

/** DTFx `OrchestrationStatus` numbers, used in `ExecutionCompleted.OrchestrationStatus`. */
export enum OrchestrationStatusCode {
  Running = 0,
  Completed = 1,
  ContinuedAsNew = 2,
  Failed = 3,
  Canceled = 4,
  Terminated = 5,
  Pending = 6,
  Suspended = 7,
}

export type RuntimeStatus =
  'Pending' | 'Running' | 'Completed' | 'ContinuedAsNew' | 'Failed' | 'Canceled' | 'Terminated' | 'Suspended';

export const terminalStatuses: ReadonlySet<RuntimeStatus> = new Set([
  'Completed',
  'Failed',
  'Terminated',
  'Canceled',
]);

export function isTerminal(status: RuntimeStatus): boolean {
  return terminalStatuses.has(status);
}

/** Structured failure (DTFx `FailureDetails`); the SDK prefers it over Reason/Details when present. */
export interface FailureDetails {
  ErrorType: string;
  ErrorMessage: string;
  StackTrace?: string;
  IsNonRetriable: boolean;
  Properties?: Record<string, unknown>;
  InnerFailure?: FailureDetails;
}

export interface OrchestrationInstanceRef {
  InstanceId: string;
  ExecutionId: string;
}

export interface ParentInstanceInfo {
  Name: string;
  OrchestrationInstance: OrchestrationInstanceRef;
  TaskScheduleId: number;
}

/** One history event. Only the fields of its `EventType` are set (see durable-host-spec §5.2). */
export interface HistoryEvent {
  EventType: EventType;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: string;
  Name?: string;
  Version?: string;
  /** JSON text (or, for ExecutionTerminated, the raw reason). */
  Input?: string | null;
  Result?: string | null;
  TaskScheduledId?: number;
  TimerId?: number;
  FireAt?: string;
  Reason?: string;
  Details?: string;
  FailureDetails?: FailureDetails;
  InstanceId?: string;
  OrchestrationStatus?: OrchestrationStatusCode;
  OrchestrationInstance?: OrchestrationInstanceRef;
  ParentInstance?: ParentInstanceInfo | null;
  /** TaskScheduled tags (the library ignores them); devhost keeps a durable-HTTP poll's start time here. */
  Tags?: Record<string, string>;
}

export const isoTime = (ms: number): string => new Date(ms).toISOString();

function base(type: EventType, ts: number, eventId = -1): HistoryEvent {
  return { EventType: type, EventId: eventId, IsPlayed: false, Timestamp: isoTime(ts) };
}

export const events = {
  orchestratorStarted: (ts: number): HistoryEvent => base(EventType.OrchestratorStarted, ts),
  orchestratorCompleted: (ts: number): HistoryEvent => base(EventType.OrchestratorCompleted, ts),
  executionStarted: (
    ts: number,
    o: {
      name: string;
      input: string | null;
      instanceId: string;
      executionId: string;
      version?: string;
      parent?: ParentInstanceInfo;
    },
  ): HistoryEvent => ({
    ...base(EventType.ExecutionStarted, ts),
    Name: o.name,
    Version: o.version ?? '',
    Input: o.input,
    OrchestrationInstance: { InstanceId: o.instanceId, ExecutionId: o.executionId },
    ParentInstance: o.parent ?? null,
  }),
  executionCompleted: (ts: number, status: OrchestrationStatusCode, result: string | null): HistoryEvent => ({
    ...base(EventType.ExecutionCompleted, ts),
    OrchestrationStatus: status,
    Result: result,
  }),
  executionTerminated: (ts: number, reason: string): HistoryEvent => ({
    ...base(EventType.ExecutionTerminated, ts),
    Input: reason,
  }),
  executionSuspended: (ts: number, reason: string): HistoryEvent => ({
    ...base(EventType.ExecutionSuspended, ts),
    Reason: reason,
  }),
  executionResumed: (ts: number, reason: string): HistoryEvent => ({
    ...base(EventType.ExecutionResumed, ts),
    Reason: reason,
  }),
  taskScheduled: (ts: number, id: number, name: string, inputJson: string): HistoryEvent => ({
    ...base(EventType.TaskScheduled, ts, id),
    Name: name,
    Version: '',
    Input: inputJson,
  }),
  taskCompleted: (ts: number, taskId: number, result: string): HistoryEvent => ({
    ...base(EventType.TaskCompleted, ts),
    TaskScheduledId: taskId,
    Result: result,
  }),
  taskFailed: (ts: number, taskId: number, f: Failure): HistoryEvent => ({
    ...base(EventType.TaskFailed, ts),
    TaskScheduledId: taskId,
    Reason: f.reason,
    Details: f.details,
    ...(f.failureDetails ? { FailureDetails: f.failureDetails } : {}),
  }),
  subOrchestrationCreated: (
    ts: number,
    id: number,
    name: string,
    instanceId: string,
    inputJson: string | null,
  ): HistoryEvent => ({
    ...base(EventType.SubOrchestrationInstanceCreated, ts, id),
    Name: name,
    Version: '',
    InstanceId: instanceId,
    Input: inputJson,
  }),
  subOrchestrationCompleted: (ts: number, taskId: number, result: string): HistoryEvent => ({
    ...base(EventType.SubOrchestrationInstanceCompleted, ts),
    TaskScheduledId: taskId,
    Result: result,
  }),
  subOrchestrationFailed: (ts: number, taskId: number, f: Failure): HistoryEvent => ({
    ...base(EventType.SubOrchestrationInstanceFailed, ts),
    TaskScheduledId: taskId,
    Reason: f.reason,
    Details: f.details,
    ...(f.failureDetails ? { FailureDetails: f.failureDetails } : {}),
  }),
  timerCreated: (ts: number, id: number, fireAt: number): HistoryEvent => ({
    ...base(EventType.TimerCreated, ts, id),
    FireAt: isoTime(fireAt),
  }),
  timerFired: (ts: number, timerId: number, fireAt: string): HistoryEvent => ({
    ...base(EventType.TimerFired, ts),
    TimerId: timerId,
    FireAt: fireAt,
  }),
  /** A message to a Durable entity (`signalEntity` / `callEntity`): the request travels in `Input`. */
  eventSent: (
    ts: number,
    id: number,
    target: string,
    operation: string,
    requestJson: string,
  ): HistoryEvent => ({
    ...base(EventType.EventSent, ts, id),
    InstanceId: target,
    Name: operation,
    Input: requestJson,
  }),
  eventRaised: (ts: number, name: string, inputJson: string | null): HistoryEvent => ({
    ...base(EventType.EventRaised, ts),
    Name: name,
    Input: inputJson,
  }),
};

/** The failure of an activity or sub-orchestration as recorded in TaskFailed / SubOrchestrationInstanceFailed. */
export interface Failure {
  reason: string;
  /** Always a string: the SDK cannot parse a failure without both Reason and Details (spec §6.3). */
  details: string;
  failureDetails?: FailureDetails;
}

/** Scheduling events carry the sequence id in `EventId` (spec §5.2 "Correlation"). */
export function isSchedulingEvent(e: HistoryEvent): boolean {
  return (
    e.EventType === EventType.TaskScheduled ||
    e.EventType === EventType.TimerCreated ||
    e.EventType === EventType.SubOrchestrationInstanceCreated ||
    e.EventType === EventType.EventSent
  );
}

/** The sequence id a completion event answers, or undefined for events that complete nothing by id. */
export function completedId(e: HistoryEvent): number | undefined {
  switch (e.EventType) {
    case EventType.TaskCompleted:
    case EventType.TaskFailed:
    case EventType.SubOrchestrationInstanceCompleted:
    case EventType.SubOrchestrationInstanceFailed:
      return e.TaskScheduledId;
    case EventType.TimerFired:
      return e.TimerId;
    default:
      return undefined;
  }
}

/** Parses JSON text leniently, as the HTTP API does for input/output/customStatus (non-JSON ⇒ raw string). */
export function parseJsonText(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The `historyEvents` array of the status API (spec §9.1): event names instead of numbers, scheduling
 * events folded into their completions, replay bookkeeping removed.
 */
export function toStatusHistory(
  history: readonly HistoryEvent[],
  o: { showHistoryOutput: boolean; showInput: boolean },
): Record<string, unknown>[] {
  const scheduled = new Map<number, HistoryEvent>();
  const out: Record<string, unknown>[] = [];
  for (const e of history) {
    switch (e.EventType) {
      case EventType.OrchestratorStarted:
      case EventType.OrchestratorCompleted:
        continue;
      case EventType.TaskScheduled:
      case EventType.SubOrchestrationInstanceCreated:
        scheduled.set(e.EventId, e);
        continue;
    }
    const item: Record<string, unknown> = { EventType: EventType[e.EventType] ?? String(e.EventType) };
    item.Timestamp = e.Timestamp;
    switch (e.EventType) {
      case EventType.ExecutionStarted:
        item.FunctionName = e.Name;
        if (o.showInput) item.Input = e.Input;
        break;
      case EventType.ExecutionCompleted:
        item.OrchestrationStatus = OrchestrationStatusCode[e.OrchestrationStatus ?? 0];
        if (o.showHistoryOutput) item.Result = parseJsonText(e.Result);
        if (e.FailureDetails) item.FailureDetails = e.FailureDetails;
        break;
      case EventType.ExecutionTerminated:
        if (o.showInput) item.Input = e.Input;
        break;
      case EventType.TaskCompleted:
      case EventType.TaskFailed:
      case EventType.SubOrchestrationInstanceCompleted:
      case EventType.SubOrchestrationInstanceFailed: {
        const s = scheduled.get(e.TaskScheduledId ?? -1);
        if (s) {
          item.ScheduledTime = s.Timestamp;
          item.FunctionName = s.Name;
          if (s.InstanceId !== undefined) item.InstanceId = s.InstanceId;
          if (o.showInput) item.Input = s.Input;
        }
        if (e.Result !== undefined && o.showHistoryOutput) item.Result = parseJsonText(e.Result);
        if (e.Reason !== undefined) item.Reason = e.Reason;
        if (e.Details !== undefined) item.Details = e.Details;
        if (e.FailureDetails) item.FailureDetails = e.FailureDetails;
        break;
      }
      case EventType.TimerCreated:
      case EventType.TimerFired:
        item.FireAt = e.FireAt;
        break;
      case EventType.EventRaised:
        item.Name = e.Name;
        if (o.showInput) item.Input = e.Input;
        break;
      case EventType.ExecutionSuspended:
      case EventType.ExecutionResumed:
        item.Reason = e.Reason;
        break;
      default:
        break;
    }
    out.push(item);
  }
  return out;
}
