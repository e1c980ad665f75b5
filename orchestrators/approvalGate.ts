import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import type { Verdict } from '../lib/approval/policy';
import { decide, eligibleReviewers } from '../lib/approval/policy';
import { recordFromSnapshot } from '../lib/approval/snapshot';
import type { ApprovalGateOutput, ApprovalSnapshot } from '../lib/contracts/approval';
import {
  APPROVAL_DECISION_EVENT,
  APPROVAL_GATE_ORCHESTRATOR,
  approvalGateInputSchema,
  createApprovalActivity,
  notifyReviewersActivity,
  readApprovalActivity,
  updateApprovalActivity,
} from '../lib/contracts/approval';
import { callActivity } from './support/call';

/**
 * The approval gate (a sub-orchestration; its instance id is the approval id, so the decision
 * endpoint can wake it). It creates the record, notifies the reviewers, then sleeps until a
 * decision event, the reminder time, a periodic re-check or the deadline, whichever comes first.
 * Whatever woke it, it re-reads the record from Cosmos and applies the policy to what is stored:
 * an early, duplicate or lost event cannot change the outcome, only when it is noticed.
 */

/** Re-checks per stage even without an event, so a lost event delays an outcome by at most this share. */
const RECHECKS_PER_STAGE = 8;
const MIN_RECHECK_MS = 60_000;

function nextWake(now: number, verdict: Verdict, snapshot: ApprovalSnapshot): number {
  const deadline = Date.parse(verdict.deadline);
  const stageMs = deadline - Date.parse(snapshot.stageStartedAt);
  const recheck = now + Math.max(MIN_RECHECK_MS, Math.floor(stageMs / RECHECKS_PER_STAGE));
  const remind = verdict.remindAt ? Date.parse(verdict.remindAt) : Infinity;
  return Math.max(now + 1, Math.min(deadline, remind, recheck));
}

function isEmail(s: string): boolean {
  return /^[^\s@]+@[^\s@]+$/.test(s);
}

export const approvalGate: OrchestrationHandler = function* (
  context: OrchestrationContext,
): Generator<Task, ApprovalGateOutput, unknown> {
  const input = approvalGateInputSchema.parse(context.df.getInput());
  const approvalId = context.df.instanceId;
  const ref = { runId: input.runId, approvalId };
  const log = (message: string) => {
    if (!context.df.isReplaying) context.log(`approvalGate ${approvalId}: ${message}`);
  };

  const createdAt = context.df.currentUtcDateTime.toISOString();
  yield* callActivity(context, createApprovalActivity, { ...input, approvalId, createdAt });
  let snapshot = yield* callActivity(context, readApprovalActivity, ref);
  // The record keeps its own creation time: a restarted gate must not move the deadline.
  const record = () => recordFromSnapshot(input, approvalId, createdAt, snapshot);
  if (snapshot.status === 'pending' && snapshot.stage === 'primary') {
    yield* callActivity(context, notifyReviewersActivity, {
      ...ref,
      kind: 'request',
      recipients: input.policy.reviewers,
    });
  }
  log(
    `waiting for ${input.policy.requiredApprovals} of ${input.policy.reviewers.length} reviewers until ${snapshot.deadline}`,
  );

  for (;;) {
    const now = context.df.currentUtcDateTime;
    const verdict = decide(record(), snapshot.decisions, now);
    context.df.setCustomStatus({
      approvalId,
      outcome: verdict.outcome,
      stage: snapshot.stage,
      deadline: verdict.deadline,
      approvedBy: verdict.approvedBy,
      waitingFor: verdict.waitingFor,
    });

    if (verdict.outcome === 'withdrawn') {
      // The run ended without a decision (canceled, superseded, reconciled): nothing to close or tell.
      log(`withdrawn: ${verdict.reasons.join(' ')}`);
      return {
        approvalId,
        outcome: 'withdrawn',
        reasons: verdict.reasons,
        approvedBy: verdict.approvedBy,
        rejectedBy: verdict.rejectedBy,
        escalated: snapshot.stage === 'escalated',
        decidedAt: now.toISOString(),
        candidate: input.candidate,
      };
    }

    if (verdict.outcome === 'approved' || verdict.outcome === 'rejected' || verdict.outcome === 'expired') {
      snapshot = yield* callActivity(context, updateApprovalActivity, {
        ...ref,
        at: now.toISOString(),
        change: { action: 'close', status: verdict.outcome, reasons: verdict.reasons },
      });
      // If the record was closed before (a restarted gate), report what is stored.
      const final = snapshot.status === 'pending' ? verdict.outcome : snapshot.status;
      const reasons = snapshot.reasons ?? verdict.reasons;
      const told = eligibleReviewers(record());
      if (isEmail(input.requestedBy) && !told.includes(input.requestedBy.toLowerCase()))
        told.push(input.requestedBy.toLowerCase());
      yield* callActivity(context, notifyReviewersActivity, { ...ref, kind: 'outcome', recipients: told });
      log(`${final}: ${reasons.join(' ')}`);
      return {
        approvalId,
        outcome: final,
        reasons,
        approvedBy: verdict.approvedBy,
        rejectedBy: verdict.rejectedBy,
        escalated: snapshot.stage === 'escalated',
        decidedAt: now.toISOString(),
        candidate: input.candidate,
      };
    }

    if (verdict.outcome === 'escalate') {
      snapshot = yield* callActivity(context, updateApprovalActivity, {
        ...ref,
        at: now.toISOString(),
        change: { action: 'escalate' },
      });
      const policy = input.policy;
      if (policy.onTimeout.action === 'escalate') {
        yield* callActivity(context, notifyReviewersActivity, {
          ...ref,
          kind: 'escalation',
          recipients: policy.onTimeout.reviewers,
        });
      }
      log(`escalated until ${snapshot.deadline}: ${verdict.reasons.join(' ')}`);
      continue;
    }

    if (verdict.remindAt && Date.parse(verdict.remindAt) <= now.getTime()) {
      if (verdict.waitingFor.length > 0) {
        yield* callActivity(context, notifyReviewersActivity, {
          ...ref,
          kind: 'reminder',
          recipients: verdict.waitingFor,
        });
      }
      snapshot = yield* callActivity(context, updateApprovalActivity, {
        ...ref,
        at: now.toISOString(),
        change: { action: 'reminded' },
      });
      log(`reminded ${verdict.waitingFor.join(', ')}`);
      continue;
    }

    const timer = context.df.createTimer(new Date(nextWake(now.getTime(), verdict, snapshot)));
    const event = context.df.waitForExternalEvent(APPROVAL_DECISION_EVENT);
    const winner = yield context.df.Task.any([event, timer]);
    if (winner === event) {
      // Only a wake-up: what counts is what the decision endpoint stored in Cosmos.
      timer.cancel();
    }
    snapshot = yield* callActivity(context, readApprovalActivity, ref);
  }
};

df.app.orchestration(APPROVAL_GATE_ORCHESTRATOR, approvalGate);
