import type { z } from 'zod';
import { loadPipelineVersionActivity } from '../lib/contracts/pipeline';
import { NonRetriableError } from '../lib/errors';
import type { PipelineDefinition } from '../lib/pipelines/definition';
import { modelNameOf } from '../lib/pipelines/definition';
import type { PipelineStore } from '../lib/pipelines/store';
import { registerActivityFactory } from './support/define';

/**
 * Reads the pinned pipeline version, typed: the sections the orchestration needs, already parsed
 * when the version was stored. A missing version stops the run (not retried).
 */
export function loadPipelineVersion(deps: { pipelines: Pick<PipelineStore<PipelineDefinition>, 'get'> }) {
  return async ({
    pipeline,
    version,
  }: z.output<typeof loadPipelineVersionActivity.input>): Promise<
    z.input<typeof loadPipelineVersionActivity.output>
  > => {
    const found = await deps.pipelines.get(pipeline, version);
    if (!found)
      throw new NonRetriableError('pipeline_not_found', `pipeline ${pipeline} has no version ${version}`);
    const d = found.definition;
    return {
      modelName: modelNameOf(d),
      training: d.training,
      evaluation: d.evaluation,
      approval: d.approval,
      ...(d.goldenSet ? { goldenSet: d.goldenSet } : {}),
    };
  };
}

registerActivityFactory(loadPipelineVersionActivity, (services) => loadPipelineVersion(services));
