import { z } from 'zod';
import { defineActivity } from './activity';
import { candidateSchema } from './approvalRecord';
import { deploymentWindowSchema } from './deploymentWindow';
import { deployModelActivity } from './deploy';
import { defineOrchestration } from './orchestrations';

/**
 * Staged rollout (docs/rollout.md): the pipeline's `deployment` section, the rollout orchestration's
 * contracts and its activities. Everything here crosses the Durable boundary or is pinned with the
 * pipeline version, so it is zod only.
 */

/** One stage of a rollout: the candidate's share of traffic, held for at least this long and this many requests. */
export const rolloutStepSchema = z
  .object({
    /** Canary: share of predict requests the candidate answers. Shadow: share of requests copied to it. */
    percent: z.number().gt(0, 'must be more than 0').max(100, 'must be at most 100'),
    /** Candidate requests seen in the step before it may advance (guards are judged all along). */
    minRequests: z.int().min(0).max(100_000_000).default(100),
    /** Seconds the step lasts at least (a durable timer). */
    minSeconds: z
      .number()
      .min(0)
      .max(30 * 24 * 3600)
      .default(300),
    /**
     * Seconds the step may last at most (paused time not counted): a step that has not passed by
     * then times out, and the rollout rolls back (docs/rollout.md, A step's deadline). At least
     * `minSeconds`. Absent: the section's `maxStepSeconds`, else no deadline.
     */
    maxSeconds: z
      .number()
      .gt(0, 'must be more than 0')
      .max(30 * 24 * 3600)
      .optional(),
  })
  .strict();
export type RolloutStep = z.output<typeof rolloutStepSchema>;

/** What the candidate's live traffic must show; a breach rolls the rollout back at once. */
export const rolloutGuardsSchema = z
  .object({
    /** Failed candidate requests / candidate requests. */
    maxErrorRate: z.number().min(0).max(1).default(0.02),
    /** p99 of the candidate's scoring latency (bucketed: the bucket's upper edge). */
    maxLatencyP99Ms: z.number().positive().default(250),
    /** PSI of the candidate's live predictions against its own holdout predictions from evaluation. */
    maxPredictionPsi: z.number().positive().default(0.25),
    /** Shadow only: share of rows where the candidate agrees with production. */
    minShadowAgreement: z.number().min(0).max(1).default(0.8),
    /**
     * Regression agreement: |candidate − production| ≤ this × max(|production|, 1). Classification
     * agrees when the predicted class is the same.
     */
    agreementTolerance: z.number().min(0).default(0.1),
    /** Guards are judged once the step has at least this many candidate requests (or compared rows). */
    minSamples: z.int().min(1).default(20),
  })
  .strict();
export type RolloutGuards = z.output<typeof rolloutGuardsSchema>;

export const DEFAULT_CANARY_STEPS: readonly RolloutStep[] = [5, 25, 50, 100].map((percent) => ({
  percent,
  minRequests: 100,
  minSeconds: 300,
}));
export const DEFAULT_SHADOW_STEPS: readonly RolloutStep[] = [
  { percent: 100, minRequests: 200, minSeconds: 600 },
];

/**
 * A pipeline's `deployment` section. `direct` (the default) moves the production alias at approval,
 * as always; `shadow` and `canary` start a rollout that moves it only when every step passed.
 */
export const deploymentSpecSchema = z
  .object({
    strategy: z.enum(['direct', 'shadow', 'canary']).default('direct'),
    steps: z.array(rolloutStepSchema).min(1, 'needs at least one step').max(20).optional(),
    guards: rolloutGuardsSchema.prefault({}),
    /** How often guards are checked during a step (a durable timer each time). */
    checkEverySeconds: z.number().min(1).max(3600).default(30),
    /**
     * The deadline of every step that names none (`steps[].maxSeconds`): a step that has not passed
     * this long after it began times out and the rollout rolls back. Absent: no deadline.
     */
    maxStepSeconds: z
      .number()
      .gt(0, 'must be more than 0')
      .max(30 * 24 * 3600)
      .optional(),
    /** When a deployment may start, whatever the strategy (docs/governance.md). */
    window: deploymentWindowSchema.optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.strategy === 'direct' && d.steps) {
      ctx.addIssue({
        code: 'custom',
        path: ['steps'],
        message: 'steps apply to the shadow and canary strategies only; direct moves production at once',
      });
    }
    if (d.strategy === 'direct' && d.maxStepSeconds !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxStepSeconds'],
        message: 'maxStepSeconds applies to the shadow and canary strategies only; direct has no steps',
      });
    }
    d.steps?.forEach((s, i) => {
      const before = d.steps![i - 1];
      if (before && s.percent <= before.percent) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'percent'],
          message: `steps must increase: ${s.percent} % follows ${before.percent} % (step ${i - 1})`,
        });
      }
    });
    // A deadline shorter than the step's minimum would time every step out before it could pass.
    if (d.strategy === 'direct') return;
    const steps = d.steps ?? (d.strategy === 'shadow' ? DEFAULT_SHADOW_STEPS : DEFAULT_CANARY_STEPS);
    steps.forEach((s, i) => {
      const own = s.maxSeconds !== undefined;
      const max = s.maxSeconds ?? d.maxStepSeconds;
      if (max === undefined || max <= 0 || max >= s.minSeconds) return;
      ctx.addIssue({
        code: 'custom',
        path: own ? ['steps', i, 'maxSeconds'] : ['maxStepSeconds'],
        message: `must be at least the step's minSeconds: ${max} s is shorter than step ${i}'s ${s.minSeconds} s`,
      });
    });
  });
export type DeploymentSpec = z.output<typeof deploymentSpecSchema>;
export type DeploymentSpecInput = z.input<typeof deploymentSpecSchema>;

/**
 * The steps a rollout runs: the section's own, or the strategy's defaults, each with its deadline
 * (its own `maxSeconds`, else the section's `maxStepSeconds`, else none).
 */
export function rolloutStepsOf(spec: DeploymentSpec): RolloutStep[] {
  const steps = spec.steps ?? (spec.strategy === 'shadow' ? DEFAULT_SHADOW_STEPS : DEFAULT_CANARY_STEPS);
  const max = spec.maxStepSeconds;
  return steps.map((s) => (s.maxSeconds === undefined && max !== undefined ? { ...s, maxSeconds: max } : s));
}

// ---- the rollout orchestration

export const ROLLOUT_ORCHESTRATOR = 'rollout';
/** The external event operators raise (pause, resume, promote, abort). */
export const ROLLOUT_CONTROL_EVENT = 'rolloutControl';
export const rolloutActions = ['pause', 'resume', 'promote', 'abort'] as const;
export const rolloutActionSchema = z.enum(rolloutActions);
export type RolloutAction = z.infer<typeof rolloutActionSchema>;
export const rolloutControlSchema = z.object({
  action: rolloutActionSchema,
  by: z.string().min(1).max(256),
  reason: z.string().max(500).optional(),
});
export type RolloutControl = z.infer<typeof rolloutControlSchema>;
/** An operator request as the rollout document keeps it: numbered, so each is applied once. */
export const rolloutControlRecordSchema = rolloutControlSchema.extend({
  seq: z.int().positive(),
  at: z.iso.datetime(),
});
export type RolloutControlRecord = z.infer<typeof rolloutControlRecordSchema>;

/** The rollout of a run: one per run; its id is also the rollout document's `rolloutId`. */
export const rolloutInstanceId = (runId: string): string => `${runId}:rollout`;

/** What the candidate's traffic showed in a step so far (candidate side; production for comparison). */
export const trafficFiguresSchema = z.object({
  requests: z.int().min(0),
  errors: z.int().min(0),
  errorRate: z.number().nullable(),
  latencyP99Ms: z.number().nullable(),
  /** Rows whose predictions were compared with the holdout reference. */
  predictedRows: z.int().min(0),
  psi: z.number().nullable(),
  /** Shadow: rows scored by both and compared. */
  compared: z.int().min(0),
  agreement: z.number().nullable(),
  productionRequests: z.int().min(0),
});
export type TrafficFigures = z.infer<typeof trafficFiguresSchema>;

/**
 * The step-pass rule a new rollout runs under (rolloutInputSchema.revision). 1 (absent): a step
 * passes on minSeconds and max(minRequests, guards.minSamples) candidate requests, whether or not
 * every guard was judged. 2: it also waits until every guard has enough evidence to be judged
 * (lib/rollout/figures.ts guardEvidence; docs/rollout.md).
 */
export const ROLLOUT_REVISION = 2;

export const rolloutInputSchema = z.object({
  /**
   * The step-pass rule (ROLLOUT_REVISION): set by the parent for new rollouts and carried through
   * continue-as-new, so a rollout recorded under an older rule replays under it. Absent: 1.
   */
  revision: z.int().min(1).optional(),
  runId: z.string().min(1),
  pipeline: z.string().min(1),
  approvalId: z.string().min(1),
  /** The run execution's deployment id: the approval is consumed by it when production moves. */
  deploymentId: z.string().min(1).max(200),
  candidate: candidateSchema,
  /** The production version the candidate was evaluated against (null: none). */
  expectedProduction: z.int().positive().nullable(),
  strategy: z.enum(['shadow', 'canary']),
  steps: z.array(rolloutStepSchema).min(1).max(20),
  guards: rolloutGuardsSchema,
  checkEverySeconds: z.number().min(1),
  /**
   * Set when the orchestration continued as new (at each step boundary and every
   * ROLLOUT_CHECKS_PER_EXECUTION checks, to bound its history): where it was. Absent: a new rollout.
   */
  resume: z
    .object({
      /** The step to run (0-based). */
      step: z.int().min(0),
      /** When that step started (its traffic share was set); absent: it starts now. */
      stepStartedAt: z.iso.datetime().optional(),
      /** The last operator request applied. */
      controlSeq: z.int().min(0),
      paused: z.boolean(),
      /** The last step passed, with its figures. */
      passed: z.object({ step: z.int().min(0), figures: trafficFiguresSchema }).optional(),
      /** Milliseconds the step was paused so far (they do not count toward its deadline). Absent: 0. */
      pausedMs: z.number().min(0).optional(),
      /** When the current pause began (paused only). Absent while paused: when the step began. */
      pausedSince: z.iso.datetime().optional(),
    })
    .optional(),
});
export type RolloutInput = z.input<typeof rolloutInputSchema>;

/** Guard checks one execution of the rollout orchestration makes before it continues as new. */
export const ROLLOUT_CHECKS_PER_EXECUTION = 100;

/** The code of a rollout that rolled back because a step passed its deadline (`maxSeconds`). */
export const STEP_TIMED_OUT = 'step_timed_out';

export const guardBreachSchema = z.object({
  guard: z.enum(['maxErrorRate', 'maxLatencyP99Ms', 'maxPredictionPsi', 'minShadowAgreement']),
  value: z.number(),
  limit: z.number(),
  message: z.string(),
});
export type GuardBreach = z.infer<typeof guardBreachSchema>;

/** How much evidence a guard has in the current step and how much it needs before it is judged. */
export const guardEvidenceSchema = z.object({
  guard: guardBreachSchema.shape.guard,
  have: z.int(),
  need: z.int().min(0),
  /** What is counted: candidate requests, successful candidate requests, predicted rows, compared rows. */
  of: z.string(),
});
export type GuardEvidence = z.infer<typeof guardEvidenceSchema>;

/** "maxPredictionPsi: 40 of 74 predicted rows; …" (the run document's note while a step waits). */
export function describeWaiting(waiting: readonly GuardEvidence[]): string {
  return waiting.map((w) => `${w.guard}: ${w.have} of ${w.need} ${w.of}`).join('; ');
}

export const rolloutOutcomeSchema = z.enum(['completed', 'rolled_back', 'aborted']);

export const rolloutOutputSchema = z.object({
  outcome: rolloutOutcomeSchema,
  /** Why it ended as it did (a breach with its figures, who aborted or promoted). */
  reason: z.string(),
  /** The step it ended in (0-based). */
  step: z.int().min(0),
  figures: trafficFiguresSchema.optional(),
  breaches: z.array(guardBreachSchema).optional(),
  /** Why it could not start or finish (e.g. `production_moved`, `rollout_in_progress`). */
  code: z.string().optional(),
  /** The production alias move (completed rollouts only). */
  deployment: deployModelActivity.output.optional(),
});
export type RolloutOutput = z.infer<typeof rolloutOutputSchema>;

// ---- activities

const rolloutRef = {
  modelName: z.string().min(1).max(128),
  rolloutId: z.string().min(1).max(300),
};

/**
 * Starts serving the candidate under a rollout: checks the approval against the candidate and the
 * registry, builds the candidate's holdout prediction reference (for PSI), and writes the rollout
 * document at 0 % (production answers everything until the first step is set).
 */
export const startRolloutActivity = defineActivity(
  'startRollout',
  z.object({
    ...rolloutRef,
    runId: z.string().min(1),
    pipeline: z.string().min(1),
    approvalId: z.string().min(1),
    candidate: candidateSchema,
    expectedProduction: z.int().positive().nullable(),
    strategy: z.enum(['shadow', 'canary']),
    steps: z.array(rolloutStepSchema).min(1).max(20),
    agreementTolerance: z.number().min(0),
    at: z.iso.datetime(),
  }),
  z.object({
    /** Rows of the candidate's holdout its reference was built from. */
    holdoutRows: z.int().min(0),
    productionVersion: z.int().positive().nullable(),
  }),
);

/** Sets the rollout's current step and state, and records the step's timeline on the run document. */
export const setRolloutStepActivity = defineActivity(
  'setRolloutStep',
  z.object({
    ...rolloutRef,
    runId: z.string().min(1),
    pipeline: z.string().min(1),
    strategy: z.enum(['shadow', 'canary']),
    step: z.int().min(0),
    percent: z.number().min(0).max(100),
    state: z.enum(['active', 'paused']),
    at: z.iso.datetime(),
    /** The step just passed, with its figures, when this change advances. */
    passed: z.object({ step: z.int().min(0), figures: trafficFiguresSchema }).optional(),
    note: z.string().max(500).optional(),
    /**
     * The guards the step still waits on for evidence (revision 2), kept on the rollout document
     * until the step changes. Absent: none (or not known).
     */
    waiting: z.array(guardEvidenceSchema).optional(),
    /**
     * When the step times out unless it passes first (its `maxSeconds` from when it began, plus the
     * time it was paused). Absent: no deadline now (none set, or the step is paused).
     */
    deadline: z.iso.datetime().optional(),
  }),
  z.object({ updated: z.boolean() }),
);

/** Sums the candidate's traffic stats of the current step and judges them against the guards. */
export const checkRolloutGuardsActivity = defineActivity(
  'checkRolloutGuards',
  z.object({
    ...rolloutRef,
    strategy: z.enum(['shadow', 'canary']),
    step: z.int().min(0),
    guards: rolloutGuardsSchema,
  }),
  z.object({
    figures: trafficFiguresSchema,
    breaches: z.array(guardBreachSchema),
    /**
     * The guards not yet judged for lack of evidence, with how much they have and need (empty: all
     * judged). A rollout at revision 2 does not pass a step while any is here. Absent in histories
     * recorded before it existed.
     */
    waiting: z.array(guardEvidenceSchema).optional(),
    /** The last operator request on the rollout document. */
    control: rolloutControlRecordSchema.optional(),
  }),
  { firstRetryIntervalMs: 1_000, maxAttempts: 3, backoffCoefficient: 2, maxRetryIntervalMs: 5_000 },
);

/**
 * Ends a rollout: the rollout document says so (production alone serves again), the run document
 * records the outcome with its figures, and the run's reviewers are told.
 */
export const endRolloutActivity = defineActivity(
  'endRollout',
  z.object({
    ...rolloutRef,
    runId: z.string().min(1),
    pipeline: z.string().min(1),
    approvalId: z.string().min(1),
    strategy: z.enum(['shadow', 'canary']),
    outcome: rolloutOutcomeSchema,
    reason: z.string().max(2_000),
    step: z.int().min(0),
    at: z.iso.datetime(),
    figures: trafficFiguresSchema.optional(),
    breaches: z.array(guardBreachSchema).optional(),
    /** Why, as a code, when it is not a breach or an operator: `step_timed_out`, `rollout_failed`, a refusal. */
    code: z.string().max(100).optional(),
  }),
  z.object({ ended: z.boolean(), notified: z.int().min(0) }),
);

/** The rollout sub-orchestration of a run (instance id `<runId>:rollout`). */
export const rolloutOrchestration = defineOrchestration(
  ROLLOUT_ORCHESTRATOR,
  rolloutInputSchema,
  rolloutOutputSchema,
  rolloutInstanceId,
);
