/**
 * The actions an orchestrator episode returns (durable-host-spec §5.3–§5.4). They arrive either as the
 * library's own action objects (direct invocation: `fireAt` is a Date) or JSON-parsed (worker-style
 * invocation: `fireAt` is an ISO string); everything here accepts both.
 */

export enum ActionType {
  CallActivity = 0,
  CallActivityWithRetry = 1,
  CallSubOrchestrator = 2,
  CallSubOrchestratorWithRetry = 3,
  ContinueAsNew = 4,
  CreateTimer = 5,
  WaitForExternalEvent = 6,
  CallEntity = 7,
  CallHttp = 8,
  SignalEntity = 9,
  WhenAny = 11,
  WhenAll = 12,
  LockEntities = 13,
  ReleaseEntities = 14,
}

export interface RetryOptionsWire {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
  retryTimeoutInMilliseconds?: number;
}

export interface Action {
  actionType: ActionType;
  functionName?: string;
  input?: unknown;
  retryOptions?: RetryOptionsWire;
  instanceId?: string;
  version?: string;
  fireAt?: string | Date;
  isCanceled?: boolean;
  externalEventName?: string;
  compoundActions?: Action[];
  operation?: string;
  httpRequest?: unknown;
  lockRequestId?: string;
  lockSet?: unknown[];
}

/** The `OrchestratorState` an episode returns (spec §5.3). */
export interface OrchestratorState {
  isDone: boolean;
  actions: Action[][];
  output?: unknown;
  error?: string;
  customStatus?: unknown;
  schemaVersion: number;
  failureDetails?: unknown;
}

export function isOrchestratorState(value: unknown): value is OrchestratorState {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { isDone?: unknown }).isDone === 'boolean' &&
    Array.isArray((value as { actions?: unknown }).actions)
  );
}

/**
 * Top-level actions of an episode. V2+ sends `[[...all actions...]]`; V1 one array per yield. Flattening
 * the outer level serves both (devhost advertises V4, so only the first form occurs in practice).
 */
export function topLevelActions(state: OrchestratorState): Action[] {
  const out: Action[] = [];
  for (const group of state.actions) if (Array.isArray(group)) out.push(...group);
  return out;
}

export function fireAtMs(action: Action): number {
  const at = action.fireAt;
  const ms = at instanceof Date ? at.getTime() : typeof at === 'string' ? Date.parse(at) : NaN;
  if (Number.isNaN(ms)) throw new Error(`CreateTimer action without a valid fireAt (${String(at)})`);
  return ms;
}

/** Same shape = same decision the orchestrator made earlier; used to validate the cumulative action list. */
export function sameAction(a: Action, b: Action): boolean {
  if (a.actionType !== b.actionType) return false;
  if ((a.functionName ?? '').toLowerCase() !== (b.functionName ?? '').toLowerCase()) return false;
  if (a.externalEventName !== b.externalEventName) return false;
  if ((a.instanceId ?? '') !== (b.instanceId ?? '')) return false;
  const ac = a.compoundActions ?? [];
  const bc = b.compoundActions ?? [];
  if (ac.length !== bc.length) return false;
  for (let i = 0; i < ac.length; i++) if (!sameAction(ac[i]!, bc[i]!)) return false;
  return true;
}
