import { isNonRetriable } from '../errors';
import { PRODUCTION_ALIAS } from '../registry/records';
import type { ModelRegistry } from '../registry/registry';
import type { RunStore } from '../runs/store';
import type { MlflowClient } from './client';
import { MlflowRejected } from './client';

/**
 * Sluice's production alias copied to the MLflow registry after every move (deployments and
 * rollbacks), and a hand-made move of the MLflow alias reported, never followed (docs/mlflow.md).
 * The state lives on the model's head tags, so `GET /api/models/{name}` and `sluice models` show it:
 * - `mlflow`: `in sync (alias on v3 = Sluice v7)`, `diverged (alias on v5, Sluice production v7 =
 *   MLflow v6)`, or `pending (…)` while the version Sluice deployed is not in MLflow yet;
 * - `mlflow.alias_seq`: the production move (its `seq` in the alias history) last copied.
 */
export const MLFLOW_STATUS_TAG = 'mlflow';
export const MLFLOW_ALIAS_SEQ_TAG = 'mlflow.alias_seq';

export interface AliasSyncDeps {
  registry: Pick<ModelRegistry, 'listModels' | 'getHead' | 'getVersion' | 'setTags'>;
  runs: Pick<RunStore, 'get'>;
  mlflow: Pick<MlflowClient, 'setAlias' | 'getModelVersionByAlias'>;
  /** The MLflow alias that copies Sluice's production (MLFLOW_PRODUCTION_ALIAS). */
  alias: string;
}

export interface AliasSync {
  model: string;
  state: 'moved' | 'in_sync' | 'diverged' | 'pending' | 'failed';
  status?: string;
}

/**
 * The MLflow model and version a Sluice version was mirrored as: read from the run document of the
 * run that registered it (its mirror stores them before it sets the alias).
 */
async function mirroredAs(
  deps: AliasSyncDeps,
  modelName: string,
  version: number,
): Promise<{ name: string; version: string } | undefined> {
  const v = await deps.registry.getVersion(modelName, version);
  const pipeline = v?.tags.pipeline;
  if (!v || !pipeline) return undefined;
  return (await deps.runs.get(pipeline, v.runId))?.mlflow?.model;
}

/**
 * One model: when production moved since the last copy (a deployment or a rollback), the MLflow
 * alias is set to the MLflow version of the new production; otherwise the MLflow alias is read and
 * compared. MLflow's alias is last-write-wins with no history, so a difference found between two
 * Sluice moves is someone's hand: it is reported as `diverged` and left alone. Writes the head tags
 * only when they change.
 */
export async function syncAlias(deps: AliasSyncDeps, modelName: string): Promise<AliasSync> {
  const head = await deps.registry.getHead(modelName);
  const production = head?.aliases[PRODUCTION_ALIAS];
  if (!head || !production) return { model: modelName, state: 'in_sync' };
  const tag = async (tags: Record<string, string>) => {
    if (Object.entries(tags).some(([k, v]) => head.tags[k] !== v))
      await deps.registry.setTags(modelName, tags);
  };
  const sluice = production.version;
  const target = await mirroredAs(deps, modelName, sluice);
  if (!target) {
    const status = `pending (Sluice production v${sluice} is not in the MLflow registry yet)`;
    await tag({ [MLFLOW_STATUS_TAG]: status });
    return { model: modelName, state: 'pending', status };
  }
  const inSync = `in sync (alias ${deps.alias} on v${target.version} = Sluice v${sluice})`;
  if (head.tags[MLFLOW_ALIAS_SEQ_TAG] !== String(production.seq)) {
    await deps.mlflow.setAlias(target.name, deps.alias, target.version);
    await tag({ [MLFLOW_ALIAS_SEQ_TAG]: String(production.seq), [MLFLOW_STATUS_TAG]: inSync });
    return { model: modelName, state: 'moved', status: inSync };
  }
  let current: string | undefined;
  try {
    current = String((await deps.mlflow.getModelVersionByAlias(target.name, deps.alias)).version);
  } catch (err) {
    if (!(err instanceof MlflowRejected && err.errorCode === 'RESOURCE_DOES_NOT_EXIST')) throw err;
  }
  if (current === target.version) {
    await tag({ [MLFLOW_STATUS_TAG]: inSync });
    return { model: modelName, state: 'in_sync', status: inSync };
  }
  const status = `diverged (${current === undefined ? `alias ${deps.alias} removed` : `alias on v${current}`}, Sluice production v${sluice} = MLflow v${target.version})`;
  await tag({ [MLFLOW_STATUS_TAG]: status });
  return { model: modelName, state: 'diverged', status };
}

/** Every model with a production version, at most `limit` per tick; one model's failure stops no other. */
export async function syncAliases(deps: AliasSyncDeps, limit = 50): Promise<AliasSync[]> {
  const models = (await deps.registry.listModels()).filter((m) => m.aliases[PRODUCTION_ALIAS] !== undefined);
  const out: AliasSync[] = [];
  for (const m of models.slice(0, limit)) {
    try {
      out.push(await syncAlias(deps, m.modelName));
    } catch (err) {
      const e = err as Error & { code?: string };
      out.push({
        model: m.modelName,
        state: 'failed',
        status: `${isNonRetriable(err) ? 'refused' : 'unavailable'}: ${e.code ?? ''} ${e.message}`.slice(
          0,
          500,
        ),
      });
    }
  }
  return out;
}
