import { z } from 'zod';
import { ValidationError } from '../errors';
import type { PipelineDefinition } from './definition';
import type { PipelineStore, ScheduleState } from './store';

/** Body of `POST /api/pipelines/{name}/schedule/pause|resume` (the body may be empty). */
export const scheduleSwitchBodySchema = z
  .object({ reason: z.string().trim().max(500, 'at most 500 characters').default('') })
  .strict();

/**
 * Pauses or resumes a pipeline's schedule: the one code path of the API and the console. Refuses a
 * pipeline that does not exist (404) or has no schedule (409), naming which. Who switched it is the
 * caller the platform reports, never a body field.
 */
export async function switchSchedule(
  pipelines: Pick<PipelineStore<PipelineDefinition>, 'get' | 'setSchedulePaused'>,
  input: { name: string; paused: boolean; by: string; reason: string; now: Date },
): Promise<ScheduleState> {
  const latest = await pipelines.get(input.name);
  if (!latest) {
    throw new ValidationError('pipeline_not_found', `no pipeline named ${input.name}`, {
      status: 404,
      field: 'name',
    });
  }
  if (!latest.definition.schedule) {
    throw new ValidationError(
      'no_schedule',
      `pipeline ${input.name} has no schedule (version ${latest.version}); there is nothing to ${input.paused ? 'pause' : 'resume'}`,
      { status: 409, field: 'name' },
    );
  }
  return pipelines.setSchedulePaused(input.name, {
    paused: input.paused,
    by: input.by,
    reason: input.reason,
    now: input.now,
  });
}
