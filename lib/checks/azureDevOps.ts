import { ValidationError } from '../errors';
import type { CallOptions } from './http';
import { callWithRetry } from './http';
import type { AzureDevOpsCallback, CheckCondition } from './records';
import { azureDevOpsCallbackSchema, checkConditionSchema } from './records';

/**
 * The Azure DevOps side of a check: reading what an "Invoke REST API / Azure Function" check sends
 * in callback (asynchronous) mode, and calling back. Wire shapes, from Microsoft's "Invoke Azure
 * Function / REST API checks" page (docs/delivery.md cites it):
 *
 * - the check's headers: PlanUrl, ProjectId, HubName, PlanId, JobId, TimelineId, TaskInstanceId,
 *   AuthToken (the job access token, valid 48 h);
 * - the decision: POST {PlanUrl}/{ProjectId}/_apis/distributedtask/hubs/{HubName}/plans/{PlanId}/events
 *   ?api-version=2.0-preview.1 with `{"name":"TaskCompleted","taskId":TaskInstanceId,"jobId":JobId,
 *   "result":"succeeded"|"failed"}`, authenticated with the token (HTTP Basic, empty user name);
 * - a log line in the check's panel: POST .../plans/{PlanId}/timelines/{TimelineId}/records/{JobId}
 *   /feed?api-version=4.1 with `{"value":[lines],"count":n}`.
 */

const HEADERS: Record<keyof AzureDevOpsCallback, string> = {
  planUrl: 'PlanUrl',
  projectId: 'ProjectId',
  hubName: 'HubName',
  planId: 'PlanId',
  jobId: 'JobId',
  timelineId: 'TimelineId',
  taskInstanceId: 'TaskInstanceId',
  authToken: 'AuthToken',
};

export interface HeaderSource {
  get(name: string): string | null;
}

/**
 * The callback coordinates (headers, or the same names in the body when a check was configured to
 * send them there) and the condition (the rest of the body). Anything missing or malformed is a
 * ValidationError naming the header or field.
 */
export function parseAzureDevOpsCheck(
  headers: HeaderSource,
  body: unknown,
): { callback: AzureDevOpsCallback; condition: CheckCondition } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('invalid_check_body', 'the body must be a JSON object naming the condition', {
      field: '(body)',
    });
  }
  const rest: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  const raw: Record<string, string> = {};
  for (const [key, header] of Object.entries(HEADERS) as [keyof AzureDevOpsCallback, string][]) {
    const fromBody = rest[header];
    delete rest[header];
    const value = headers.get(header) ?? (typeof fromBody === 'string' ? fromBody : undefined);
    if (!value?.trim()) {
      throw new ValidationError(
        'missing_check_header',
        `the ${header} header is missing: configure the check to send ${header} (docs/delivery.md)`,
        { field: header },
      );
    }
    raw[key] = value.trim();
  }
  const callback = azureDevOpsCallbackSchema.safeParse(raw);
  if (!callback.success) {
    const issue = callback.error.issues[0]!;
    const header = HEADERS[issue.path[0] as keyof AzureDevOpsCallback] ?? String(issue.path[0]);
    throw new ValidationError('invalid_check_header', `${header}: ${issue.message}`, { field: header });
  }
  const condition = checkConditionSchema.safeParse(rest);
  if (!condition.success) {
    throw new ValidationError(
      'invalid_check_condition',
      'the body must name exactly one condition: {"model": "<name>", "version": <n>} or {"run": "<run id>"}',
      { field: '(body)' },
    );
  }
  return { callback: callback.data, condition: condition.data };
}

/** Whether `host` is on the list (`*.example.com` matches any subdomain of example.com). */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const h = host.toLowerCase();
  return allowed.some((entry) => {
    const a = entry.trim().toLowerCase();
    if (!a) return false;
    return a.startsWith('*.') ? h.endsWith(a.slice(1)) && h.length > a.length - 1 : h === a;
  });
}

/**
 * The job's token is sent only to an allowed Azure DevOps host, over https (plain http only on
 * loopback, for local fakes): a request naming any other PlanUrl is refused before anything is
 * recorded or called.
 */
export function requireAllowedPlanUrl(planUrl: string, allowed: readonly string[]): void {
  const url = new URL(planUrl);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (!hostAllowed(url.hostname, allowed) || (url.protocol !== 'https:' && !loopback)) {
    throw new ValidationError(
      'plan_url_not_allowed',
      `PlanUrl ${url.origin} is not an allowed Azure DevOps host (AZURE_DEVOPS_ALLOWED_HOSTS)`,
      { field: 'PlanUrl', status: 403 },
    );
  }
}

function planBase(cb: AzureDevOpsCallback): string {
  const seg = encodeURIComponent;
  return `${cb.planUrl.replace(/\/+$/, '')}/${seg(cb.projectId)}/_apis/distributedtask/hubs/${seg(cb.hubName)}/plans/${seg(cb.planId)}`;
}

function authHeaders(cb: AzureDevOpsCallback): Record<string, string> {
  return {
    authorization: `Basic ${Buffer.from(`:${cb.authToken}`).toString('base64')}`,
    'content-type': 'application/json',
    accept: 'application/json',
  };
}

/** The longest line the check panel shows; longer lines are cut. */
const MAX_LINE = 1024;

export class AzureDevOpsClient {
  constructor(private readonly options: CallOptions = {}) {}

  /** Appends lines to the check's log in the stage's checks panel. */
  async appendLog(cb: AzureDevOpsCallback, lines: string[], options: CallOptions = {}): Promise<void> {
    const value = lines.map((l) => (l.length > MAX_LINE ? `${l.slice(0, MAX_LINE - 3)}...` : l));
    const url = `${planBase(cb)}/timelines/${encodeURIComponent(cb.timelineId)}/records/${encodeURIComponent(cb.jobId)}/feed?api-version=4.1`;
    await callWithRetry(
      'azure_devops',
      url,
      { method: 'POST', headers: authHeaders(cb), body: JSON.stringify({ value, count: value.length }) },
      { ...this.options, ...options },
    );
  }

  /** The decision: completes the check's task as succeeded or failed. */
  async taskCompleted(cb: AzureDevOpsCallback, result: 'succeeded' | 'failed'): Promise<void> {
    const url = `${planBase(cb)}/events?api-version=2.0-preview.1`;
    const body = { name: 'TaskCompleted', taskId: cb.taskInstanceId, jobId: cb.jobId, result };
    await callWithRetry(
      'azure_devops',
      url,
      { method: 'POST', headers: authHeaders(cb), body: JSON.stringify(body) },
      this.options,
    );
  }
}
