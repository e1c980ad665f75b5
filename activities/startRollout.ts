import type { z } from 'zod';
import type { ApprovalStore } from '../lib/approval/store';
import { startRolloutActivity } from '../lib/contracts/rollout';
import { requireApprovedFor } from '../lib/approval/approved';
import { NonRetriableError } from '../lib/errors';
import type { OnnxModels } from '../lib/mlmodel/onnxModels';
import { PRODUCTION_ALIAS } from '../lib/registry/records';
import type { ModelRegistry } from '../lib/registry/registry';
import { LIVE_STATES, ROLLOUT_DOC_ID } from '../lib/rollout/records';
import type { RolloutStore } from '../lib/rollout/store';
import { endLiveRollout } from '../lib/rollout/store';
import { versionReference } from '../lib/serving/reference';
import type { RunStore } from '../lib/runs/store';
import { refuseEndedRun } from './setRolloutStep';
import type { ArtifactStore } from '../lib/storage/blob';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof startRolloutActivity.input>;
type Output = z.input<typeof startRolloutActivity.output>;

export interface StartRolloutDeps {
  approvals: Pick<ApprovalStore, 'getRecord'>;
  registry: Pick<ModelRegistry, 'getHead' | 'getVersion'>;
  rollouts: Pick<RolloutStore, 'get' | 'update'>;
  artifacts: ArtifactStore;
  onnx: OnnxModels;
  runs: Pick<RunStore, 'get'>;
}

/**
 * Puts an approved candidate under a rollout. Refuses (non-retriable) an approval that is not
 * approved for exactly this candidate, a registry version whose digests differ, a production alias
 * that moved since evaluation, and a model with another live rollout. The candidate's predictions
 * on its own holdout rows (the rows evaluation scored it on, by the same split) become the PSI
 * reference (recorded once per version, lib/serving/reference.ts, so monitoring judges the same
 * reference later). The document starts at step -1, 0 %: production answers until the first step is set.
 * A run canceled (or asked to be) or ended is refused (`run_canceled`), checked before and again
 * after the document is written (then the document is ended at once).
 * A retry finds its own document and changes nothing.
 */
export function startRollout(deps: StartRolloutDeps) {
  return async (input: Input): Promise<Output> => {
    const c = input.candidate;
    const refuse = 'nothing was rolled out';
    refuseEndedRun(await deps.runs.get(input.pipeline, input.runId), refuse);
    requireApprovedFor(await deps.approvals.getRecord(input.runId, input.approvalId), input, c);
    const version = await deps.registry.getVersion(c.modelName, c.modelVersion);
    if (!version || version.modelDigest !== c.modelDigest || version.datasetDigest !== c.datasetDigest) {
      throw new NonRetriableError(
        'candidate_changed',
        `registry version ${c.modelVersion} of ${c.modelName} is not the approved model (${c.modelDigest})`,
      );
    }
    const existing = await deps.rollouts.get(c.modelName);
    if (existing?.rolloutId === input.rolloutId)
      return { holdoutRows: existing.holdoutRows, productionVersion: existing.productionVersion };
    if (existing && LIVE_STATES.has(existing.state)) {
      throw new NonRetriableError(
        'rollout_in_progress',
        `model ${c.modelName} already has a ${existing.strategy} rollout of version ${existing.candidate.version} (run ${existing.runId}); abort it or let it finish first`,
      );
    }
    const head = await deps.registry.getHead(c.modelName);
    const production = head?.aliases[PRODUCTION_ALIAS]?.version ?? null;
    if (production !== input.expectedProduction) {
      throw new NonRetriableError(
        'production_moved',
        `production of ${c.modelName} is ${production ? `version ${production}` : 'nothing'}, but the candidate was evaluated against ${input.expectedProduction ? `version ${input.expectedProduction}` : 'no production model'}; nothing was rolled out. Start a new run.`,
      );
    }
    const { reference, rows } = await versionReference(deps, version);
    const stored = await deps.rollouts.update(c.modelName, (current) => {
      if (current?.rolloutId === input.rolloutId) return undefined;
      if (current && LIVE_STATES.has(current.state)) {
        throw new NonRetriableError('rollout_in_progress', `model ${c.modelName} already has a live rollout`);
      }
      return {
        id: ROLLOUT_DOC_ID,
        kind: 'rollout',
        modelName: c.modelName,
        rolloutId: input.rolloutId,
        runId: input.runId,
        pipeline: input.pipeline,
        approvalId: input.approvalId,
        strategy: input.strategy,
        state: 'active',
        step: -1,
        percent: 0,
        candidate: { version: c.modelVersion, digest: c.modelDigest },
        productionVersion: production,
        ...(reference ? { reference } : {}),
        holdoutRows: rows,
        agreementTolerance: input.agreementTolerance,
        startedAt: input.at,
        updatedAt: input.at,
      };
    });
    // The holdout scoring may have taken long: a cancel that came meanwhile found no rollout to
    // end, so the document just written is ended here (cancel sets cancelRequested before it looks).
    try {
      refuseEndedRun(await deps.runs.get(input.pipeline, input.runId), refuse);
    } catch (err) {
      await endLiveRollout(
        deps.rollouts,
        c.modelName,
        input.rolloutId,
        'aborted',
        (err as Error).message,
        input.at,
      );
      throw err;
    }
    return { holdoutRows: stored?.holdoutRows ?? rows, productionVersion: production };
  };
}

registerActivityFactory(startRolloutActivity, (services) =>
  startRollout({
    approvals: services.approvals,
    registry: services.registry,
    rollouts: services.rollouts,
    artifacts: services.artifacts,
    onnx: services.onnx,
    runs: services.runs,
  }),
);
