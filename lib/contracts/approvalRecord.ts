import { z } from 'zod';
import { approvalPolicySchema, reviewerSchema } from './approvalPolicy';

/**
 * The approval record and the reviewers' decisions, as stored in Cosmos DB (container `approvals`,
 * partition key `/runId`), and the candidate and evidence they carry. The candidate and the new
 * approval's input cross the Durable boundary, so these schemas live here with no I/O; the pure
 * helpers that build and move a record are lib/approval/record.ts.
 */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 digest in lower-case hex');
const short = (max: number) => z.string().max(max);
const num = z.number().finite();

/** What is being approved: one model artifact trained on one dataset. */
export const candidateSchema = z.object({
  modelName: z.string().min(1).max(128),
  modelVersion: z.int().positive(),
  modelDigest: sha256,
  datasetDigest: sha256,
  /**
   * The digest of the user's code that trained the model, when Sluice uploaded or ran that code
   * itself (local, an Azure ML code folder, a Databricks spark_python folder): shown to reviewers.
   * The decision binds the model and dataset digests; the model digest already pins what deploys.
   */
  codeDigest: sha256.optional(),
});
export type Candidate = z.infer<typeof candidateSchema>;

/**
 * The evidence shown to reviewers. Small summaries only (the full reports stay in Blob and are
 * linked from `reports`); bounded so the record and the activity input stay small.
 */
export const evidenceSchema = z.object({
  /** Production model the candidate was compared with, or null for a pipeline's first model. */
  production: z.object({ modelVersion: z.int().positive(), modelDigest: sha256 }).nullable().default(null),
  primaryMetric: short(64).optional(),
  verdict: z.object({ passed: z.boolean(), reasons: z.array(short(300)).max(20).default([]) }).optional(),
  metrics: z
    .array(
      z.object({
        name: short(64),
        candidate: num,
        production: num.nullable().default(null),
        /** Confidence interval of candidate − production (paired bootstrap), when computed. */
        ci: z.tuple([num, num]).nullable().default(null),
        ciLevel: z.number().gt(0).lt(1).optional(),
        /** Bootstrap intervals of the absolute values (at the report's confidence), when computed. */
        candidateCi: z.tuple([num, num]).optional(),
        productionCi: z.tuple([num, num]).optional(),
        /** The level of candidateCi and productionCi. */
        absoluteCiLevel: z.number().gt(0).lt(1).optional(),
        higherIsBetter: z.boolean().default(true),
      }),
    )
    .max(30)
    .default([]),
  slices: z
    .object({
      column: short(64),
      metric: short(64),
      rows: z
        .array(
          z.object({
            value: short(64),
            count: z.int().nonnegative(),
            candidate: num.nullable(),
            production: num.nullable().default(null),
            ok: z.boolean().default(true),
          }),
        )
        .max(40),
    })
    .optional(),
  validation: z
    .object({
      passed: z.boolean(),
      /** The report's one-line verdict when it passed with warnings (drifted columns, a breaking schema change). */
      warning: short(300).optional(),
      rows: z.int().nonnegative().optional(),
      checks: z.int().nonnegative().optional(),
      issues: z
        .array(
          z.object({ severity: z.enum(['error', 'warning', 'info']), code: short(64), message: short(300) }),
        )
        .max(20)
        .default([]),
    })
    .optional(),
  drift: z
    .object({
      /** The dataset verdict (weighted share of drifted columns, critical columns). */
      drifted: z.boolean(),
      summary: short(300).optional(),
      /** The drifted columns, the first 20 (absent on records written before it was kept). */
      columns: z.array(short(64)).max(20).optional(),
      /** How many columns drifted (more than `columns` lists when over 20). */
      driftedCount: z.int().nonnegative().optional(),
      /** How many columns were tested. */
      tested: z.int().nonnegative().optional(),
      features: z
        .array(
          z.object({
            feature: short(64),
            statistic: short(32),
            value: num,
            threshold: num.optional(),
            drifted: z.boolean(),
          }),
        )
        .max(40)
        .default([]),
    })
    .optional(),
  schemaDiff: z
    .array(
      z.object({
        change: z.enum([
          'added',
          'removed',
          'type_changed',
          'nullable_changed',
          'range_changed',
          'values_changed',
          'pattern_changed',
          'unique_changed',
          'target_changed',
          'task_changed',
          'other',
        ]),
        column: short(64),
        from: short(120).optional(),
        to: short(120).optional(),
        /** Data shaped like the new schema can surprise the production model. */
        breaking: z.boolean().optional(),
      }),
    )
    .max(40)
    .default([]),
  timeline: z
    .array(
      z.object({
        step: short(32),
        status: short(32),
        startedAt: z.iso.datetime().optional(),
        endedAt: z.iso.datetime().optional(),
      }),
    )
    .max(20)
    .default([]),
  /** Links to the full reports (Blob URIs or API paths), by name. */
  reports: z.record(short(64), short(600)).default({}),
});
export type Evidence = z.infer<typeof evidenceSchema>;
export type EvidenceInput = z.input<typeof evidenceSchema>;

/** `withdrawn`: the run ended (canceled, failed, stopped, superseded) before a decision closed it. */
export const approvalStatusSchema = z.enum(['pending', 'approved', 'rejected', 'expired', 'withdrawn']);
export type ApprovalStatus = z.infer<typeof approvalStatusSchema>;
export const stageSchema = z.enum(['primary', 'escalated']);

export const withdrawalSchema = z.object({
  /** The run's stop reason (`canceled`, `superseded`, `orchestration_terminated`, ...). */
  reason: z.string().min(1).max(64),
  /** A sentence for the reviewer, e.g. "This run was canceled on … by …; no decision can be recorded." */
  message: z.string().max(1_000),
  by: z.string().max(320).optional(),
  at: z.iso.datetime(),
});
export type Withdrawal = z.infer<typeof withdrawalSchema>;

/**
 * The one deployment an approval was used for. Set once, ETag-conditioned, by `deployModel` before
 * it moves the alias; a retry of the same deployment finds its own id, any other execution (a
 * restarted or duplicated run) is refused.
 */
export const consumptionSchema = z.object({
  deploymentId: z.string().min(1).max(200),
  runId: z.string().min(1).max(200),
  at: z.iso.datetime(),
});
export type Consumption = z.infer<typeof consumptionSchema>;

export const approvalRecordSchema = z.object({
  /** The approval id; also the approvalGate instance id that the decision POST wakes. */
  id: z.string().min(1).max(200),
  type: z.literal('approval'),
  runId: z.string().min(1).max(200),
  pipeline: z.string().min(1).max(128),
  /** Who started the run: may reject, never approve. */
  requestedBy: z.string().max(320),
  candidate: candidateSchema,
  policy: approvalPolicySchema,
  evidence: evidenceSchema,
  createdAt: z.iso.datetime(),
  stage: stageSchema,
  stageStartedAt: z.iso.datetime(),
  /** Deadline of the current stage. */
  deadline: z.iso.datetime(),
  remindedStages: z.array(stageSchema).default([]),
  status: approvalStatusSchema,
  reasons: z.array(z.string()).optional(),
  closedAt: z.iso.datetime().optional(),
  withdrawn: withdrawalSchema.optional(),
  consumedBy: consumptionSchema.optional(),
});
export type ApprovalRecord = z.infer<typeof approvalRecordSchema>;

export const decisionSchema = z.object({
  /** `<approvalId>:<reviewer>`: one decision per reviewer, enforced by Cosmos (409 on a second create). */
  id: z.string(),
  type: z.literal('decision'),
  runId: z.string(),
  approvalId: z.string(),
  reviewer: reviewerSchema,
  /** Set when the reviewer's delegate decided: the decision reads "<delegate> on behalf of <reviewer>". */
  delegate: reviewerSchema.optional(),
  decision: z.enum(['approve', 'reject']),
  comment: z.string().max(2000).default(''),
  decidedAt: z.iso.datetime(),
  stage: stageSchema,
  /** The candidate the reviewer saw; must equal the record's when the decision is made. */
  modelDigest: sha256,
  datasetDigest: sha256,
  /** Audit: which token (a hash, never the token), which key, and who was signed in. */
  tokenId: z.string().max(64),
  kid: z.string().max(64),
  principal: z
    .object({
      id: z.string().max(128).optional(),
      name: z.string().max(320).optional(),
      idp: z.string().max(64).optional(),
    })
    .optional(),
  client: z
    .object({ ip: z.string().max(64).optional(), userAgent: z.string().max(300).optional() })
    .optional(),
});
export type ApprovalDecision = z.infer<typeof decisionSchema>;

export const newApprovalInputSchema = z.object({
  runId: z.string().min(1).max(200),
  pipeline: z.string().min(1).max(128),
  requestedBy: z.string().max(320),
  candidate: candidateSchema,
  policy: approvalPolicySchema,
  evidence: evidenceSchema,
});
export type NewApprovalInput = z.input<typeof newApprovalInputSchema>;
