import type { z } from 'zod';
import { checkRolloutGuardsActivity } from '../lib/contracts/rollout';
import { NonRetriableError } from '../lib/errors';
import { guardEvidence, guardsWaiting, judgeGuards, referenceBins } from '../lib/rollout/figures';
import type { RolloutStore } from '../lib/rollout/store';
import type { TrafficStore } from '../lib/rollout/traffic';
import { figuresOf, sumRecords } from '../lib/rollout/traffic';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof checkRolloutGuardsActivity.input>;
type Output = z.input<typeof checkRolloutGuardsActivity.output>;

/**
 * Sums the traffic records of the rollout's current step (every instance's flushes) and judges the
 * candidate's figures against the guards, naming the guards still short of evidence. Reads only: running it twice gives the same answer for
 * the same records.
 */
export function checkRolloutGuards(deps: {
  rollouts: Pick<RolloutStore, 'get'>;
  traffic: Pick<TrafficStore, 'ofStep'>;
}) {
  return async (input: Input): Promise<Output> => {
    const doc = await deps.rollouts.get(input.modelName);
    if (!doc || doc.rolloutId !== input.rolloutId)
      throw new NonRetriableError('rollout_not_found', `no rollout ${input.rolloutId} of ${input.modelName}`);
    const records = await deps.traffic.ofStep(input.modelName, input.rolloutId, input.step);
    const side = input.strategy === 'canary' ? 'candidate' : 'shadow';
    const figures = figuresOf(
      sumRecords(records.filter((r) => r.variant === side)),
      sumRecords(records.filter((r) => r.variant === 'production')),
      doc.reference,
    );
    const reference = {
      bins: doc.reference ? referenceBins(doc.reference) : 0,
      holdoutRows: doc.holdoutRows,
    };
    return {
      figures,
      breaches: judgeGuards(input.strategy, input.guards, figures, reference),
      waiting: guardsWaiting(guardEvidence(input.strategy, input.guards, figures, reference)),
      ...(doc.control ? { control: doc.control } : {}),
    };
  };
}

registerActivityFactory(checkRolloutGuardsActivity, (services) => checkRolloutGuards(services));
