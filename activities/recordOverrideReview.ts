import type { z } from 'zod';
import { reviewStateOf } from '../lib/approval/overrideReview';
import { recordOverrideReviewActivity } from '../lib/contracts/overrideReview';
import type { ModelRegistry } from '../lib/registry/registry';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof recordOverrideReviewActivity.input>;

/** Writes a post-hoc review's outcome on the overridden version (idempotent: same mark again). */
export function recordOverrideReview(registry: Pick<ModelRegistry, 'setOverrideMark'>) {
  return async (input: Input): Promise<z.input<typeof recordOverrideReviewActivity.output>> => {
    const review = reviewStateOf(input.outcome);
    const mark = await registry.setOverrideMark(input.modelName, input.version, (m) =>
      m && m.reviewApprovalId === input.approvalId && review !== 'required'
        ? { ...m, review, reviewedAt: input.decidedAt, reviewedBy: input.by }
        : undefined,
    );
    return { review: mark?.review ?? review };
  };
}

registerActivityFactory(recordOverrideReviewActivity, (services) => recordOverrideReview(services.registry));
