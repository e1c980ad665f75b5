import { z } from 'zod';
import { ValidationError } from '../errors';
import type { Verdict } from './policy';
import { decide, eligibleReviewers } from './policy';
import type { ClientPrincipal } from './principal';
import type { ApprovalDecision, Candidate } from '../contracts/approvalRecord';
import { WITHDRAWAL_TAIL, decisionId } from './record';
import type { ApprovalStore } from './store';
import type { ApprovalState } from './record';
import type { ApprovalClaims } from './token';
import type { Keyring } from '../keyring';
import { tokenId, verifyApprovalToken } from './token';

/**
 * What the approval page and the decision endpoint do, without HTTP: verify the link, read the
 * approval, check every rule, record the decision. The Functions handlers only translate.
 */

/** A withdrawal's sentence, ending with what happened to the decision just sent. */
function refusedDecisionMessage(withdrawal: string): string {
  return withdrawal.endsWith(WITHDRAWAL_TAIL)
    ? `${withdrawal.slice(0, -WITHDRAWAL_TAIL.length)}your decision was not recorded.`
    : `${withdrawal} Your decision was not recorded.`;
}

export interface ApprovalServiceDeps {
  store: Pick<ApprovalStore, 'readState' | 'createDecision'>;
  keyring: Keyring;
  now: () => Date;
  requireSignin: boolean;
  /**
   * App Service Authentication is on (WEBSITE_AUTH_ENABLED): only then are the principal headers the
   * platform's. With APPROVAL_REQUIRE_SIGNIN but without it, no sign-in can be checked, so no
   * decision is recorded (`signin_unavailable`).
   */
  platformAuth?: boolean;
  /** Reviewer delegations; without it a delegate's link is refused (`delegation_not_active`). */
  delegations?: { active(reviewer: string, now: Date): Promise<{ to: string; until: string } | undefined> };
  /**
   * Confirms the candidate is still the artifact the registry holds (same version, same digest).
   * When it says no, decisions are refused with 409: the evidence no longer describes the model.
   */
  checkCandidate?: (candidate: Candidate) => Promise<boolean>;
}

export interface ApprovalView {
  claims: ApprovalClaims;
  state: ApprovalState;
  verdict: Verdict;
  now: Date;
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 digest in lower-case hex');
export const decisionBodySchema = z.object({
  decision: z.enum(['approve', 'reject'], { error: 'must be "approve" or "reject"' }),
  comment: z.string().max(2000).default(''),
  modelDigest: sha256,
  datasetDigest: sha256,
});
export type DecisionBody = z.input<typeof decisionBodySchema>;

function fail(status: number, code: string, message: string, field?: string): ValidationError {
  return new ValidationError(code, message, { status, ...(field ? { field } : {}) });
}

/** Verifies the link and reads the approval. Never writes: GET, HEAD and scanners land here. */
export async function loadApproval(deps: ApprovalServiceDeps, token: string): Promise<ApprovalView> {
  const now = deps.now();
  const claims = verifyApprovalToken(deps.keyring, token, now);
  const state = await deps.store.readState(claims.runId, claims.approvalId);
  if (!state) throw fail(404, 'approval_not_found', 'This approval does not exist (any more).');
  return { claims, state, now, verdict: decide(state.record, state.decisions, now) };
}

/**
 * With APPROVAL_REQUIRE_SIGNIN, a signed link decides only for the person it was sent to: the
 * platform's principal (App Service Authentication, `platformAuth`) must be `acting`. Without
 * platform authentication nothing can be checked, so nothing is decided (`signin_unavailable`).
 * Approval decisions and retraining proposals (lib/monitoring/proposals.ts) both check here.
 */
export function requireSignedInAs(
  deps: Pick<ApprovalServiceDeps, 'requireSignin' | 'platformAuth'>,
  principal: ClientPrincipal | undefined,
  acting: string,
): void {
  if (!deps.requireSignin) return;
  if (!deps.platformAuth) {
    throw fail(
      403,
      'signin_unavailable',
      'APPROVAL_REQUIRE_SIGNIN is on but App Service Authentication is not (WEBSITE_AUTH_ENABLED is not true), so no sign-in can be checked and no decision is recorded. Ask an operator to turn on App Service Authentication.',
    );
  }
  if (!principal) throw fail(401, 'signin_required', `Sign in as ${acting} to record a decision.`);
  if (!principal.identities.includes(acting)) {
    throw fail(
      403,
      'principal_mismatch',
      `This link is for ${acting}; you are signed in as ${principal.name ?? 'someone else'}.`,
    );
  }
}

export interface DecisionContext {
  principal?: ClientPrincipal | undefined;
  client?: { ip?: string; userAgent?: string } | undefined;
}

/**
 * Records one decision after checking, in order: the link (401/410), the body (400), the approval
 * (404), sign-in (401/403), reviewer (403), an earlier decision (409), the deadline (410), the
 * requester rule (403), the candidate (409). The write is a conditional create, so of two
 * concurrent decisions by one reviewer exactly one is stored and the other gets 409.
 */
export async function submitDecision(
  deps: ApprovalServiceDeps,
  token: string,
  body: unknown,
  ctx: DecisionContext = {},
): Promise<{ decision: ApprovalDecision; view: ApprovalView }> {
  const view = await loadApproval(deps, token);
  const { claims, state, now } = view;
  const parsed = decisionBodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') || 'decision';
    throw fail(400, 'invalid_decision', `${field}: ${issue?.message ?? 'invalid'}`, field);
  }
  const input = parsed.data;
  const { record } = state;
  const reviewer = claims.reviewer;
  const delegate = claims.delegate;
  /** Who is deciding: the reviewer, or their delegate acting on their behalf. */
  const acting = delegate ?? reviewer;

  requireSignedInAs(deps, ctx.principal, acting);
  if (delegate) {
    const active = await deps.delegations?.active(reviewer, now);
    if (active?.to !== delegate) {
      throw fail(
        403,
        'delegation_not_active',
        `${delegate} no longer acts for ${reviewer}: the delegation ended or expired, so this link cannot record a decision.`,
      );
    }
  }
  if (!eligibleReviewers(record).includes(reviewer)) {
    throw fail(403, 'not_a_reviewer', `${reviewer} is not a reviewer of this approval.`);
  }
  const earlier = state.decisions.find((d) => d.reviewer === reviewer);
  if (earlier) {
    const by = earlier.delegate ?? earlier.reviewer;
    if (by !== acting) {
      throw fail(
        409,
        'decision_exists',
        `${by} already ${earlier.decision === 'approve' ? 'approved' : 'rejected'}${earlier.delegate ? ` on behalf of ${reviewer}` : ''} at ${earlier.decidedAt}; a decision cannot be changed.`,
        'decision',
      );
    }
    throw fail(
      409,
      'decision_exists',
      `You already ${earlier.decision === 'approve' ? 'approved' : 'rejected'} at ${earlier.decidedAt}; a decision cannot be changed.`,
      'decision',
    );
  }
  // One person, one vote: someone who decided as themselves cannot decide again for a delegator,
  // nor the other way round.
  const ownVote = state.decisions.find((d) => (d.delegate ?? d.reviewer) === acting);
  if (ownVote) {
    throw fail(
      409,
      'already_decided_as_other',
      `${acting} already decided on this approval${ownVote.delegate ? ` on behalf of ${ownVote.reviewer}` : ''}; one person counts once toward the quorum.`,
      'decision',
    );
  }
  if (record.status !== 'pending') {
    throw fail(
      409,
      'approval_closed',
      record.status === 'withdrawn' && record.withdrawn
        ? refusedDecisionMessage(record.withdrawn.message)
        : `This approval is already ${record.status}; no more decisions are taken.`,
    );
  }
  if (
    view.verdict.outcome === 'expired' ||
    view.verdict.outcome === 'escalate' ||
    now.getTime() >= Date.parse(record.deadline)
  ) {
    throw fail(410, 'approval_expired', `The deadline for this approval (${record.deadline}) has passed.`);
  }
  if (input.decision === 'approve' && delegate && delegate === record.requestedBy.trim().toLowerCase()) {
    throw fail(
      403,
      'requester_cannot_approve',
      `You started this run, so you may not approve it, not even on behalf of ${reviewer}. Another reviewer must.`,
      'decision',
    );
  }
  if (input.decision === 'approve' && reviewer === record.requestedBy.trim().toLowerCase()) {
    throw fail(
      403,
      'requester_cannot_approve',
      'You started this run, so you may not approve it. Another reviewer must.',
      'decision',
    );
  }
  if (
    input.modelDigest !== record.candidate.modelDigest ||
    input.datasetDigest !== record.candidate.datasetDigest
  ) {
    throw fail(
      409,
      'candidate_changed',
      'The candidate changed since this page was shown: reload the page and review the new evidence.',
      'modelDigest',
    );
  }
  if (deps.checkCandidate && !(await deps.checkCandidate(record.candidate))) {
    throw fail(
      409,
      'candidate_changed',
      `The registry no longer holds ${record.candidate.modelName} v${record.candidate.modelVersion} with the approved digest.`,
      'modelDigest',
    );
  }
  const comment = input.comment.trim();
  if (input.decision === 'reject' && comment.length === 0) {
    throw fail(400, 'comment_required', 'Say why you reject: the requester needs the reason.', 'comment');
  }

  const decision: ApprovalDecision = {
    id: decisionId(record.id, reviewer),
    type: 'decision',
    runId: record.runId,
    approvalId: record.id,
    reviewer,
    ...(delegate ? { delegate } : {}),
    decision: input.decision,
    comment,
    decidedAt: now.toISOString(),
    stage: record.stage,
    modelDigest: input.modelDigest,
    datasetDigest: input.datasetDigest,
    tokenId: tokenId(token),
    kid: claims.kid,
    ...(ctx.principal
      ? {
          principal: {
            ...(ctx.principal.id ? { id: ctx.principal.id.slice(0, 128) } : {}),
            ...(ctx.principal.name ? { name: ctx.principal.name.slice(0, 320) } : {}),
            ...(ctx.principal.idp ? { idp: ctx.principal.idp.slice(0, 64) } : {}),
          },
        }
      : {}),
    ...(ctx.client
      ? {
          client: {
            ...(ctx.client.ip ? { ip: ctx.client.ip.slice(0, 64) } : {}),
            ...(ctx.client.userAgent ? { userAgent: ctx.client.userAgent.slice(0, 300) } : {}),
          },
        }
      : {}),
  };
  const stored = await deps.store.createDecision(decision);
  const decisions = [...state.decisions, stored];
  return {
    decision: stored,
    view: { ...view, state: { record, decisions }, verdict: decide(record, decisions, now) },
  };
}
