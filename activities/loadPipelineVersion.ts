import type { z } from 'zod';
import { loadPipelineVersionActivity } from '../lib/contracts/pipeline';
import { NonRetriableError } from '../lib/errors';
import type { PipelineDefinition } from '../lib/pipelines/definition';
import { modelNameOf } from '../lib/pipelines/definition';
import type { PipelineStore } from '../lib/pipelines/store';
import { registerActivityFactory } from './support/define';

/**
 * Reads the pinned pipeline version, typed: the sections the orchestration needs, already parsed
 * when the version was stored. A missing version, or a stored one that no longer parses, stops the
 * run (not retried: reading it again gives the same answer).
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
    const parsed = loadPipelineVersionActivity.output.safeParse({
      modelName: modelNameOf(d),
      training: d.training,
      evaluation: d.evaluation,
      approval: d.approval,
      ...(d.goldenSet ? { goldenSet: d.goldenSet } : {}),
      ...(d.deployment?.window ? { deploymentWindow: d.deployment.window } : {}),
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join('.') || '(root)';
      throw new NonRetriableError(
        'pipeline_invalid',
        `pipeline ${pipeline} version ${version} no longer parses: ${field}: ${issue?.message ?? 'invalid'}`,
      );
    }
    return parsed.data;
  };
}

registerActivityFactory(loadPipelineVersionActivity, (services) => loadPipelineVersion(services));
