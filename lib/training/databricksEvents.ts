import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from '../errors';
import { parseDatabricksJson } from './backends/databricksApi';

/**
 * Azure Databricks job notifications, delivered by a notification destination of type HTTP
 * webhook: one JSON object per event,
 *
 *   {"event_type": "jobs.on_success", "workspace_id": "...", "run": {"run_id": "..."},
 *    "job": {"job_id": "...", "name": "..."}}
 *
 * (`task` and `run.parent_run_id` only on task-level notifications). Event types: `jobs.on_start`,
 * `jobs.on_success`, `jobs.on_failure`, `jobs.on_duration_warning_threshold_exceeded`. Like an Event
 * Grid event for Azure ML, a notification is only a reason to look at the run again now: nothing in
 * it is trusted beyond "run X may have changed".
 */

export const DATABRICKS_FINAL_EVENTS = new Set(['jobs.on_success', 'jobs.on_failure']);

const id = z.union([z.string().regex(/^\d{1,20}$/), z.number().int().nonnegative()]).transform(String);

export const databricksNotificationSchema = z.object({
  event_type: z.string().min(1).max(100),
  workspace_id: z.union([z.string(), z.number()]).optional(),
  run: z.object({ run_id: id, parent_run_id: id.optional() }),
  job: z.object({ job_id: id.optional(), name: z.string().optional() }).optional(),
  task: z.object({ task_key: z.string() }).optional(),
});

export interface DatabricksNotification {
  eventType: string;
  /** The job run (the parent of a task run when the notification is a task's). */
  runId: string;
  final: boolean;
}

/** Parses a notification body (text); a ValidationError (400) names the first bad field. */
export function parseDatabricksNotification(text: string): DatabricksNotification {
  let raw: unknown;
  try {
    raw = parseDatabricksJson(text);
  } catch (err) {
    throw new ValidationError('invalid_json', `the body is not valid JSON: ${(err as Error).message}`, {
      field: '(body)',
    });
  }
  const parsed = databricksNotificationSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.map(String).join('.') || '(body)';
    throw new ValidationError('invalid_notification', `${field}: ${issue?.message ?? 'invalid'}`, { field });
  }
  const n = parsed.data;
  return {
    eventType: n.event_type,
    runId: n.run.parent_run_id ?? n.run.run_id,
    final: DATABRICKS_FINAL_EVENTS.has(n.event_type),
  };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Whether an `Authorization: Basic …` header carries `secret` as its password (the user name is
 * not checked: the destination's user name is a label). Compared in constant time.
 */
export function basicPasswordMatches(header: string | null | undefined, secret: string): boolean {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  return timingSafeEqual(digest(decoded.slice(colon + 1)), digest(secret));
}
