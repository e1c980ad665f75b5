import * as df from 'durable-functions';
import type { OrchestrationContext, OrchestrationHandler, Task } from 'durable-functions';
import { deployModelActivity } from '../lib/contracts/deploy';
import type {
  GuardBreach,
  GuardEvidence,
  RolloutInput,
  RolloutOutput,
  TrafficFigures,
} from '../lib/contracts/rollout';
import {
  ROLLOUT_CHECKS_PER_EXECUTION,
  ROLLOUT_CONTROL_EVENT,
  ROLLOUT_ORCHESTRATOR,
  STEP_TIMED_OUT,
  checkRolloutGuardsActivity,
  describeWaiting,
  endRolloutActivity,
  rolloutInputSchema,
  setRolloutStepActivity,
  startRolloutActivity,
} from '../lib/contracts/rollout';
import { ActivityFailedError, callActivity } from './support/call';

/**
 * A staged rollout of an approved candidate (a sub-orchestration of trainingPipeline's deploy step;
 * instance id `<runId>:rollout`, docs/rollout.md). It starts the rollout (approval and registry
 * checked, holdout reference built), then for each step sets the candidate's share and sleeps on a
 * durable timer, waking every `checkEverySeconds` (or on an operator's event) to check the guards
 * as an activity. A breach rolls back at once. A step ends when it has lasted `minSeconds` and seen
 * `minRequests` candidate requests, unless paused. After the last step (or an operator's promote)
 * the production alias moves through deployModel (the same checks and audit trail as a direct
 * deployment), and only then does the rollout end as completed.
 *
 * Operator requests (pause, resume, promote, abort) are read from the rollout document with each
 * guard check; the event only wakes the orchestration early. Everything durable is in the history,
 * so a restart resumes in the step it was in. The history is bounded: the orchestration continues
 * as new at each step boundary and every ROLLOUT_CHECKS_PER_EXECUTION checks, with its place in
 * `input.resume`. A step needs at least `guards.minSamples` requests to pass (some guard judged).
 *
 * Revision 2 (ROLLOUT_REVISION, set by the parent for new rollouts and carried through continue as
 * new): a step passes only once every guard has had enough evidence to be judged (the check's
 * `waiting` is empty); while its minimums are met but a guard still waits, the step stays and the
 * run and rollout documents say which guard lacks how much (noted again when that set changes).
 * Absent (rollouts recorded before): the old rule, so their histories replay as recorded.
 *
 * A step with a deadline (`maxSeconds`, from the step or the section's `maxStepSeconds`) that has not
 * passed that long after it began (time paused not counted) times out: the rollout rolls back with
 * code `step_timed_out` and what the step still lacked. No new revision: the deadline is part of the
 * steps in the input, which rollouts started before do not have, so their histories replay as
 * recorded (docs/rollout.md, A step's deadline).
 * Any failure ends the rollout as aborted (best effort; reconciliation ends a document whose
 * orchestration is gone), so the candidate never keeps serving.
 */
export const rollout: OrchestrationHandler = function* (
  context: OrchestrationContext,
): Generator<Task, RolloutOutput, unknown> {
  const input = rolloutInputSchema.parse(context.df.getInput());
  const c = input.candidate;
  const ref = { modelName: c.modelName, rolloutId: context.df.instanceId };
  const run = { runId: input.runId, pipeline: input.pipeline };
  const now = () => context.df.currentUtcDateTime;
  const log = (message: string) => {
    if (!context.df.isReplaying) context.log(`rollout ${ref.rolloutId}: ${message}`);
  };

  const resume = input.resume;
  /** Revision 2 on: a step also waits until every guard has been judged. */
  const waitsForEvidence = (input.revision ?? 1) >= 2;
  let controlSeq = resume?.controlSeq ?? 0;
  let paused = resume?.paused ?? false;
  let promoted: string | undefined;
  let passed: { step: number; figures: TrafficFigures } | undefined = resume?.passed;
  let step = resume?.step ?? 0;

  if (!resume) {
    try {
      yield* callActivity(context, startRolloutActivity, {
        ...ref,
        ...run,
        approvalId: input.approvalId,
        candidate: c,
        expectedProduction: input.expectedProduction,
        strategy: input.strategy,
        steps: input.steps,
        agreementTolerance: input.guards.agreementTolerance,
        at: now().toISOString(),
      });
    } catch (err) {
      // Its retries ran out: it may have written the document, which must not stay live.
      if (!(err instanceof ActivityFailedError)) return yield* failed(err);
      // Refused before any traffic moved: nothing to roll back.
      return { outcome: 'aborted', reason: err.message, step: 0, code: err.code };
    }
  }

  function* end(
    outcome: 'rolled_back' | 'aborted' | 'completed',
    reason: string,
    step: number,
    figures?: TrafficFigures,
    breaches?: GuardBreach[],
    code?: string,
  ): Generator<Task, void, unknown> {
    log(`${outcome} at step ${step}: ${reason}`);
    yield* callActivity(context, endRolloutActivity, {
      ...ref,
      ...run,
      approvalId: input.approvalId,
      strategy: input.strategy,
      outcome,
      reason: reason.slice(0, 2_000),
      step,
      at: now().toISOString(),
      ...(figures ? { figures } : {}),
      ...(breaches && breaches.length > 0 ? { breaches } : {}),
      ...(code ? { code } : {}),
    });
  }

  // A step passes only once its guards could be judged: never on fewer requests than minSamples.
  const needed = (s: { minRequests: number }) => Math.max(s.minRequests, input.guards.minSamples);
  /** Starts this orchestration over where it is (a bounded history); the caller returns at once. */
  const continueAt = (at: NonNullable<RolloutInput['resume']>): RolloutOutput => {
    log(`continues as new at step ${at.step + 1}`);
    context.df.continueAsNew({ ...input, resume: at });
    // Not an output: an orchestration that continued as new reports the next execution's.
    return { outcome: 'aborted', reason: 'continued as new', step: at.step };
  };

  try {
    for (; step < input.steps.length && !promoted; step++) {
      const s = input.steps[step]!;
      // What every setRolloutStep of this step names: the rollout, its run, the step and its share.
      const stepRef = { ...ref, ...run, strategy: input.strategy, step, percent: s.percent };
      const maxMs = s.maxSeconds === undefined ? undefined : s.maxSeconds * 1000;
      let startedAt: number;
      /** Time this step spent paused before the current pause (not counted toward its deadline). */
      let pausedMs = 0;
      /** When the current pause began (paused only). */
      let pausedSince: number | undefined;
      /** When the step times out unless it passes first (undefined: no deadline, or paused). */
      const deadline = (): number | undefined =>
        maxMs === undefined || paused ? undefined : startedAt + maxMs + pausedMs;
      const deadlineField = (): { deadline?: string } => {
        const d = deadline();
        return d === undefined ? {} : { deadline: new Date(d).toISOString() };
      };
      if (resume?.stepStartedAt && step === resume.step) {
        startedAt = Date.parse(resume.stepStartedAt);
        pausedMs = resume.pausedMs ?? 0;
        if (paused) pausedSince = resume.pausedSince ? Date.parse(resume.pausedSince) : startedAt;
      } else {
        const at = now();
        // With a deadline the step counts from the instant its share was set (`at`, the time the
        // documents show it began), so the deadline they show is the one applied. Without one, as
        // recorded before deadlines existed: from when the activity answered.
        const begins = maxMs === undefined ? undefined : at.getTime();
        yield* callActivity(context, setRolloutStepActivity, {
          ...stepRef,
          state: paused ? 'paused' : 'active',
          at: at.toISOString(),
          ...(passed ? { passed } : {}),
          ...(begins !== undefined && !paused ? { deadline: new Date(begins + maxMs!).toISOString() } : {}),
        });
        log(`step ${step + 1}/${input.steps.length}: ${s.percent} %`);
        startedAt = begins ?? now().getTime();
        if (paused) pausedSince = startedAt;
      }
      const minEnd = startedAt + s.minSeconds * 1000;
      /** The guards last noted as waiting for evidence in this step (their names). */
      let notedWaiting = '';
      let checks = 0;
      let stepPassed = false;
      for (;;) {
        if (checks >= ROLLOUT_CHECKS_PER_EXECUTION) {
          return continueAt({
            step,
            stepStartedAt: new Date(startedAt).toISOString(),
            controlSeq,
            paused,
            ...(passed ? { passed } : {}),
            ...(pausedMs > 0 ? { pausedMs } : {}),
            ...(pausedSince !== undefined ? { pausedSince: new Date(pausedSince).toISOString() } : {}),
          });
        }
        checks++;
        const t = now().getTime();
        let next =
          t < minEnd
            ? Math.min(minEnd, t + input.checkEverySeconds * 1000)
            : t + input.checkEverySeconds * 1000;
        // A deadline between two checks is judged at the deadline itself.
        const due = deadline();
        if (due !== undefined && due > t) next = Math.min(next, due);
        const timer = context.df.createTimer(new Date(Math.max(next, t + 1)));
        const event = context.df.waitForExternalEvent(ROLLOUT_CONTROL_EVENT);
        const winner = yield context.df.Task.any([timer, event]);
        // Only a wake-up: what counts is the request the endpoint stored on the rollout document.
        if (winner === event) timer.cancel();

        const check = yield* callActivity(context, checkRolloutGuardsActivity, {
          ...ref,
          strategy: input.strategy,
          step,
          guards: input.guards,
        });
        if (check.breaches.length > 0) {
          const why = check.breaches.map((b) => b.message).join('; ');
          yield* end('rolled_back', `guard breached: ${why}`, step, check.figures, check.breaches);
          return {
            outcome: 'rolled_back',
            reason: why,
            step,
            figures: check.figures,
            breaches: check.breaches,
          };
        }
        const control = check.control;
        if (control && control.seq > controlSeq) {
          controlSeq = control.seq;
          const who = `${control.by}${control.reason ? ` (${control.reason})` : ''}`;
          if (control.action === 'abort') {
            const why = `aborted by ${who}`;
            yield* end('aborted', why, step, check.figures);
            return { outcome: 'aborted', reason: why, step, figures: check.figures };
          }
          if (control.action === 'promote') {
            promoted = `promoted by ${who} at step ${step + 1}`;
            passed = { step, figures: check.figures };
            break;
          }
          if ((control.action === 'pause') !== paused) {
            paused = control.action === 'pause';
            // Paused time does not count toward the step's deadline: an operator holds it on purpose.
            const at = now().getTime();
            if (paused) pausedSince = at;
            else {
              pausedMs += Math.max(0, at - (pausedSince ?? at));
              pausedSince = undefined;
            }
            yield* callActivity(context, setRolloutStepActivity, {
              ...stepRef,
              state: paused ? 'paused' : 'active',
              at: now().toISOString(),
              note: `${paused ? 'paused' : 'resumed'} by ${who} at step ${step + 1}`,
              ...deadlineField(),
            });
          }
        }
        const seen = check.figures.requests;
        if (!paused && now().getTime() >= minEnd && seen >= needed(s)) {
          const waiting: GuardEvidence[] = waitsForEvidence ? (check.waiting ?? []) : [];
          if (waiting.length === 0) {
            passed = { step, figures: check.figures };
            stepPassed = true;
            break;
          }
          // The step's minimums are met, but a guard could not be judged yet: it stays, and says why.
          const names = waiting.map((w) => w.guard).join(',');
          if (names !== notedWaiting) {
            notedWaiting = names;
            const note = `step ${step + 1} waits for evidence: ${describeWaiting(waiting)}`;
            log(note);
            yield* callActivity(context, setRolloutStepActivity, {
              ...stepRef,
              state: 'active',
              at: now().toISOString(),
              note: note.slice(0, 500),
              waiting,
              ...deadlineField(),
            });
          }
        }
        // Not passed: past its deadline the step times out, and the candidate is taken out.
        const due2 = deadline();
        if (due2 !== undefined && now().getTime() >= due2) {
          const lacking: string[] = [];
          if (seen < needed(s)) lacking.push(`${seen} of ${needed(s)} candidate requests`);
          const waiting = waitsForEvidence ? (check.waiting ?? []) : [];
          if (waiting.length > 0) lacking.push(describeWaiting(waiting));
          const why = `step ${step + 1} did not pass within its deadline of ${duration(s.maxSeconds!)}${pausedMs > 0 ? ` (${duration(Math.round(pausedMs / 1000))} paused not counted)` : ''}: it had ${lacking.join('; ') || 'not met its minimums'}`;
          yield* end('rolled_back', why, step, check.figures, undefined, STEP_TIMED_OUT);
          return { outcome: 'rolled_back', reason: why, step, figures: check.figures, code: STEP_TIMED_OUT };
        }
      }
      if (stepPassed && step + 1 < input.steps.length) {
        // A step boundary: the next step starts in a fresh history.
        return continueAt({ step: step + 1, controlSeq, paused, passed: passed! });
      }
    }
  } catch (err) {
    return yield* failed(err);
  }
  const last = Math.min(step, input.steps.length) - 1;

  // Every step passed (or an operator promoted): production moves now, and only now.
  try {
    const deployed = yield* callActivity(context, deployModelActivity, {
      ...run,
      approvalId: input.approvalId,
      deploymentId: input.deploymentId,
      candidate: c,
      expectedProduction: input.expectedProduction,
    });
    const why = promoted ?? `all ${input.steps.length} steps passed`;
    yield* end('completed', why, Math.max(last, 0), passed?.figures);
    return {
      outcome: 'completed',
      reason: why,
      step: Math.max(last, 0),
      ...(passed ? { figures: passed.figures } : {}),
      deployment: deployed,
    };
  } catch (err) {
    if (!(err instanceof ActivityFailedError)) return yield* failed(err);
    // Production moved under the rollout (an operator's rollback), the approval was used, or the
    // run was canceled: the candidate stops serving and production stays as it is.
    try {
      yield* end('aborted', err.message, Math.max(last, 0));
    } catch (endErr) {
      return yield* failed(endErr);
    }
    return { outcome: 'aborted', reason: err.message, step: Math.max(last, 0), code: err.code };
  }

  /**
   * Anything else that failed (an activity whose retries ran out, a refusal such as `rollout_ended`
   * or `run_canceled`): the candidate must not keep serving, so the rollout ends as aborted, best
   * effort (reconciliation ends a document whose orchestration is gone), and the run learns why.
   */
  function* failed(err: unknown): Generator<Task, RolloutOutput, unknown> {
    const at = Math.max(Math.min(step, input.steps.length - 1), 0);
    const message = err instanceof Error ? err.message : String(err);
    // A refusal keeps its code (`run_canceled`, `rollout_ended`); anything else is `rollout_failed`.
    const code = err instanceof ActivityFailedError ? err.code : 'rollout_failed';
    const reason = (err instanceof ActivityFailedError ? message : `rollout failed: ${message}`).slice(
      0,
      2_000,
    );
    try {
      yield* end('aborted', reason, at);
    } catch {
      log(`could not end after a failure (reconciliation will): ${message}`);
    }
    return { outcome: 'aborted', reason, step: at, code };
  }
};

/** 3600 → "1 h", 90 → "90 s", 600 → "10 min" (a deadline in a reason). */
function duration(seconds: number): string {
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

df.app.orchestration(ROLLOUT_ORCHESTRATOR, rollout);
