import { durationMs } from '../contracts/approvalPolicy';
import type {
  ApprovalDecision,
  ApprovalRecord,
  ApprovalStatus,
  NewApprovalInput,
  Withdrawal,
} from '../contracts/approvalRecord';
import { newApprovalInputSchema } from '../contracts/approvalRecord';

/**
 * Pure helpers that build and move the approval record (its schemas are
 * lib/contracts/approvalRecord.ts). Record and decisions live in the run's partition, so reading an
 * approval with all its decisions is one single-partition query; the store writes them with
 * conditions.
 */

/** How every withdrawal message ends (`withdrawalMessage`); a refused decision swaps it for its own. */
export const WITHDRAWAL_TAIL = 'no decision can be recorded.';

/** An approval record with every decision stored for it, as one read of its partition returns them. */
export interface ApprovalState {
  record: ApprovalRecord;
  decisions: ApprovalDecision[];
}

export function decisionId(approvalId: string, reviewer: string): string {
  return `${approvalId}:${reviewer.toLowerCase()}`;
}

/** The part of a record that never changes after creation: who asked, for what, under which policy. */
export function approvalRecordBase(
  approvalId: string,
  input: NewApprovalInput,
  createdAt: string,
): Pick<
  ApprovalRecord,
  'id' | 'type' | 'runId' | 'pipeline' | 'requestedBy' | 'candidate' | 'policy' | 'evidence' | 'createdAt'
> {
  const i = newApprovalInputSchema.parse(input);
  return {
    id: approvalId,
    type: 'approval',
    runId: i.runId,
    pipeline: i.pipeline,
    requestedBy: i.requestedBy,
    candidate: i.candidate,
    policy: i.policy,
    evidence: i.evidence,
    createdAt,
  };
}

/** A fresh, pending record. `now` is the orchestration's clock, so a replay builds the same one. */
export function newApprovalRecord(approvalId: string, input: NewApprovalInput, now: Date): ApprovalRecord {
  const at = now.toISOString();
  const base = approvalRecordBase(approvalId, input, at);
  return {
    ...base,
    stage: 'primary',
    stageStartedAt: at,
    deadline: new Date(now.getTime() + durationMs(base.policy.timeout)).toISOString(),
    remindedStages: [],
    status: 'pending',
  };
}

/** Moves a pending record to its escalation stage with a new deadline (no-op when already there). */
export function escalateRecord(record: ApprovalRecord, now: Date): ApprovalRecord {
  const esc = record.policy.onTimeout;
  if (record.status !== 'pending' || record.stage === 'escalated' || esc.action !== 'escalate') return record;
  return {
    ...record,
    stage: 'escalated',
    stageStartedAt: now.toISOString(),
    deadline: new Date(now.getTime() + durationMs(esc.timeout)).toISOString(),
  };
}

export function markReminded(record: ApprovalRecord): ApprovalRecord {
  return record.remindedStages.includes(record.stage)
    ? record
    : { ...record, remindedStages: [...record.remindedStages, record.stage] };
}

/** Closes a pending record with its final outcome (no-op when already closed). */
export function closeRecord(
  record: ApprovalRecord,
  status: Exclude<ApprovalStatus, 'pending' | 'withdrawn'>,
  reasons: string[],
  now: Date,
): ApprovalRecord {
  if (record.status !== 'pending') return record;
  return { ...record, status, reasons, closedAt: now.toISOString() };
}

/** Withdraws a pending record because its run ended without a decision (no-op when closed). */
export function withdrawRecord(record: ApprovalRecord, w: Withdrawal): ApprovalRecord {
  if (record.status !== 'pending') return record;
  return { ...record, status: 'withdrawn', reasons: [w.message], closedAt: w.at, withdrawn: w };
}
