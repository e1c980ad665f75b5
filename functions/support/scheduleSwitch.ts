import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { requesterOf } from '../../lib/approval/principal';
import { ValidationError } from '../../lib/errors';
import { zodProblem } from '../../lib/http/problem';
import { scheduleSwitchBodySchema, switchSchedule } from '../../lib/pipelines/pause';
import type { Services } from '../../lib/services';
import { requireJsonContentType } from './http';

/** `POST /api/pipelines/{name}/schedule/pause` and `.../resume`: one handler, two functions. */
export const scheduleSwitchHandler =
  (paused: boolean) =>
  (deps: Pick<Services, 'pipelines' | 'now'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    requireJsonContentType(request);
    const text = await request.text();
    let raw: unknown = {};
    if (text.trim()) {
      try {
        raw = JSON.parse(text) as unknown;
      } catch {
        throw new ValidationError('invalid_json', 'The body must be JSON: {"reason": "..."} or empty.', {
          field: '(body)',
        });
      }
    }
    if (typeof raw === 'object' && raw !== null && 'by' in raw) {
      throw new ValidationError(
        'by_not_accepted',
        'Who switched the schedule is the caller the platform reports, never a body field: remove "by".',
        { field: 'by' },
      );
    }
    const parsed = scheduleSwitchBodySchema.safeParse(raw);
    if (!parsed.success) return zodProblem(parsed.error);
    const state = await switchSchedule(deps.pipelines, {
      name: request.params.name ?? '',
      paused,
      by: requesterOf((h) => request.headers.get(h)),
      reason: parsed.data.reason,
      now: deps.now(),
    });
    return {
      status: 200,
      jsonBody: {
        pipeline: state.name,
        paused: state.paused,
        by: state.by,
        at: state.at,
        reason: state.reason,
      },
    };
  };
