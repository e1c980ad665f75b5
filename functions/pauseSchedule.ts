import { app } from '@azure/functions';
import { withServices } from '../app/services';
import { withProblems } from './support/http';
import { scheduleSwitchHandler } from './support/scheduleSwitch';

/**
 * `POST /api/pipelines/{name}/schedule/pause` (function key, JSON content type, optional
 * `{"reason": "..."}`): pauses the schedule; the timer records every slot while paused as skipped (reason `paused`), so resuming never starts a missed slot late.
 */
export const pauseSchedule = scheduleSwitchHandler(true);

app.http('pauseSchedule', {
  route: 'api/pipelines/{name}/schedule/pause',
  methods: ['POST'],
  authLevel: 'function',
  handler: withProblems(withServices(pauseSchedule)),
});
