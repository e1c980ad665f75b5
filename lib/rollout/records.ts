import { z } from 'zod';
import { guardEvidenceSchema, rolloutControlRecordSchema } from '../contracts/rollout';

/**
 * The live state of a model's rollout: one document per model (id `rollout`) in the registry's
 * container (`models`, partition `/modelName`), next to the head whose production alias it will
 * move. Predict reads it with one point read, cached briefly per instance (lib/serving/rollout.ts).
 * Only the startRollout activity creates it, after checking the approval: a candidate is served
 * only while its document says `active` or `paused`.
 */

export const ROLLOUT_DOC_ID = 'rollout';

/** The candidate's holdout predictions, summarized for PSI: decile bins, or predicted-class shares. */
export const predictionReferenceSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('bins'),
    /** Inner bin edges, increasing: bin i holds values in (edges[i-1], edges[i]]. */
    edges: z.array(z.number()).max(50),
    /** Share of holdout predictions per bin (edges.length + 1 entries). */
    expected: z.array(z.number()),
  }),
  z.object({
    kind: z.literal('classes'),
    /** Share of holdout rows predicted as each class. */
    expected: z.record(z.string(), z.number()),
  }),
]);
export type PredictionReference = z.infer<typeof predictionReferenceSchema>;

export const rolloutStates = ['active', 'paused', 'completed', 'rolled_back', 'aborted'] as const;
export const rolloutStateSchema = z.enum(rolloutStates);
export type RolloutState = z.infer<typeof rolloutStateSchema>;

/** The candidate may be served in these states only. */
export const LIVE_STATES: ReadonlySet<RolloutState> = new Set(['active', 'paused']);

export const rolloutDocSchema = z.object({
  id: z.literal(ROLLOUT_DOC_ID),
  kind: z.literal('rollout'),
  modelName: z.string(),
  /** The rollout orchestration's instance id. */
  rolloutId: z.string(),
  runId: z.string(),
  pipeline: z.string(),
  approvalId: z.string(),
  strategy: z.enum(['shadow', 'canary']),
  state: rolloutStateSchema,
  /** Current step (0-based); -1 before the first step is set. */
  step: z.int().min(-1),
  /** Canary: share of requests the candidate answers; shadow: share copied to it. 0 until the first step. */
  percent: z.number().min(0).max(100),
  candidate: z.object({ version: z.int().positive(), digest: z.string() }),
  productionVersion: z.int().positive().nullable(),
  reference: predictionReferenceSchema.optional(),
  holdoutRows: z.int().min(0),
  /**
   * The guards the current step waits on for evidence, with what they had and need when last noted
   * (rollouts at revision 2: its minimums are met, but the step does not pass until every guard
   * was judged). Cleared when the step changes.
   */
  waiting: z.array(guardEvidenceSchema).optional(),
  /**
   * When the current step times out unless it passes first (its `maxSeconds` from when it began,
   * plus time paused). Absent: no deadline, or paused (paused time does not count).
   */
  deadline: z.string().optional(),
  /** Regression agreement tolerance for shadow comparisons (guards.agreementTolerance). */
  agreementTolerance: z.number().min(0),
  startedAt: z.string(),
  updatedAt: z.string(),
  endedAt: z.string().optional(),
  reason: z.string().optional(),
  /**
   * The last operator request (pause, resume, promote, abort), numbered. The endpoint writes it
   * here, then wakes the orchestration with an event; the orchestration reads it back with its
   * guard check, so a lost or early event only delays it to the next check.
   */
  control: rolloutControlRecordSchema.optional(),
});
export type RolloutDoc = z.infer<typeof rolloutDocSchema>;

/** What predict needs of a live rollout (the document, minus bookkeeping). */
export type LiveRollout = Pick<
  RolloutDoc,
  | 'modelName'
  | 'rolloutId'
  | 'strategy'
  | 'state'
  | 'step'
  | 'percent'
  | 'candidate'
  | 'reference'
  | 'agreementTolerance'
  | 'endedAt'
>;
