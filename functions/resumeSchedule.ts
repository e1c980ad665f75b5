import { app } from '@azure/functions';
import { withServices } from '../app/services';
import { withProblems } from './support/http';
import { scheduleSwitchHandler } from './support/scheduleSwitch';

/**
 * `POST /api/pipelines/{name}/schedule/resume` (function key, JSON content type, optional
 * `{"reason": "..."}`): resumes a paused schedule from its next slot.
 */
export const resumeSchedule = scheduleSwitchHandler(false);

app.http('resumeSchedule', {
  route: 'api/pipelines/{name}/schedule/resume',
  methods: ['POST'],
  authLevel: 'function',
  handler: withProblems(withServices(resumeSchedule)),
});
