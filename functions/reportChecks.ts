import { app, type InvocationContext, type Timer } from '@azure/functions';
import { withServices } from '../app/services';
import type { CheckDeps } from '../lib/checks/service';
import { sweepChecks } from '../lib/checks/service';
import { checkDeps } from '../lib/services';
import type { Services } from '../lib/services';

/**
 * Every minute: decides the open deployment checks from the registry and the run store, fails the
 * ones that would outlive the caller's token, and answers Azure DevOps (TaskCompleted and a log
 * line) and GitHub (approved or rejected with a comment). Idempotent: a pass that finds nothing
 * decided changes nothing.
 */
export const reportChecksWith =
  (deps: CheckDeps) =>
  async (timer: Timer, context: InvocationContext): Promise<void> => {
    const result = await sweepChecks(deps);
    for (const d of result.decided) context.log(`check ${d.id}: ${d.result} (${d.code})`);
    for (const id of result.reported) context.log(`check ${id}: answered`);
    for (const u of result.undeliverable) context.warn(`check ${u.id}: undeliverable: ${u.error}`);
    for (const r of result.retrying) context.warn(`check ${r.id}: will retry: ${r.error}`);
    if (timer.isPastDue) context.log('reportChecks tick was past due (host was down or busy)');
  };

export const reportChecks = (s: Services) => reportChecksWith(checkDeps(s));

app.timer('reportChecks', {
  schedule: '0 * * * * *',
  handler: withServices(reportChecks),
});
