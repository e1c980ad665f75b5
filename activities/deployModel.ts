import type { z } from 'zod';
import { getApprovalDeps } from '../lib/approval/deps';
import type { ApprovalStore } from '../lib/approval/store';
import type { DeployModelOutput } from '../lib/contracts/deploy';
import { deployModelActivity } from '../lib/contracts/deploy';
import { NonRetriableError } from '../lib/errors';
import type { ModelRegistry } from '../lib/registry/registry';
import { PRODUCTION_ALIAS } from '../lib/serving/production';
import { getRegistry } from '../lib/serving/deps';
import { RunStore } from '../lib/runs/store';
import { getCosmos } from '../lib/storage';
import { registerActivity } from './support/define';

type Input = z.output<typeof deployModelActivity.input>;

export interface DeployDeps {
  approvals: Pick<ApprovalStore, 'getRecord'>;
  registry: Pick<ModelRegistry, 'getHead' | 'getVersion' | 'moveAlias'>;
  /** Records the deployment on the run document; false when there is no run document. */
  recordOnRun: (pipeline: string, runId: string, deployment: Record<string, unknown>) => Promise<boolean>;
  now: () => Date;
}

/**
 * Moves `production` to the approved version, after checking that the approval is approved for
 * exactly this candidate and that the registry still holds these digests. The move is ETag-
 * conditioned in the registry and names the approval; a retry finds the alias already moved and
 * changes nothing, so the alias history gets exactly one entry per deployment.
 */
export function deployModel(deps: DeployDeps) {
  return async (input: Input): Promise<DeployModelOutput> => {
    const c = input.candidate;
    const approval = await deps.approvals.getRecord(input.runId, input.approvalId);
    if (!approval)
      throw new NonRetriableError(
        'approval_not_found',
        `approval ${input.approvalId} of run ${input.runId} not found`,
      );
    if (approval.status !== 'approved') {
      throw new NonRetriableError(
        'not_approved',
        `approval ${input.approvalId} is ${approval.status}, not approved`,
      );
    }
    const a = approval.candidate;
    if (
      a.modelName !== c.modelName ||
      a.modelVersion !== c.modelVersion ||
      a.modelDigest !== c.modelDigest ||
      a.datasetDigest !== c.datasetDigest
    ) {
      throw new NonRetriableError(
        'candidate_changed',
        `the approval was given for ${a.modelName} v${a.modelVersion} (${a.modelDigest}), not for this candidate`,
      );
    }
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
    const approvers = (approval.reasons ?? []).join(' ');
    const { moved, move } = await deps.registry.moveAlias({
      modelName: c.modelName,
      alias: PRODUCTION_ALIAS,
      to: c.modelVersion,
      expectedFrom: input.expectedProduction,
      by: `approval:${input.approvalId}`,
      reason: `Run ${input.runId} of ${input.pipeline}. ${approvers}`.slice(0, 2000),
      runId: input.runId,
      approvalRef: input.approvalId,
    });
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

async function productionDeps(): Promise<DeployDeps> {
  const approvals = (await getApprovalDeps()).store;
  const registry = await getRegistry();
  const runs = new RunStore(getCosmos());
  return {
    approvals,
    registry,
    recordOnRun: async (pipeline, runId, deployment) => {
      try {
        await runs.update(pipeline, runId, (run) => ({ ...run, deployment }));
        return true;
      } catch (err) {
        if ((err as { code?: string }).code === 'run_not_found') return false;
        throw err;
      }
    },
    now: () => new Date(),
  };
}

registerActivity(deployModelActivity, async (input) => deployModel(await productionDeps())(input));
