import { z } from 'zod';
import { trainingMonitorInstanceId } from '../contracts/training';
import { trainingJobId } from './jobId';
import { ValidationError } from '../errors';
import resources from '../resources.json';
import type { JobFiles } from './backends/types';
import { jobPath } from './backends/types';
import { jobIdSchema } from '../contracts/trainingJob';

/**
 * Training job-status events delivered by Azure Event Grid (the push path of `trainingMonitor`).
 *
 * A delivery is one event or an array of them, in the Event Grid schema (`eventType`, `subject`,
 * `eventTime`, `data`, `dataVersion`) or the CloudEvents 1.0 schema (`specversion`, `type`,
 * `source`, `id`, `data`). Azure Machine Learning's `RunStatusChanged` and `RunCompleted` events name
 * the job in `data.runId` (for v2 jobs the job name, which Sluice sets to the job id). An event is
 * only a reason to look at the job again: nothing in it is trusted beyond "poll job X now".
 */

export const SUBSCRIPTION_VALIDATION_EVENT = 'Microsoft.EventGrid.SubscriptionValidationEvent';
export const AZUREML_RUN_STATUS_CHANGED = 'Microsoft.MachineLearningServices.RunStatusChanged';
export const AZUREML_RUN_COMPLETED = 'Microsoft.MachineLearningServices.RunCompleted';

/** Azure ML run statuses after which nothing changes any more (compared case-insensitively). */
const FINAL_RUN_STATUSES = new Set(['completed', 'failed', 'canceled']);

/** Attempts a run may submit (the submitTraining contract's bound); used to invert trainingJobId. */
const MAX_ATTEMPTS = 10;

const eventGridEventSchema = z.object({
  id: z.string().min(1),
  eventType: z.string().min(1),
  subject: z.string(),
  eventTime: z.string().min(1),
  data: z.unknown().optional(),
  dataVersion: z.string().optional(),
  metadataVersion: z.string().optional(),
  topic: z.string().optional(),
});

const cloudEventSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  type: z.string().min(1),
  source: z.string().min(1),
  subject: z.string().optional(),
  time: z.string().optional(),
  data: z.unknown().optional(),
});

const validationDataSchema = z.object({
  validationCode: z.string().min(1),
  validationUrl: z.string().optional(),
});

/** `data` of RunStatusChanged / RunCompleted (camelCase on the wire; runStatus only on RunStatusChanged). */
const runEventDataSchema = z.object({
  runId: z.string().min(1).optional(),
  runStatus: z.string().nullish(),
  experimentId: z.string().nullish(),
  experimentName: z.string().nullish(),
  runType: z.string().nullish(),
  runTags: z.record(z.string(), z.unknown()).nullish(),
  runProperties: z.record(z.string(), z.unknown()).nullish(),
});

/** One event of a delivery, reduced to what Sluice acts on. */
export type TrainingEvent =
  | { kind: 'validation'; id: string; validationCode: string }
  | { kind: 'job'; id: string; type: string; jobId: string; status?: string }
  | { kind: 'other'; id: string; type: string };

export type EventSchemaName = 'eventgrid' | 'cloudevents';

/** Names the first bad field as `[i].path` (or `path` for a single event) in a 400 problem. */
function invalid(index: number | undefined, error: z.ZodError): ValidationError {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  const field = index === undefined ? path || '(body)' : `[${index}]${path ? `.${path}` : ''}`;
  return new ValidationError('invalid_event', `${field}: ${issue?.message ?? 'invalid'}`, { field });
}

/** The run id of `experiments/<id>/runs/<runId>`, the subject of Azure ML run events. */
function runIdFromSubject(subject: string | undefined): string | undefined {
  const m = subject ? /(?:^|\/)runs\/([^/]+)$/.exec(subject) : null;
  return m?.[1];
}

function parseOne(
  raw: unknown,
  index: number | undefined,
): { event: TrainingEvent; schema: EventSchemaName } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ValidationError('invalid_event', 'an event must be a JSON object', {
      field: index === undefined ? '(body)' : `[${index}]`,
    });
  }
  const isCloud = 'specversion' in raw;
  let id: string;
  let type: string;
  let subject: string | undefined;
  let data: unknown;
  if (isCloud) {
    const parsed = cloudEventSchema.safeParse(raw);
    if (!parsed.success) throw invalid(index, parsed.error);
    ({ id, type, subject, data } = parsed.data);
  } else {
    const parsed = eventGridEventSchema.safeParse(raw);
    if (!parsed.success) throw invalid(index, parsed.error);
    ({ id, eventType: type, subject, data } = parsed.data);
  }
  const schema: EventSchemaName = isCloud ? 'cloudevents' : 'eventgrid';
  const prefix = (path: string) => (index === undefined ? path : `[${index}].${path}`);

  if (type === SUBSCRIPTION_VALIDATION_EVENT) {
    const parsed = validationDataSchema.safeParse(data);
    if (!parsed.success) {
      throw new ValidationError('invalid_event', `${prefix('data.validationCode')}: required`, {
        field: prefix('data.validationCode'),
      });
    }
    return { event: { kind: 'validation', id, validationCode: parsed.data.validationCode }, schema };
  }
  if (type === AZUREML_RUN_STATUS_CHANGED || type === AZUREML_RUN_COMPLETED) {
    const parsed = runEventDataSchema.safeParse(data ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = prefix(['data', ...(issue?.path.map(String) ?? [])].join('.'));
      throw new ValidationError('invalid_event', `${field}: ${issue?.message ?? 'invalid'}`, { field });
    }
    const jobId = parsed.data.runId ?? runIdFromSubject(subject);
    if (!jobId) {
      throw new ValidationError('invalid_event', `${prefix('data.runId')}: the event names no run`, {
        field: prefix('data.runId'),
      });
    }
    const status = type === AZUREML_RUN_COMPLETED ? 'Completed' : (parsed.data.runStatus ?? undefined);
    return { event: { kind: 'job', id, type, jobId, ...(status ? { status } : {}) }, schema };
  }
  return { event: { kind: 'other', id, type }, schema };
}

/**
 * Parses a delivery body (already JSON-decoded): an array of events or a single event. Throws a
 * ValidationError (400) naming the first bad field, e.g. `[1].eventType`.
 */
export function parseDelivery(body: unknown): { events: TrainingEvent[]; schema?: EventSchemaName } {
  const items = Array.isArray(body) ? body : [body];
  const parsed = items.map((raw, i) => parseOne(raw, Array.isArray(body) ? i : undefined));
  return { events: parsed.map((p) => p.event), ...(parsed[0] ? { schema: parsed[0].schema } : {}) };
}

/** Whether a job event says the job reached a final state (no status at all counts as "maybe"). */
export function isFinalRunStatus(status: string | undefined): boolean {
  return status === undefined || FINAL_RUN_STATUSES.has(status.toLowerCase());
}

/** Where to deliver the wake-up for a job: the Sluice run and the monitor instance watching it. */
export interface JobOwner {
  runId: string;
  attempt: number;
  instanceId: string;
}

/**
 * The monitor instance of a job, given the run that submitted it: the job id is a pure function
 * of (run, attempt), so the attempt is found by recomputing it, never by trying instances.
 */
export function ownerOf(runId: string, jobId: string): JobOwner | undefined {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    if (trainingJobId(runId, attempt) === jobId) {
      return { runId, attempt, instanceId: trainingMonitorInstanceId(runId, attempt) };
    }
  }
  return undefined;
}

const requestRunSchema = z.object({ jobId: z.string(), runId: z.string().min(1) });

/**
 * Maps a job id back to its Sluice run through `jobs/<jobId>/request.json`, which every backend's
 * `submit` writes (write-once) with the run id before the job starts. A job Sluice did not start
 * has no such file, and an id that is not a valid job id is never used as a blob path.
 */
export function jobOwnerLookup(files: Pick<JobFiles, 'tryGetJson'>) {
  return async (jobId: string): Promise<JobOwner | undefined> => {
    if (!jobIdSchema.safeParse(jobId).success) return undefined;
    const got = await files.tryGetJson({
      container: resources.blobContainers.jobs,
      path: jobPath(jobId, 'request.json'),
    });
    const request = requestRunSchema.safeParse(got?.value);
    if (!request.success || request.data.jobId !== jobId) return undefined;
    return ownerOf(request.data.runId, jobId);
  };
}
