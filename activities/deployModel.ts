import type { z } from 'zod';
import type { ApprovalRecord } from '../lib/contracts/approvalRecord';
import type { ApprovalStore } from '../lib/approval/store';
import type { DeployModelOutput } from '../lib/contracts/deploy';
import { deployModelActivity } from '../lib/contracts/deploy';
import { requireApprovedFor } from '../lib/approval/approved';
import { NonRetriableError } from '../lib/errors';
import type { AliasMove } from '../lib/registry/records';
import type { ModelRegistry } from '../lib/registry/registry';
import { PRODUCTION_ALIAS } from '../lib/registry/records';
import type { RunStore } from '../lib/runs/store';
import type { Services } from '../lib/services';
import { startNudge } from '../lib/checks/nudge';
import { checkDeps } from '../lib/services';
import { registerActivityFactory } from './support/define';
import type { RunDocument } from '../lib/contracts/runDocument';
import { refuseEndedRun } from './setRolloutStep';

type Input = z.output<typeof deployModelActivity.input>;

export interface DeployDeps {
  approvals: Pick<ApprovalStore, 'getRecord' | 'updateRecord'>;
  registry: Pick<ModelRegistry, 'getHead' | 'getVersion' | 'moveAlias' | 'getModel'>;
  /** Records the deployment on the run document; false when there is no run document. */
  recordOnRun: (pipeline: string, runId: string, deployment: Record<string, unknown>) => Promise<boolean>;
  now: () => Date;
  /**
   * The run document (undefined: none). A run canceled, asked to be, or ended is refused
   * (`run_canceled`): a cancel must never be followed by a production move. Absent: not checked.
   */
  readRun?: (pipeline: string, runId: string) => Promise<RunDocument | undefined>;
  /**
   * Claims the run for this deployment in one ETag-conditioned write of the run document that
   * refuses (`run_canceled`) a run canceled, asked to be, or ended; a cancel after the claim is
   * refused (`run_deploying`, functions/support/cancel.ts). So the run check and the alias move are
   * one decision: a cancel lands either before the claim (nothing moves) or after it (refused).
   * When set, it replaces `readRun`'s plain check.
   */
  claimRun?: (pipeline: string, runId: string, deploymentId: string, at: string) => Promise<void>;
  /** Test seam: runs after the run is claimed and the approval consumed, right before the alias move. */
  beforeMove?: () => Promise<void>;
}

/**
 * Moves `production` to the approved version, after checking that the approval is approved for
 * exactly this candidate and that the registry still holds these digests. The move is ETag-
 * conditioned in the registry and names the approval; a retry finds the alias already moved and
 * changes nothing, so the alias history gets exactly one entry per deployment.
 *
 * An approval is consumed by exactly one deployment: before the move, the record's `consumedBy` is
 * set to this deployment's id (ETag-conditioned). A retry or replay of the same deployment finds
 * its own id; a restarted or duplicated run (another id) is refused with `approval_consumed`, as is
 * an approval that an older deployment already used (its move names the approval in the history).
 */
export function deployModel(deps: DeployDeps) {
  return async (input: Input): Promise<DeployModelOutput> => {
    const c = input.candidate;
    if (deps.claimRun) {
      await deps.claimRun(input.pipeline, input.runId, input.deploymentId, deps.now().toISOString());
    } else if (deps.readRun) {
      refuseEndedRun(await deps.readRun(input.pipeline, input.runId), 'production was not moved');
    }
    const approval = requireApprovedFor(
      await deps.approvals.getRecord(input.runId, input.approvalId),
      input,
      c,
    );
    const version = await deps.registry.getVersion(c.modelName, c.modelVersion);
    if (!version)
      throw new NonRetriableError(
        'version_not_found',
        `model ${c.modelName} has no version ${c.modelVersion}`,
      );
    if (version.modelDigest !== c.modelDigest || version.datasetDigest !== c.datasetDigest) {
      throw new NonRetriableError(
        'candidate_changed',
        `registry version ${c.modelVersion} of ${c.modelName} has digest ${version.modelDigest}, but ${c.modelDigest} was approved`,
      );
    }
    await consume(deps, input, approval);
    await deps.beforeMove?.();
    const approvers = (approval.reasons ?? []).join(' ');
    let moved: boolean;
    let move: AliasMove | undefined;
    try {
      ({ moved, move } = await deps.registry.moveAlias({
        modelName: c.modelName,
        alias: PRODUCTION_ALIAS,
        to: c.modelVersion,
        expectedFrom: input.expectedProduction,
        by: `approval:${input.approvalId}`,
        reason: `Run ${input.runId} of ${input.pipeline}. ${approvers}`.slice(0, 2000),
        runId: input.runId,
        approvalRef: input.approvalId,
      }));
    } catch (err) {
      if ((err as { code?: string }).code !== 'alias_conflict') throw err;
      // Someone moved production (a rollback) while this run waited: its evidence compared the
      // candidate with a model that is no longer in production.
      const head = await deps.registry.getHead(c.modelName);
      const now = head?.aliases[PRODUCTION_ALIAS]?.version;
      throw new NonRetriableError(
        'production_moved',
        `production of ${c.modelName} moved to ${now ? `version ${now}` : 'nothing'} after this run was evaluated against ${input.expectedProduction ? `version ${input.expectedProduction}` : 'no production model'}; nothing was deployed. Start a new run to compare with what is in production now.`,
        { cause: err },
      );
    }
    const deployedAt = move?.at ?? deps.now().toISOString();
    const previous = move?.to === c.modelVersion ? (move.from ?? null) : input.expectedProduction;
    const recordedOnRun = await deps.recordOnRun(input.pipeline, input.runId, {
      modelName: c.modelName,
      version: c.modelVersion,
      modelDigest: c.modelDigest,
      previous,
      alias: PRODUCTION_ALIAS,
      aliasMoveSeq: move?.seq ?? null,
      approvalId: input.approvalId,
      deployedAt,
    });
    return {
      modelName: c.modelName,
      version: c.modelVersion,
      previous,
      moved,
      aliasMoveSeq: move?.seq ?? null,
      deployedAt,
      recordedOnRun,
    };
  };
}

/** Marks the approval consumed by this deployment, or refuses if another deployment used it. */
async function consume(deps: DeployDeps, input: Input, approval: ApprovalRecord): Promise<void> {
  const refuse = (by: string, at?: string) =>
    new NonRetriableError(
      'approval_consumed',
      `approval ${input.approvalId} was already used by deployment ${by}${at ? ` at ${at}` : ''}; an approval moves production once. A restarted or duplicated run cannot reuse it: start a new run.`,
    );
  if (approval.consumedBy) {
    if (approval.consumedBy.deploymentId !== input.deploymentId)
      throw refuse(approval.consumedBy.deploymentId, approval.consumedBy.at);
    return;
  }
  // Approvals consumed before `consumedBy` existed: their move in the alias history names them.
  const model = await deps.registry.getModel(input.candidate.modelName);
  const earlier = model?.aliasHistory.find(
    (m) => m.alias === PRODUCTION_ALIAS && m.approvalRef === input.approvalId,
  );
  if (earlier) throw refuse(`of run ${earlier.runId ?? input.runId} (alias move ${earlier.seq})`, earlier.at);
  const at = deps.now().toISOString();
  await deps.approvals.updateRecord(input.runId, input.approvalId, (r) => {
    if (!r.consumedBy)
      return { ...r, consumedBy: { deploymentId: input.deploymentId, runId: input.runId, at } };
    if (r.consumedBy.deploymentId !== input.deploymentId)
      throw refuse(r.consumedBy.deploymentId, r.consumedBy.at);
    return r;
  });
}

/** The deployment's dependencies from the app's services; the deployment is recorded on the run document. */
export function deployDeps(
  services: Pick<Services, 'approvals' | 'registry' | 'now'> & { runs: Pick<RunStore, 'update' | 'get'> },
): DeployDeps {
  const { runs } = services;
  return {
    approvals: services.approvals,
    registry: services.registry,
    recordOnRun: async (pipeline, runId, deployment) => {
      try {
        await runs.update(pipeline, runId, (run) => ({ ...run, deployment }));
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === 'run_not_found') return false;
        throw err;
      }
    },
    now: services.now,
    readRun: (pipeline, runId) => runs.get(pipeline, runId),
    claimRun: async (pipeline, runId, deploymentId, at) => {
      try {
        await runs.update(pipeline, runId, (run) => {
          refuseEndedRun(run, 'production was not moved');
          if (run.deploying?.deploymentId === deploymentId) return run;
          return { ...run, deploying: { deploymentId, at } };
        });
      } catch (err) {
        // No run document (a deployment outside a run): nothing to claim, as readRun checks nothing.
        if ((err as { code?: string }).code !== 'run_not_found') throw err;
      }
    },
  };
}

registerActivityFactory(deployModelActivity, (services) => {
  const deploy = deployModel(deployDeps(services));
  return async (input: Input): Promise<DeployModelOutput> => {
    const out = await deploy(input);
    // The checks waiting on this model are decided now, not at the next timer tick (not awaited).
    startNudge(() => checkDeps(services), { aliasMoved: out.modelName });
    return out;
  };
});
