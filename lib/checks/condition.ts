import type { RunDocument } from '../contracts/runDocument';
import { PRODUCTION_ALIAS } from '../registry/records';
import type { ModelDetail } from '../registry/registry';
import { approvedProductionVersions } from '../registry/rollback';
import { terminalRunStatuses } from '../runs/document';
import type { CheckCondition } from './records';

/** Where a condition's facts come from: Sluice's own registry and run store (the source of truth). */
export interface ConditionSources {
  getModel(name: string): Promise<ModelDetail | undefined>;
  findRun(id: string): Promise<RunDocument | undefined>;
  /** Origin of Sluice's links, without a trailing slash. */
  publicBaseUrl: string;
}

export type ConditionState =
  | { decided: false; message: string; evidenceUrl: string }
  | { decided: true; result: 'succeeded' | 'failed'; code: string; message: string; evidenceUrl: string };

const runUrl = (base: string, id: string) => `${base}/api/runs/${encodeURIComponent(id)}`;
const modelUrl = (base: string, name: string) => `${base}/api/models/${encodeURIComponent(name)}`;

function endedWithout(run: RunDocument): string {
  const why = run.stopReason ? ` (${run.stopReason}${run.reason ? `: ${run.reason}` : ''})` : '';
  return `run ${run.id} ended ${run.status}${why}`;
}

/**
 * Whether the condition holds, cannot hold any more, or is still open. Reads only Sluice's records:
 * a model version counts as approved and deployed when an alias move that names an approval put it
 * in `production` and production still serves it; a run counts when its document says `succeeded`.
 */
export async function evaluateCondition(
  condition: CheckCondition,
  sources: ConditionSources,
): Promise<ConditionState> {
  const base = sources.publicBaseUrl;
  if ('run' in condition) {
    const evidenceUrl = runUrl(base, condition.run);
    const run = await sources.findRun(condition.run);
    if (!run) {
      return {
        decided: true,
        result: 'failed',
        code: 'run_not_found',
        message: `Sluice has no run ${condition.run}`,
        evidenceUrl,
      };
    }
    if (run.status === 'succeeded') {
      return {
        decided: true,
        result: 'succeeded',
        code: 'condition_met',
        message: `run ${run.id} of pipeline ${run.pipeline} succeeded`,
        evidenceUrl,
      };
    }
    if (terminalRunStatuses.has(run.status)) {
      return {
        decided: true,
        result: 'failed',
        code: `run_${run.status}`,
        message: endedWithout(run),
        evidenceUrl,
      };
    }
    return { decided: false, message: `run ${run.id} is ${run.status}`, evidenceUrl };
  }

  const { model: name, version } = condition;
  const evidenceUrl = modelUrl(base, name);
  const model = await sources.getModel(name);
  if (!model) {
    return {
      decided: true,
      result: 'failed',
      code: 'model_not_found',
      message: `Sluice's registry has no model ${name}`,
      evidenceUrl,
    };
  }
  const serving = model.head.aliases[PRODUCTION_ALIAS]?.version;
  const approval = approvedProductionVersions(model.aliasHistory).get(version);
  if (approval !== undefined && serving === version) {
    return {
      decided: true,
      result: 'succeeded',
      code: 'condition_met',
      message: `model ${name} version ${version} was approved (approval ${approval}) and is in production`,
      evidenceUrl,
    };
  }
  if (approval !== undefined) {
    return {
      decided: true,
      result: 'failed',
      code: 'version_superseded',
      message: `model ${name} version ${version} was approved, but production now serves ${serving === undefined ? 'no version' : `version ${serving}`}`,
      evidenceUrl,
    };
  }
  const found = model.versions.find((v) => v.version === version);
  if (!found) {
    return {
      decided: false,
      message: `model ${name} has no version ${version} yet (latest ${model.head.latestVersion})`,
      evidenceUrl,
    };
  }
  const run = await sources.findRun(found.runId);
  if (run && terminalRunStatuses.has(run.status)) {
    // The run that made the version ended, and it did not put the version in production.
    return {
      decided: true,
      result: 'failed',
      code: 'version_not_deployed',
      message: `model ${name} version ${version} was not deployed: ${endedWithout(run)}`,
      evidenceUrl: runUrl(base, run.id),
    };
  }
  return {
    decided: false,
    message: run
      ? `model ${name} version ${version} waits: run ${run.id} is ${run.status}`
      : `model ${name} version ${version} is not approved yet`,
    evidenceUrl: run ? runUrl(base, run.id) : evidenceUrl,
  };
}
