import { ValidationError } from '../errors';
import type { AliasMove } from './records';
import type { ModelDetail } from './registry';
import { PRODUCTION_ALIAS, ROLLBACK_PREFIX } from './records';

/**
 * Which versions a rollback may return production to. A version reaches production only through
 * an approved deployment (an alias move naming its approval); a rollback may return only to such a
 * version, so it can never put a rejected or never-approved model in front of users. A rollback's
 * own move names the approval that first put the version in production, so the audit trail keeps
 * pointing at the people who approved it.
 */

export { ROLLBACK_PREFIX } from './records';

export interface RollbackPlan {
  from: number;
  to: number;
  /** The approval that put `to` in production first. */
  approvalRef: string;
}

/** Every version that was in production through an approval, with that approval (first one wins). */
export function approvedProductionVersions(history: readonly AliasMove[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of history) {
    if (m.alias !== PRODUCTION_ALIAS || m.to === null || !m.approvalRef) continue;
    if (!out.has(m.to)) out.set(m.to, m.approvalRef);
  }
  return out;
}

function refuse(code: string, message: string, status = 409): ValidationError {
  return new ValidationError(code, message, { status, field: 'to' });
}

/**
 * Plans a rollback of `production`: to `requested`, or by default to the version before the
 * promotion that put the current one in place (a rollback's own move does not count, so rolling
 * back twice walks further back). `rejected(v)` says whether reviewers rejected version v, to name
 * the reason a version that was never in production is refused.
 */
export async function planRollback(
  model: ModelDetail,
  requested: number | undefined,
  rejected: (version: number) => Promise<boolean>,
): Promise<RollbackPlan> {
  const name = model.head.modelName;
  const current = model.head.aliases[PRODUCTION_ALIAS]?.version ?? null;
  if (current === null) throw refuse('no_production_model', `Model "${name}" has no production version.`);
  const last = [...model.aliasHistory]
    .reverse()
    .find((m) => m.alias === PRODUCTION_ALIAS && m.to === current && !m.reason.startsWith(ROLLBACK_PREFIX));
  const target = requested ?? last?.from ?? null;
  if (target === null) {
    throw refuse(
      'nothing_to_roll_back',
      `Version ${current} is the first production version of "${name}"; name a version with "to".`,
    );
  }
  if (target === current) throw refuse('already_there', `Production already is version ${current}.`);
  if (!model.versions.some((v) => v.version === target))
    throw refuse('version_not_found', `Model "${name}" has no version ${target}.`, 404);
  const approvalRef = approvedProductionVersions(model.aliasHistory).get(target);
  if (approvalRef === undefined) {
    if (await rejected(target)) {
      throw refuse(
        'version_rejected',
        `Version ${target} was rejected by reviewers; a rollback may only return to a version that was approved and in production before.`,
      );
    }
    throw refuse(
      'never_in_production',
      `Version ${target} was never in production; a rollback may only return to a version that was approved and in production before. Start a run to have it approved.`,
    );
  }
  return { from: current, to: target, approvalRef };
}
