import type { CheckDocument } from './records';
import type { CheckDeps, SweepResult } from './service';
import { sweepChecks } from './service';

/**
 * What just changed, so the checks waiting on it can be decided at once rather than at the next
 * reportChecks tick: a run ended, or a model's production alias moved.
 */
export type CheckSubject = { runEnded: string } | { aliasMoved: string };

/**
 * Whether a waiting check may be decided by the change. A run's end decides the checks on that
 * run, and may decide any model-version check (`version_not_deployed` when the version's run ended
 * without deploying it; which run made a version is the registry's to say, so every model check is
 * looked at). An alias move decides the checks on that model. Checks already decided and waiting
 * for a delivery retry are the timer's: a nudge does not spend their bounded attempts.
 */
export function concerns(check: CheckDocument, subject: CheckSubject): boolean {
  if (check.status !== 'waiting' || !check.condition) return false;
  const c = check.condition;
  if ('runEnded' in subject) return 'run' in c ? c.run === subject.runEnded : true;
  return 'model' in c && c.model === subject.aliasMoved;
}

/** One sweep over the checks the change concerns: decide, and answer Azure DevOps or GitHub. */
export function nudgeChecks(deps: CheckDeps, subject: CheckSubject): Promise<SweepResult> {
  return sweepChecks(deps, { only: (check) => concerns(check, subject) });
}

/**
 * Starts {@link nudgeChecks} and returns at once: whoever ended the run or moved the alias (an
 * activity of the orchestration, an HTTP function) never waits on Azure DevOps or GitHub, and never
 * fails because of them: nothing here throws, not even building `deps` (pass a function to build
 * them inside the guard). What the sweep could not do, the reportChecks timer does on its next pass.
 * `onDone` sees the outcome.
 */
export function startNudge(
  deps: CheckDeps | (() => CheckDeps),
  subject: CheckSubject,
  onDone: (outcome: SweepResult | Error) => void = () => undefined,
): void {
  const failed = (err: unknown) => onDone(err instanceof Error ? err : new Error(String(err)));
  try {
    void nudgeChecks(typeof deps === 'function' ? deps() : deps, subject).then(onDone, failed);
  } catch (err) {
    failed(err);
  }
}
