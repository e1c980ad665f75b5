import type { ApprovalRecord, Candidate } from '../contracts/approvalRecord';
import { NonRetriableError } from '../errors';

/**
 * The approval a production move (or a rollout toward one) acts on: it exists, it is approved, and
 * it was given for exactly this candidate (name, version, model and dataset digests). Anything else
 * is refused, non-retriable: the one check deploy and rollout share, so they cannot drift apart.
 */
export function requireApprovedFor(
  approval: ApprovalRecord | undefined,
  ids: { runId: string; approvalId: string },
  c: Candidate,
): ApprovalRecord {
  if (!approval)
    throw new NonRetriableError(
      'approval_not_found',
      `approval ${ids.approvalId} of run ${ids.runId} not found`,
    );
  if (approval.status !== 'approved')
    throw new NonRetriableError(
      'not_approved',
      `approval ${ids.approvalId} is ${approval.status}, not approved`,
    );
  const a = approval.candidate;
  if (
    a.modelName !== c.modelName ||
    a.modelVersion !== c.modelVersion ||
    a.modelDigest !== c.modelDigest ||
    a.datasetDigest !== c.datasetDigest
  ) {
    throw new NonRetriableError(
      'candidate_changed',
      `the approval was given for ${a.modelName} v${a.modelVersion} (${a.modelDigest}), not for this candidate`,
    );
  }
  return approval;
}
