import { z } from 'zod';
import { approvalStatusSchema, candidateSchema, newApprovalInputSchema, stageSchema } from './approvalRecord';
import { defineActivity } from './activity';

/**
 * Names and contracts of the approval gate: the sub-orchestration, its activities and the external
 * event that wakes it. The event carries nothing the gate trusts: the gate re-reads Cosmos.
 */

export const APPROVAL_GATE_ORCHESTRATOR = 'approvalGate';
/** Raised on the gate instance (instance id = approval id) after a decision is stored in Cosmos. */
export const APPROVAL_DECISION_EVENT = 'ApprovalDecision';

/** The gate's input is what a new approval record is made from. */
export const approvalGateInputSchema = newApprovalInputSchema;
export type ApprovalGateInput = z.input<typeof approvalGateInputSchema>;

export const approvalGateOutputSchema = z.object({
  approvalId: z.string(),
  /** `withdrawn`: the run ended (canceled, superseded, reconciled) while the gate waited. */
  outcome: z.enum(['approved', 'rejected', 'expired', 'withdrawn']),
  reasons: z.array(z.string()),
  approvedBy: z.array(z.string()),
  rejectedBy: z.array(z.string()),
  escalated: z.boolean(),
  decidedAt: z.iso.datetime(),
  /** The candidate the outcome applies to: deploy only exactly this. */
  candidate: candidateSchema,
});
export type ApprovalGateOutput = z.infer<typeof approvalGateOutputSchema>;

const verdictSummarySchema = z.object({
  status: approvalStatusSchema,
  stage: stageSchema,
  stageStartedAt: z.iso.datetime(),
  deadline: z.iso.datetime(),
  remindedStages: z.array(stageSchema),
  reasons: z.array(z.string()).optional(),
  /** Comments are cut to 300 characters here (the full text stays in Cosmos and on the page). */
  decisions: z.array(
    z.object({
      reviewer: z.string(),
      /** Who decided on the reviewer's behalf (the policy counts each person once). */
      delegate: z.string().optional(),
      decision: z.enum(['approve', 'reject']),
      comment: z.string().max(300),
      decidedAt: z.iso.datetime(),
      modelDigest: z.string(),
      datasetDigest: z.string(),
      stage: stageSchema,
    }),
  ),
});
/** What the gate reads back from Cosmos: the record's moving parts and every decision (no evidence). */
export type ApprovalSnapshot = z.infer<typeof verdictSummarySchema>;
export const approvalSnapshotSchema = verdictSummarySchema;

const approvalRef = z.object({ runId: z.string().min(1), approvalId: z.string().min(1) });

/** Creates the record (deterministic id, created once), with `createdAt` from the orchestration clock. */
export const createApprovalActivity = defineActivity(
  'createApproval',
  approvalGateInputSchema.extend({ approvalId: z.string().min(1).max(200), createdAt: z.iso.datetime() }),
  approvalRef.extend({ created: z.boolean(), deadline: z.iso.datetime() }),
);

/** Sends one kind of message to a list of people, each with their own signed link where relevant. */
export const notifyReviewersActivity = defineActivity(
  'notifyReviewers',
  approvalRef.extend({
    kind: z.enum(['request', 'reminder', 'escalation', 'outcome']),
    recipients: z.array(z.string()).max(40),
  }),
  z.object({ sent: z.int().nonnegative(), skipped: z.int().nonnegative(), channel: z.string() }),
);

export const readApprovalActivity = defineActivity('readApproval', approvalRef, approvalSnapshotSchema);

/** Moves the record: escalate (new deadline from `at`), note a reminder, or close with the outcome. */
export const updateApprovalActivity = defineActivity(
  'updateApproval',
  approvalRef.extend({
    at: z.iso.datetime(),
    change: z.discriminatedUnion('action', [
      z.object({ action: z.literal('escalate') }),
      z.object({ action: z.literal('reminded') }),
      z.object({
        action: z.literal('close'),
        status: z.enum(['approved', 'rejected', 'expired']),
        reasons: z.array(z.string().max(2_500)).max(30),
      }),
    ]),
  }),
  approvalSnapshotSchema,
);
