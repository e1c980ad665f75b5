import { z } from 'zod';

/**
 * Documents of live-traffic monitoring, in the `traffic` container (partition `/modelName`) next to
 * the traffic records they are computed from: the model's latest monitoring document (id
 * `monitoring`), one document per joined label (`label-…`), one per retraining proposal
 * (`proposal-…`) and the proposal slot (`proposal-slot`) that makes the cool-down and the budget
 * one ETag-conditioned decision.
 */

export const MONITORING_DOC_ID = 'monitoring';
export const PROPOSAL_SLOT_ID = 'proposal-slot';

const metricSchema = z.object({
  value: z.number(),
  threshold: z.number(),
  drifted: z.boolean(),
});

export const featureDriftSchema = z.object({
  status: z.enum(['drifted', 'stable', 'notTestable']),
  reason: z.string().optional(),
  driftedShare: z.number(),
  driftedColumns: z.array(z.string()),
  criticalDrifted: z.array(z.string()),
  rule: z.string(),
  columns: z.array(
    z.object({
      column: z.string(),
      status: z.string(),
      reason: z.string().optional(),
      referenceCount: z.number(),
      currentCount: z.number(),
      metrics: z.record(z.string(), metricSchema),
    }),
  ),
});
export type FeatureDriftSummary = z.infer<typeof featureDriftSchema>;

export const liveMetricSchema = z.object({
  metric: z.enum(['accuracy', 'mae']),
  labels: z.int().min(0),
  value: z.number().nullable(),
  ci: z.object({ lower: z.number().nullable(), upper: z.number().nullable(), confidence: z.number() }),
  /** Labels received since this time count. */
  since: z.string(),
});
export type LiveMetric = z.infer<typeof liveMetricSchema>;

export const findingSchema = z.object({
  drifted: z.boolean(),
  /** Why (each crossed part of the policy), or why the window was not judged. */
  reasons: z.array(z.string()),
  proposal: z
    .object({ id: z.string().optional(), skipped: z.string().optional(), detail: z.string().optional() })
    .optional(),
});

export const monitoringDocSchema = z.object({
  id: z.literal(MONITORING_DOC_ID),
  kind: z.literal('monitoring'),
  modelName: z.string(),
  pipeline: z.string(),
  version: z.int().positive().nullable(),
  window: z.object({ from: z.string(), to: z.string() }),
  computedAt: z.string(),
  samples: z.object({ requests: z.int().min(0), rows: z.int().min(0) }),
  traffic: z.object({
    requests: z.int().min(0),
    errors: z.int().min(0),
    errorRate: z.number().nullable(),
    latencyP50Ms: z.number().nullable(),
    latencyP99Ms: z.number().nullable(),
  }),
  featureDrift: featureDriftSchema,
  predictionDrift: z.object({
    /** Smoothed PSI of the window's predictions against the holdout reference (docs/monitoring.md). */
    psi: z.number().nullable(),
    /** Why there is no PSI, or why it was not judged. */
    reason: z.string().optional(),
    /** Predicted rows counted (finite numbers, or classes). */
    rows: z.int().min(0).optional(),
    /** Rows the PSI is judged from (noise-aware row minimum); null: the policy sets no PSI limit. */
    minRows: z.int().min(0).nullable().optional(),
    /** Whether the PSI was judged against the policy's limit (enough rows). */
    judged: z.boolean().optional(),
    /** The reference could not be made: not tried again before this time. */
    retryAfter: z.string().optional(),
  }),
  live: liveMetricSchema.optional(),
  finding: findingSchema,
});
export type MonitoringDoc = z.infer<typeof monitoringDocSchema>;

export const labelDocSchema = z.object({
  id: z.string(),
  kind: z.literal('label'),
  modelName: z.string(),
  predictionId: z.string(),
  row: z.int().min(0),
  label: z.union([z.string(), z.number()]),
  prediction: z.union([z.string(), z.number()]),
  version: z.int().positive(),
  variant: z.string(),
  predictedAt: z.string(),
  receivedAt: z.string(),
});
export type LabelDoc = z.infer<typeof labelDocSchema>;

export const proposalStates = ['open', 'accepted', 'dismissed'] as const;

export const proposalDocSchema = z.object({
  id: z.string(),
  kind: z.literal('proposal'),
  modelName: z.string(),
  pipeline: z.string(),
  state: z.enum(proposalStates),
  createdAt: z.string(),
  /** The monitoring window and figures that crossed the policy. */
  evidence: z.object({
    window: z.object({ from: z.string(), to: z.string() }),
    version: z.int().positive().nullable(),
    reasons: z.array(z.string()),
    driftedColumns: z.array(z.string()),
    predictionPsi: z.number().nullable(),
    samples: z.int().min(0),
  }),
  reviewers: z.array(z.string()),
  notified: z.array(z.object({ to: z.string(), ref: z.string() })).default([]),
  decision: z
    .object({
      decision: z.enum(['accept', 'dismiss']),
      by: z.string(),
      at: z.string(),
      reason: z.string().optional(),
      runId: z.string().optional(),
    })
    .optional(),
});
export type ProposalDoc = z.infer<typeof proposalDocSchema>;

export const proposalSlotSchema = z.object({
  id: z.literal(PROPOSAL_SLOT_ID),
  kind: z.literal('proposal-slot'),
  modelName: z.string(),
  /** Creation times of the proposals inside the longest budget window, oldest first. */
  recent: z.array(z.object({ id: z.string(), at: z.string() })),
});
export type ProposalSlot = z.infer<typeof proposalSlotSchema>;
