import { recordRunStepActivity } from '../lib/contracts/pipeline';
import { getRunDeps } from '../lib/runs/deps';
import { applyStepUpdate } from '../lib/runs/model';
import { registerActivity } from './support/define';

/** Applies one step change (and optional metrics) to the run document; idempotent. */
registerActivity(recordRunStepActivity, async (input) => {
  const deps = await getRunDeps();
  const run = await deps.runs.update(input.pipeline, input.runId, (r) => {
    const next = applyStepUpdate(r, input.update);
    return input.metrics ? { ...next, metrics: { ...next.metrics, ...input.metrics } } : next;
  });
  return { status: run.status, cancelRequested: run.cancelRequested ?? false };
});
