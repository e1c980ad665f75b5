import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { TRAINING_COMPLETED_EVENT } from '../lib/contracts/training';
import { ValidationError, ensureError } from '../lib/errors';
import { problem } from '../lib/http/problem';
import resources from '../lib/resources.json';
import type { ArtifactStore } from '../lib/storage/blob';
import { getServices } from '../app/services';
import type { JobOwner } from '../lib/training/events';
import { isFinalRunStatus, jobOwnerLookup, parseDelivery } from '../lib/training/events';
import { mediaType, withProblems } from './support/http';

/**
 * `POST /api/events/training`: Azure Event Grid deliveries of training job-status events (Azure ML
 * `RunStatusChanged` / `RunCompleted`), in the Event Grid or the CloudEvents 1.0 schema, one event
 * or a batch. For a job Sluice started, it raises `TrainingCompleted` on the monitor instance
 * watching the job, which then checks the job at once instead of at its next poll.
 *
 * The event is only a wake-up: the monitor reads the job's state from the backend itself, so a
 * forged, late or repeated event costs one extra status check and cannot change an outcome.
 *
 * Also answers both subscription handshakes: the Event Grid validation event (`validationResponse`)
 * and the CloudEvents `OPTIONS` abuse-protection request (`WebHook-Allowed-Origin`).
 */

/** Event Grid delivers at most 1 MB per request (one event or a batch). */
const MAX_BODY_BYTES = 1024 * 1024;
/**
 * Most events one delivery may carry (413 beyond): Event Grid's own largest batch
 * (`maxEventsPerBatch` is 1 to 5,000), so no subscription setting can exceed it. Bounds the work a
 * single POST can cause, with the one listing of started jobs below.
 */
export const MAX_EVENTS_PER_DELIVERY = 5000;
/** Job lookups (one blob read each) in flight at once for one delivery. */
const LOOKUP_CONCURRENCY = 32;
/** From this many distinct jobs in a delivery, one listing of the started jobs replaces most reads. */
const LIST_FROM_JOBS = 16;
const JSON_TYPES = ['application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json'];
/** A DNS name such as `eventgrid.azure.net` (wildcards allowed), echoed back only when it looks like one. */
const ORIGIN = /^[A-Za-z0-9*](?:[A-Za-z0-9.*-]{0,251}[A-Za-z0-9])?$/;

export interface TrainingEventsDeps {
  /** The run and monitor instance of a job Sluice started; undefined for any other job. */
  lookup(jobId: string): Promise<JobOwner | undefined>;
  /**
   * Every job id Sluice has a folder for (one listing), so a delivery naming many jobs reads only
   * the request files of those that exist. Optional: without it every job is looked up.
   */
  startedJobs?(): Promise<Set<string>>;
}

export interface WakeData {
  jobId: string;
  status?: string;
  eventId: string;
}

/**
 * Raises the wake-up event. The Durable client throws for an instance that does not exist (yet)
 * and resolves for one that already finished (the extension's 410), where the event is dropped.
 */
export type WakeMonitor = (instanceId: string, data: WakeData, context: InvocationContext) => Promise<void>;

export const raiseTrainingCompleted: WakeMonitor = async (instanceId, data, context) => {
  await df.getClient(context).raiseEvent(instanceId, TRAINING_COMPLETED_EVENT, data);
};

async function readEvents(request: HttpRequest): Promise<unknown> {
  const type = mediaType(request);
  // Also the cross-site request guard: a form or text/plain POST (no preflight) is not a delivery.
  if (!JSON_TYPES.includes(type)) {
    throw new ValidationError(
      'unsupported_media_type',
      `expected ${JSON_TYPES.join(' or ')}, got ${type || 'no content type'}`,
      {
        status: 415,
        field: 'content-type',
      },
    );
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  const text = declared > MAX_BODY_BYTES ? '' : await request.text();
  if (declared > MAX_BODY_BYTES || Buffer.byteLength(text) > MAX_BODY_BYTES) {
    throw new ValidationError('body_too_large', `a delivery is at most ${MAX_BODY_BYTES} bytes`, {
      status: 413,
      field: '(body)',
    });
  }
  if (!text.trim()) throw new ValidationError('empty_body', 'the body is empty; send the events as JSON');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ValidationError('invalid_json', `the body is not valid JSON: ${(err as Error).message}`, {
      field: '(body)',
    });
  }
}

/** The CloudEvents 1.0 webhook handshake: consent to deliveries from the requesting origin. */
function abuseProtection(request: HttpRequest): HttpResponseInit {
  const origin = request.headers.get('webhook-request-origin')?.trim();
  if (!origin || !ORIGIN.test(origin)) {
    return problem(
      400,
      'invalid_handshake',
      'OPTIONS needs a WebHook-Request-Origin header with a host name',
      {
        field: 'webhook-request-origin',
      },
    );
  }
  return {
    status: 200,
    headers: { allow: 'POST, OPTIONS', 'webhook-allowed-origin': origin, 'webhook-allowed-rate': '*' },
  };
}

/** Looks every job up, at most LOOKUP_CONCURRENCY at a time. */
async function lookupAll(
  jobIds: string[],
  lookup: TrainingEventsDeps['lookup'],
): Promise<Map<string, JobOwner | undefined>> {
  const owners = new Map<string, JobOwner | undefined>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobIds.length) {
      const jobId = jobIds[next++]!;
      owners.set(jobId, await lookup(jobId));
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, jobIds.length) }, worker));
  return owners;
}

export function createTrainingEventsHandler(
  getDeps: () => Promise<TrainingEventsDeps>,
  wake: WakeMonitor = raiseTrainingCompleted,
) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    if (request.method === 'OPTIONS') return abuseProtection(request);

    const { events, schema } = parseDelivery(await readEvents(request));
    const validation = events.find((e) => e.kind === 'validation');
    if (validation) {
      context.log(`training events: answered the Event Grid subscription validation ${validation.id}`);
      return { status: 200, jsonBody: { validationResponse: validation.validationCode } };
    }

    if (events.length > MAX_EVENTS_PER_DELIVERY) {
      throw new ValidationError(
        'too_many_events',
        `a delivery carries at most ${MAX_EVENTS_PER_DELIVERY} events (Event Grid's largest batch); this one has ${events.length}`,
        { status: 413, field: '(body)' },
      );
    }

    const deps = await getDeps();
    const woken: { jobId: string; runId: string; instanceId: string }[] = [];
    const ignored: { id: string; jobId?: string; reason: string }[] = [];
    // Each distinct final job is looked up once, all of them concurrently (bounded), before any wake.
    const finalJobs = new Set<string>();
    for (const e of events) if (e.kind === 'job' && isFinalRunStatus(e.status)) finalJobs.add(e.jobId);
    let candidates = [...finalJobs];
    if (deps.startedJobs && candidates.length >= LIST_FROM_JOBS) {
      const started = await deps.startedJobs();
      candidates = candidates.filter((j) => started.has(j));
    }
    const owners = await lookupAll(candidates, deps.lookup);
    const seen = new Set<string>();
    for (const event of events) {
      if (event.kind !== 'job') {
        // (a validation event never gets here: it is answered above)
        const type = event.kind === 'other' ? event.type : 'validation';
        ignored.push({ id: event.id, reason: `event type ${type} is not handled` });
        continue;
      }
      const { id, jobId, status } = event;
      if (!isFinalRunStatus(status)) {
        ignored.push({ id, jobId, reason: `status ${status} is not final` });
        continue;
      }
      // Several events of one job in a batch wake its monitor once.
      if (seen.has(jobId)) {
        ignored.push({ id, jobId, reason: 'the job was already woken by this delivery' });
        continue;
      }
      seen.add(jobId);
      const owner = owners.get(jobId);
      if (!owner) {
        context.log(`training events: ${id}: job ${jobId} was not started by Sluice; ignored`);
        ignored.push({ id, jobId, reason: 'not a Sluice training job' });
        continue;
      }
      try {
        await wake(owner.instanceId, { jobId, ...(status ? { status } : {}), eventId: id }, context);
        woken.push({ jobId, runId: owner.runId, instanceId: owner.instanceId });
        context.log(`training events: ${id}: woke ${owner.instanceId} (job ${jobId} ${status ?? 'changed'})`);
      } catch (err) {
        // Not started yet: its first poll is immediate, so nothing is lost.
        const reason = `the monitor ${owner.instanceId} did not take the event: ${ensureError(err).message}`;
        context.warn(`training events: ${id}: ${reason}`);
        ignored.push({ id, jobId, reason });
      }
    }
    return {
      // 202: nothing was woken (unknown jobs, other events); Event Grid counts both as delivered.
      status: woken.length > 0 ? 200 : 202,
      jsonBody: { schema, received: events.length, woken, ignored },
    };
  };
}

/** Jobs are found by the request file Sluice writes into each job's folder in Blob Storage. */
export function trainingEventsDeps(store: ArtifactStore): TrainingEventsDeps {
  return {
    lookup: jobOwnerLookup(store),
    startedJobs: async () => {
      const jobs = new Set<string>();
      for await (const jobId of store.listFolders(resources.blobContainers.jobs)) jobs.add(jobId);
      return jobs;
    },
  };
}

app.http('trainingEvents', {
  route: 'api/events/training',
  methods: ['POST', 'OPTIONS'],
  authLevel: 'function',
  extraInputs: [df.input.durableClient()],
  handler: withProblems(
    createTrainingEventsHandler(async () => trainingEventsDeps((await getServices()).artifacts)),
  ),
});
