import type { ApprovalSnapshot } from '../contracts/approval';
import type { ApprovalGateInput } from '../contracts/approval';
import type { ApprovalRecord } from '../contracts/approvalRecord';
import { approvalRecordBase } from './record';
import type { ApprovalState } from './record';

/**
 * The gate keeps the static part of the approval (policy, candidate, evidence) from its own input
 * and reads only the moving part back from Cosmos: a small activity output on every wake-up.
 */

const COMMENT_CUT = 300;

export function toSnapshot(state: ApprovalState): ApprovalSnapshot {
  const r = state.record;
  return {
    status: r.status,
    stage: r.stage,
    stageStartedAt: r.stageStartedAt,
    deadline: r.deadline,
    remindedStages: r.remindedStages,
    ...(r.reasons ? { reasons: r.reasons.map((x) => x.slice(0, 2_500)) } : {}),
    decisions: state.decisions.map((d) => ({
      reviewer: d.reviewer,
      ...(d.delegate ? { delegate: d.delegate } : {}),
      decision: d.decision,
      comment: d.comment.length > COMMENT_CUT ? `${d.comment.slice(0, COMMENT_CUT - 1)}…` : d.comment,
      decidedAt: d.decidedAt,
      modelDigest: d.modelDigest,
      datasetDigest: d.datasetDigest,
      stage: d.stage,
    })),
  };
}

/** Rebuilds the record the policy needs from the gate's input and a snapshot. Pure. */
export function recordFromSnapshot(
  input: ApprovalGateInput,
  approvalId: string,
  createdAt: string,
  s: ApprovalSnapshot,
): ApprovalRecord {
  return {
    ...approvalRecordBase(approvalId, input, createdAt),
    stage: s.stage,
    stageStartedAt: s.stageStartedAt,
    deadline: s.deadline,
    remindedStages: s.remindedStages,
    status: s.status,
    ...(s.reasons ? { reasons: s.reasons } : {}),
  };
}
