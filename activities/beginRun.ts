import type { z } from 'zod';
import { beginRunActivity } from '../lib/contracts/pipeline';
import type { RunStore } from '../lib/runs/store';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof beginRunActivity.input>;
type Output = z.input<typeof beginRunActivity.output>;

/**
 * Claims the run for one orchestration execution. The first execution writes its id on the run
 * document; a retry of that execution finds its own id. Any other execution with this run id (a
 * restart through the Durable API keeps the input, with the same or a new instance id) is refused,
 * so it cannot find the run's old approval and deploy a second time.
 */
export function beginRun(deps: { runs: Pick<RunStore, 'get' | 'update'> }) {
  return async (input: Input): Promise<Output> => {
    const existing = await deps.runs.get(input.pipeline, input.runId);
    // No run document: nothing to protect (later steps report the missing run themselves).
    if (!existing) return { accepted: true };
    const mine = { instanceId: input.instanceId, executionId: input.executionId, at: input.at };
    const run = existing.execution
      ? existing
      : await deps.runs.update(input.pipeline, input.runId, (r) =>
          r.execution ? r : { ...r, execution: mine },
        );
    const owner = run.execution;
    if (!owner || owner.executionId === input.executionId) return { accepted: true };
    return {
      accepted: false,
      reason: `run ${input.runId} already ran as execution ${owner.executionId} of instance ${owner.instanceId} (since ${owner.at}); a restarted or duplicated orchestration cannot run it again or reuse its approval. Start a new run.`,
    };
  };
}

registerActivityFactory(beginRunActivity, (services) => beginRun(services));
