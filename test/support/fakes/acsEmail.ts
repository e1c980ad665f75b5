import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the Azure Communication Services Email data plane, speaking the documented
 * wire format of api-version 2023-03-31: `POST /emails:send` answers 202 with an EmailSendResult
 * body (`{id, status, error}`), `Operation-Location` and `Retry-After`; `GET
 * /emails/operations/{id}` reports Running until it completes. A caller-supplied `Operation-Id`
 * makes the send idempotent. Errors use the `{error:{code,message}}` body and `x-ms-error-code`.
 */

export interface FakeEmail {
  operationId: string;
  authorization: string;
  body: {
    senderAddress: string;
    recipients: { to: { address: string; displayName?: string }[] };
    content: { subject: string; plainText?: string; html?: string };
    userEngagementTrackingDisabled?: boolean;
  };
}

interface Operation {
  id: string;
  polls: number;
  outcome: 'Succeeded' | 'Failed';
}

export interface FakeAcs {
  url: string;
  emails: FakeEmail[];
  /** Status polls served, per operation id. */
  polls: Map<string, number>;
  /** The next N requests to `emails:send` fail with this status (e.g. 429, 503). */
  failNextSends(status: number, count?: number): void;
  close(): Promise<void>;
}

export interface FakeAcsOptions {
  /** Polls answered `Running` before the operation completes. */
  runningPolls?: number;
  /** Value of Retry-After (seconds) on non-terminal answers. */
  retryAfter?: number;
  /** Token the fake accepts; anything else is 401. */
  acceptToken?: string;
}

export async function startFakeAcs(options: FakeAcsOptions = {}): Promise<FakeAcs> {
  const runningPolls = options.runningPolls ?? 2;
  const retryAfter = String(options.retryAfter ?? 1);
  const accept = options.acceptToken ?? 'fake-acs-token';
  const emails: FakeEmail[] = [];
  const ops = new Map<string, Operation>();
  const polls = new Map<string, number>();
  let failures: { status: number; count: number } | undefined;
  let base = '';

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-ms-request-id': randomUUID(),
      ...headers,
    });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string) =>
    send(res, status, { error: { code, message } }, { 'x-ms-error-code': code });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', base);
    if (!url.searchParams.get('api-version'))
      return error(res, 400, 'MissingApiVersionParameter', 'api-version is required');
    const auth = req.headers.authorization ?? '';
    if (auth !== `Bearer ${accept}`)
      return error(res, 401, 'Unauthorized', 'missing or invalid bearer token');

    if (req.method === 'POST' && url.pathname === '/emails:send') {
      if (failures && failures.count > 0) {
        failures.count--;
        return error(
          res,
          failures.status,
          failures.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable',
          'injected failure',
        );
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        return error(res, 415, 'UnsupportedMediaType', 'content-type must be application/json');
      }
      let body: FakeEmail['body'];
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FakeEmail['body'];
      } catch {
        return error(res, 400, 'InvalidRequest', 'body is not JSON');
      }
      const to = body?.recipients?.to;
      if (!body?.senderAddress) return error(res, 400, 'InvalidSenderAddress', 'senderAddress is required');
      if (!Array.isArray(to) || to.length === 0 || to.some((r) => !r?.address?.includes('@'))) {
        return error(res, 400, 'InvalidRecipients', 'recipients.to needs at least one address');
      }
      if (!body.content?.subject || !(body.content.plainText || body.content.html)) {
        return error(res, 400, 'InvalidContent', 'content needs a subject and plainText or html');
      }
      const header = req.headers['operation-id'];
      const id = typeof header === 'string' && header ? header : randomUUID();
      if (!ops.has(id)) {
        ops.set(id, {
          id,
          polls: 0,
          outcome: to.some((r) => r.address.endsWith('@bounce.test')) ? 'Failed' : 'Succeeded',
        });
        emails.push({ operationId: id, authorization: auth, body });
      }
      return send(
        res,
        202,
        { id, status: 'Running', error: null },
        {
          'operation-location': `${base}/emails/operations/${id}?api-version=${url.searchParams.get('api-version')}`,
          'retry-after': retryAfter,
        },
      );
    }

    const m = /^\/emails\/operations\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && m) {
      const op = ops.get(decodeURIComponent(m[1] ?? ''));
      if (!op) return error(res, 404, 'NotFound', 'no such operation');
      op.polls++;
      polls.set(op.id, op.polls);
      if (op.polls <= runningPolls)
        return send(res, 200, { id: op.id, status: 'Running', error: null }, { 'retry-after': retryAfter });
      if (op.outcome === 'Failed') {
        return send(res, 200, {
          id: op.id,
          status: 'Failed',
          error: {
            code: 'EmailDroppedAllRecipientsSuppressed',
            message: 'Message dropped because all recipients were suppressed',
          },
        });
      }
      return send(res, 200, { id: op.id, status: 'Succeeded', error: null });
    }
    return error(res, 404, 'NotFound', `${req.method} ${url.pathname}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => error(res, 500, 'InternalError', String(e)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    emails,
    polls,
    failNextSends(status, count = 1) {
      failures = { status, count };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
