import { z } from 'zod';
import { defineActivity } from './activity';
import { approvalGateInputSchema, approvalGateOutputSchema } from './approval';
import { defineOrchestration } from './orchestrations';

/**
 * The post-hoc review of an emergency override (docs/governance.md): an orchestration that runs
 * the ordinary approval gate for the overridden version (same record, page, reminders and
 * escalation), then writes the outcome on the version's override mark.
 */

export const OVERRIDE_REVIEW_ORCHESTRATOR = 'overrideReview';

/** The pseudo run id the review's approval record lives under: one per override (alias move). */
export function overrideReviewRunId(modelName: string, version: number, moveSeq: number): string {
  return `override-${modelName}-${version}-${moveSeq}`;
}

/** Whether `runId` is the pseudo run id of a review of an override of this version. */
export function isOverrideReviewRunId(runId: string, modelName: string, version: number): boolean {
  return runId.startsWith(`override-${modelName}-${version}-`);
}

export const overrideReviewInputSchema = z.object({
  modelName: z.string().min(1).max(128),
  version: z.int().positive(),
  gate: approvalGateInputSchema,
});

export const overrideReviewOrchestration = defineOrchestration(
  OVERRIDE_REVIEW_ORCHESTRATOR,
  overrideReviewInputSchema,
  approvalGateOutputSchema,
  (reviewRunId: string): string => `${reviewRunId}:review`,
);

/** Writes the review's outcome on the version: approved → reviewed, rejected → rejected. */
export const recordOverrideReviewActivity = defineActivity(
  'recordOverrideReview',
  z.object({
    modelName: z.string().min(1).max(128),
    version: z.int().positive(),
    approvalId: z.string().min(1).max(300),
    outcome: z.enum(['approved', 'rejected', 'expired', 'withdrawn']),
    by: z.array(z.string()).max(40),
    decidedAt: z.iso.datetime(),
  }),
  z.object({ review: z.enum(['required', 'reviewed', 'rejected']) }),
);
