import { z } from 'zod';
import { STEP_TIMED_OUT, guardBreachSchema, trafficFiguresSchema } from '../contracts/rollout';

/**
 * A rollout's timeline on its run document (`rollout`): every step with when it started and how it
 * ended, with the figures that decided it, and the rollout's outcome with its reason. Pure helpers;
 * the activities write the result through the run store.
 */

export const rolloutStepRecordSchema = z.object({
  step: z.int().min(0),
  percent: z.number(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  outcome: z.enum(['passed', 'rolled_back', 'aborted', 'promoted', 'completed', 'timed_out']).optional(),
  figures: trafficFiguresSchema.optional(),
  /** When the step times out unless it passes first (absent: no deadline, or paused as last recorded). */
  deadline: z.string().optional(),
});

export const runRolloutSchema = z.object({
  rolloutId: z.string(),
  /** The model whose rollout document this is (cancel aborts it through it). */
  modelName: z.string().optional(),
  strategy: z.enum(['shadow', 'canary']),
  state: z.string(),
  step: z.int().min(-1),
  percent: z.number(),
  steps: z.array(rolloutStepRecordSchema),
  outcome: z.enum(['completed', 'rolled_back', 'aborted']).optional(),
  reason: z.string().optional(),
  /** Why as a code, when it is not a breach or an operator (`step_timed_out`, `rollout_failed`, …). */
  code: z.string().optional(),
  breaches: z.array(guardBreachSchema).optional(),
  endedAt: z.string().optional(),
  notes: z.array(z.string()).max(50).optional(),
});
export type RunRollout = z.infer<typeof runRolloutSchema>;

/** The run's rollout record as stored, or a fresh one. */
export function readRunRollout(
  stored: unknown,
  fresh: Pick<RunRollout, 'rolloutId' | 'strategy' | 'modelName'>,
): RunRollout {
  const parsed = runRolloutSchema.safeParse(stored);
  if (parsed.success && parsed.data.rolloutId === fresh.rolloutId) return parsed.data;
  return { ...fresh, state: 'active', step: -1, percent: 0, steps: [] };
}

/** Records a step change: the passed step's end with its figures, the new step's start. Idempotent. */
export function recordStep(
  r: RunRollout,
  change: {
    step: number;
    percent: number;
    state: string;
    at: string;
    passed?: { step: number; figures: z.infer<typeof trafficFiguresSchema> };
    note?: string;
    /** The step's deadline now (null: none, or paused); undefined leaves what is recorded. */
    deadline?: string | null;
  },
): RunRollout {
  const withDeadline = <S extends RunRollout['steps'][number]>(s: S): S => {
    if (change.deadline === undefined || s.step !== change.step || s.outcome) return s;
    const { deadline: _was, ...rest } = s;
    void _was;
    return (change.deadline === null ? rest : { ...rest, deadline: change.deadline }) as S;
  };
  const steps = r.steps.map((s) =>
    withDeadline(
      change.passed && s.step === change.passed.step && !s.outcome
        ? { ...s, endedAt: change.at, outcome: 'passed' as const, figures: change.passed.figures }
        : s,
    ),
  );
  if (!steps.some((s) => s.step === change.step))
    steps.push(
      withDeadline({
        step: change.step,
        percent: change.percent,
        startedAt: change.at,
      } as RunRollout['steps'][number]),
    );
  const notes =
    change.note && !(r.notes ?? []).includes(change.note) ? [...(r.notes ?? []), change.note] : r.notes;
  return {
    ...r,
    state: change.state,
    step: change.step,
    percent: change.percent,
    steps,
    ...(notes ? { notes: notes.slice(-50) } : {}),
  };
}

/** Records the rollout's end on its current step. */
export function recordEnd(
  r: RunRollout,
  end: {
    outcome: 'completed' | 'rolled_back' | 'aborted';
    reason: string;
    step: number;
    at: string;
    figures?: z.infer<typeof trafficFiguresSchema>;
    breaches?: z.infer<typeof guardBreachSchema>[];
    code?: string;
  },
): RunRollout {
  // A step that passed its deadline says so; the rollout's outcome is still a rollback.
  const how: NonNullable<RunRollout['steps'][number]['outcome']> =
    end.code === STEP_TIMED_OUT ? 'timed_out' : end.outcome;
  const steps = r.steps.map((s) =>
    s.step === end.step && !s.outcome
      ? { ...s, endedAt: end.at, outcome: how, ...(end.figures ? { figures: end.figures } : {}) }
      : s,
  );
  return {
    ...r,
    state: end.outcome,
    steps,
    outcome: end.outcome,
    reason: end.reason,
    ...(end.code ? { code: end.code } : {}),
    ...(end.breaches && end.breaches.length > 0 ? { breaches: end.breaches } : {}),
    endedAt: r.endedAt ?? end.at,
  };
}
