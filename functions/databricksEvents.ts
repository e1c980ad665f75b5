import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { getServices } from '../app/services';
import { TRAINING_COMPLETED_EVENT } from '../lib/contracts/training';
import { ensureError, ValidationError } from '../lib/errors';
import { problem } from '../lib/http/problem';
import type { ArtifactStore } from '../lib/storage/blob';
import { jobOfRun } from '../lib/training/backends/databricks';
import { basicPasswordMatches, parseDatabricksNotification } from '../lib/training/databricksEvents';
import type { JobOwner } from '../lib/training/events';
import { jobOwnerLookup } from '../lib/training/events';
import { isJsonType, mediaType, withProblems } from './support/http';

/**
 * `POST /api/training/databricks-events`: Azure Databricks job notifications (a notification
 * destination of type HTTP webhook, named on every run Sluice submits by
 * DATABRICKS_WEBHOOK_DESTINATION_ID). For `jobs.on_success` / `jobs.on_failure` of a run Sluice
 * submitted, it raises `TrainingCompleted` on the monitor watching the job, which then checks the
 * run at once instead of at its next poll.
 *
 * Authentication: the function key (`?code=` in the destination's URL), and, when
 * DATABRICKS_WEBHOOK_SECRET is set, the destination's HTTP Basic password. Databricks keeps the
 * destination's password write-only, while the URL (with its key) is visible to workspace admins,
 * so the secret is the stronger of the two; both together mean a leaked URL alone is not enough.
 * Either way the event is only a wake-up: the monitor reads the run's state from Databricks itself,
 * so a forged, late or repeated notification costs one extra status check and cannot change an
 * outcome. A notification of a run Sluice did not submit is answered 202 and ignored.
 */

const MAX_BODY_BYTES = 64 * 1024;

export interface DatabricksEventsDeps {
  /** The Sluice job a Databricks run belongs to; undefined for any other run. */
  jobOfRun(runId: string): Promise<string | undefined>;
  /** The run and monitor instance of a job Sluice started. */
  ownerOfJob(jobId: string): Promise<JobOwner | undefined>;
  /** DATABRICKS_WEBHOOK_SECRET, when set. */
  secret?: string;
}

export interface DatabricksWakeData {
  jobId: string;
  status: string;
  eventId: string;
}

export type WakeDatabricksMonitor = (
  instanceId: string,
  data: DatabricksWakeData,
  context: InvocationContext,
) => Promise<void>;

export const raiseFromDatabricks: WakeDatabricksMonitor = async (instanceId, data, context) => {
  await df.getClient(context).raiseEvent(instanceId, TRAINING_COMPLETED_EVENT, data);
};

/** Also the cross-site request guard: a form or text/plain POST (no preflight) is not a notification. */
function requireJson(request: HttpRequest): void {
  const type = mediaType(request);
  if (!isJsonType(type)) {
    throw new ValidationError(
      'unsupported_media_type',
      `expected application/json, got ${type || 'no content type'}`,
      { status: 415, field: 'content-type' },
    );
  }
}

async function readBody(request: HttpRequest): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  const text = declared > MAX_BODY_BYTES ? '' : await request.text();
  if (declared > MAX_BODY_BYTES || Buffer.byteLength(text) > MAX_BODY_BYTES) {
    throw new ValidationError('body_too_large', `a notification is at most ${MAX_BODY_BYTES} bytes`, {
      status: 413,
      field: '(body)',
    });
  }
  if (!text.trim())
    throw new ValidationError('empty_body', 'the body is empty; send the notification as JSON');
  return text;
}

export function createDatabricksEventsHandler(
  getDeps: () => Promise<DatabricksEventsDeps>,
  wake: WakeDatabricksMonitor = raiseFromDatabricks,
) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    requireJson(request);
    const deps = await getDeps();
    if (deps.secret && !basicPasswordMatches(request.headers.get('authorization'), deps.secret)) {
      const refused = problem(
        401,
        'unauthorized',
        'this endpoint needs the notification destination password (HTTP Basic) set in DATABRICKS_WEBHOOK_SECRET',
        { field: 'authorization' },
      );
      return {
        ...refused,
        headers: { ...refused.headers, 'www-authenticate': 'Basic realm="sluice-databricks-events"' },
      };
    }
    const event = parseDatabricksNotification(await readBody(request));
    const eventId = `databricks:${event.eventType}:${event.runId}`;
    const ignore = (reason: string): HttpResponseInit => ({
      status: 202,
      jsonBody: { eventType: event.eventType, runId: event.runId, woken: [], ignored: [{ reason }] },
    });
    if (!event.final) return ignore(`event type ${event.eventType} is not a run's end`);
    const jobId = await deps.jobOfRun(event.runId);
    if (!jobId) {
      context.log(`databricks events: run ${event.runId} was not submitted by Sluice; ignored`);
      return ignore('not a Sluice training run');
    }
    const owner = await deps.ownerOfJob(jobId);
    if (!owner) return ignore(`job ${jobId} has no run to wake`);
    try {
      await wake(owner.instanceId, { jobId, status: event.eventType, eventId }, context);
    } catch (err) {
      // Not started yet (its first poll is immediate) or already finished: nothing is lost.
      const reason = `the monitor ${owner.instanceId} did not take the event: ${ensureError(err).message}`;
      context.warn(`databricks events: ${eventId}: ${reason}`);
      return ignore(reason);
    }
    context.log(`databricks events: ${eventId}: woke ${owner.instanceId} (job ${jobId})`);
    return {
      status: 200,
      jsonBody: {
        eventType: event.eventType,
        runId: event.runId,
        woken: [{ jobId, runId: owner.runId, instanceId: owner.instanceId }],
        ignored: [],
      },
    };
  };
}

/** Runs are found through the index the databricks backend writes at submit, jobs through request.json. */
export function databricksEventsDeps(store: ArtifactStore, secret?: string): DatabricksEventsDeps {
  return {
    jobOfRun: (runId) => jobOfRun(store, runId),
    ownerOfJob: jobOwnerLookup(store),
    ...(secret ? { secret } : {}),
  };
}

app.http('databricksEvents', {
  route: 'api/training/databricks-events',
  methods: ['POST'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(
    createDatabricksEventsHandler(async () => {
      const services = await getServices();
      return databricksEventsDeps(services.artifacts, services.config.DATABRICKS_WEBHOOK_SECRET);
    }),
  ),
});
