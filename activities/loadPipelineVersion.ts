import { loadPipelineVersionActivity } from '../lib/contracts/pipeline';
import { NonRetriableError } from '../lib/errors';
import { modelNameOf } from '../lib/pipelines/definition';
import { getRunDeps } from '../lib/runs/deps';
import { registerActivity } from './support/define';

/** Reads the pinned pipeline version; a missing version stops the run (not retried). */
registerActivity(loadPipelineVersionActivity, async ({ pipeline, version }) => {
  const deps = await getRunDeps();
  const found = await deps.pipelines.get(pipeline, version);
  if (!found)
    throw new NonRetriableError('pipeline_not_found', `pipeline ${pipeline} has no version ${version}`);
  const d = found.definition;
  return {
    modelName: modelNameOf(d),
    training: d.training as Record<string, unknown>,
    evaluation: d.evaluation as Record<string, unknown>,
    approval: d.approval as Record<string, unknown>,
    ...(d.goldenSet ? { goldenSet: d.goldenSet } : {}),
  };
});
