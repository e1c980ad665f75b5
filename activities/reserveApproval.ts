import type { z } from 'zod';
import type { ApprovalSlots } from '../lib/approval/slot';
import { reserveApprovalActivity } from '../lib/contracts/pipeline';
import type { ModelRegistry } from '../lib/registry/registry';
import { PRODUCTION_ALIAS } from '../lib/registry/records';
import { terminalRunStatuses } from '../lib/runs/document';
import type { RunStore } from '../lib/runs/store';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof reserveApprovalActivity.input>;
type Output = z.input<typeof reserveApprovalActivity.output>;

export interface ReserveApprovalDeps {
  slots: Pick<ApprovalSlots, 'claim' | 'release'>;
  runs: Pick<RunStore, 'get'>;
  registry: Pick<ModelRegistry, 'getHead'>;
}

const describe = (v: number | null | undefined) => (v ? `version ${v}` : 'no production model');

/**
 * Reviewers are never asked to approve stale evidence. The slot is claimed first (race-free in
 * Cosmos), then production is compared with the champion the candidate was evaluated against:
 * while this run holds the slot no other run can deploy, so a check that passes here stays true
 * until the deploy (only a rollback can still move production, and deploy refuses that too).
 * Idempotent: a retry finds the slot already its own and checks again.
 */
export function reserveApproval(deps: ReserveApprovalDeps) {
  return async (input: Input): Promise<Output> => {
    const claim = await deps.slots.claim(input.pipeline, input.runId, input.at, async (holder) => {
      const run = await deps.runs.get(input.pipeline, holder);
      return run !== undefined && !terminalRunStatuses.has(run.status);
    });
    if (!claim.granted) {
      return {
        granted: false,
        holder: claim.holder,
        reason: `run ${claim.holder} of this pipeline is awaiting approval or deploying; a pipeline asks for one approval at a time. Start a new run when it has ended.`,
      };
    }
    const head = await deps.registry.getHead(input.modelName);
    const production = head?.aliases[PRODUCTION_ALIAS]?.version ?? null;
    if (production !== input.championVersion) {
      await deps.slots.release(input.pipeline, input.runId);
      return {
        granted: false,
        reason: `production of ${input.modelName} moved to ${describe(production)} after this run was evaluated against ${describe(input.championVersion)}; start a new run to compare with what is in production now.`,
      };
    }
    return { granted: true };
  };
}

registerActivityFactory(reserveApprovalActivity, (services) => reserveApproval(services));
