import type { z } from 'zod';
import { recordRunStepActivity } from '../lib/contracts/pipeline';
import { updatesOf } from '../lib/contracts/run';
import { applyStepUpdates } from '../lib/runs/document';
import type { RunStore } from '../lib/runs/store';
import { registerActivityFactory } from './support/define';

/**
 * Applies step changes (and optional metrics) to the run document in one ETag-conditioned write,
 * in order, each keeping its own time. Takes the list revision 3 sends and the single update older
 * executions still send. Idempotent: the same updates applied twice leave the same document.
 */
export function recordRunStep(deps: { runs: Pick<RunStore, 'update'> }) {
  return async (
    input: z.output<typeof recordRunStepActivity.input>,
  ): Promise<z.input<typeof recordRunStepActivity.output>> => {
    const run = await deps.runs.update(input.pipeline, input.runId, (r) =>
      applyStepUpdates(r, updatesOf(input), input.metrics),
    );
    return { status: run.status };
  };
}

registerActivityFactory(recordRunStepActivity, (services) => recordRunStep(services));
