import { app, type InvocationContext, type Timer } from '@azure/functions';
import * as df from 'durable-functions';
import { withServices } from '../app/services';
import { reconcileRuns as sweep } from '../lib/runs/reconcile';
import type { Services } from '../lib/services';
import { reconcileDeps } from './support/reconcile';

/**
 * Every 5 minutes: reconciles every run that has not ended with its orchestration's real state, so
 * a run whose orchestration was terminated from outside, failed or vanished ends with a stop reason
 * (and its approval is withdrawn) even when nobody reads it. Idempotent: runs already in step with
 * their orchestrations are left alone. Live rollouts whose orchestration failed or vanished are
 * ended too (docs/rollout.md).
 */
export const reconcileRuns =
  (deps: Pick<Services, 'runs' | 'approvals' | 'slots' | 'deployLocks' | 'rollouts'>) =>
  async (timer: Timer, context: InvocationContext): Promise<void> => {
    const active = await deps.runs.listActive();
    const result = await sweep(reconcileDeps(deps, context), active);
    for (const e of result.ended) context.log(`reconciled run ${e.id}: ${e.stopReason}`);
    for (const e of result.errors) context.warn(`reconcile: ${e}`);
    if (timer.isPastDue) context.log('reconcile tick was past due (host was down or busy)');
  };

app.timer('reconcileRuns', {
  schedule: '0 */5 * * * *',
  extraInputs: [df.input.durableClient()],
  handler: withServices(reconcileRuns),
});
