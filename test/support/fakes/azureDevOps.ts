import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the parts of Azure DevOps an asynchronous "Invoke REST API / Azure Function"
 * check calls back into, speaking the documented wire format on loopback HTTP. The collection URL
 * (PlanUrl) is `http://127.0.0.1:<port>/org/`.
 *
 *   POST /org/{projectId}/_apis/distributedtask/hubs/{hubName}/plans/{planId}/events?api-version=2.0-preview.1
 *        {"name":"TaskCompleted","taskId","jobId","result":"succeeded"|"failed"} → 200 {}
 *   POST /org/{projectId}/_apis/distributedtask/hubs/{hubName}/plans/{planId}/timelines/{timelineId}
 *        /records/{recordId}/feed?api-version=4.1   {"value":[lines],"count":n} → 200 {}
 *
 * Authentication is the job's access token, sent as HTTP Basic with an empty user name (or as a
 * bearer token): none → 401; a token of another plan → 403; an expired token → 401. A plan's
 * TaskCompleted is accepted once; a second one for the same task is 409 (an assumption: the docs do
 * not say how Azure DevOps answers a repeat).
 * `failNext(n, status)` makes the next n calls fail with that status (e.g. 503), for retry tests;
 * `delayNext(n, ms)` holds the next n answers back that long (a slow Azure DevOps), then answers them
 * as usual.
 */

export interface IssuedCheck {
  PlanUrl: string;
  ProjectId: string;
  HubName: string;
  PlanId: string;
  JobId: string;
  TimelineId: string;
  TaskInstanceId: string;
  AuthToken: string;
}

export interface CompletedEvent {
  planId: string;
  taskId: string;
  jobId: string;
  result: string;
}

export interface FeedLine {
  planId: string;
  timelineId: string;
  recordId: string;
  line: string;
}

export interface FakeAzureDevOps {
  collectionUrl: string;
  /** A new check as Azure DevOps would start it: the headers it sends, with a fresh job token. */
  startCheck(): IssuedCheck;
  /** Makes a token dead (as 48 h after the job started). */
  expireToken(token: string): void;
  failNext(count: number, status: number): void;
  delayNext(count: number, ms: number): void;
  events: CompletedEvent[];
  feed: FeedLine[];
  /** Every request's method, path and status, in order. */
  requests: { method: string; path: string; status: number }[];
  stop(): Promise<void>;
}

const PREFIX = '/org/';

export async function startFakeAzureDevOps(): Promise<FakeAzureDevOps> {
  const tokens = new Map<string, { planId: string; expired: boolean }>();
  const completed = new Set<string>();
  const events: CompletedEvent[] = [];
  const feed: FeedLine[] = [];
  const requests: FakeAzureDevOps['requests'] = [];
  let failures: { count: number; status: number } = { count: 0, status: 503 };
  let delays: { count: number; ms: number } = { count: 0, ms: 0 };

  const tokenOf = (req: IncomingMessage): string | undefined => {
    const auth = req.headers.authorization ?? '';
    if (auth.startsWith('Bearer ')) return auth.slice(7);
    if (auth.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon >= 0 ? decoded.slice(colon + 1) : undefined;
    }
    return undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string): Promise<number> => {
    const send = (status: number, json: unknown): number => {
      requests.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
      return status;
    };
    if (delays.count > 0) {
      const { ms } = delays;
      delays = { ...delays, count: delays.count - 1 };
      await new Promise((r) => setTimeout(r, ms));
    }
    if (failures.count > 0) {
      failures = { ...failures, count: failures.count - 1 };
      return send(failures.status, { message: 'injected failure' });
    }
    const url = new URL(req.url ?? '/', 'http://fake');
    const m =
      /^\/org\/([^/]+)\/_apis\/distributedtask\/hubs\/([^/]+)\/plans\/([^/]+)\/(events|timelines\/([^/]+)\/records\/([^/]+)\/feed)$/.exec(
        url.pathname,
      );
    if (req.method !== 'POST' || !m) return send(404, { message: `no route ${req.method} ${url.pathname}` });
    const [, , , planId, kind, timelineId, recordId] = m as unknown as string[];
    const token = tokenOf(req);
    const known = token ? tokens.get(token) : undefined;
    if (!token || !known || known.expired) {
      return send(401, { message: 'TF400813: The user is not authorized to access this resource.' });
    }
    if (known.planId !== planId) return send(403, { message: 'the token is not valid for this plan' });
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return send(400, { message: 'the body is not JSON' });
    }
    if (kind === 'events') {
      if (url.searchParams.get('api-version') !== '2.0-preview.1')
        return send(400, { message: 'api-version' });
      const { name, taskId, jobId, result } = json;
      if (name !== 'TaskCompleted' || typeof taskId !== 'string' || typeof jobId !== 'string') {
        return send(400, { message: 'expected a TaskCompleted event with taskId and jobId' });
      }
      if (result !== 'succeeded' && result !== 'failed')
        return send(400, { message: `bad result ${String(result)}` });
      const key = `${planId}/${taskId}`;
      if (completed.has(key)) return send(409, { message: 'the task has already completed' });
      completed.add(key);
      events.push({ planId, taskId, jobId, result });
      return send(200, {});
    }
    const value = json.value;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string') || json.count !== value.length) {
      return send(400, { message: 'expected {"value": [lines], "count": n}' });
    }
    for (const line of value as string[])
      feed.push({ planId, timelineId: timelineId!, recordId: recordId!, line });
    return send(200, {});
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const collectionUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PREFIX}`;

  return {
    collectionUrl,
    startCheck: () => {
      const planId = randomUUID();
      const token = `job-token-${randomUUID()}`;
      tokens.set(token, { planId, expired: false });
      return {
        PlanUrl: collectionUrl,
        ProjectId: randomUUID(),
        HubName: 'build',
        PlanId: planId,
        JobId: randomUUID(),
        TimelineId: randomUUID(),
        TaskInstanceId: randomUUID(),
        AuthToken: token,
      };
    },
    expireToken: (token) => {
      const t = tokens.get(token);
      if (t) t.expired = true;
    },
    failNext: (count, status) => {
      failures = { count, status };
    },
    delayNext: (count, ms) => {
      delays = { count, ms };
    },
    events,
    feed,
    requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
