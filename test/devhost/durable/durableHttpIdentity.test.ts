/**
 * Durable HTTP (`context.df.callHttp`) where the Azure credential chain has a token and where a 202's
 * Retry-After is longer than the short-timer limit, through the compiled devhost hosting
 * test/fixtures/durable-http. The managed identity is the App Service one (`IDENTITY_ENDPOINT` +
 * `IDENTITY_HEADER`, which @azure/identity's ManagedIdentityCredential reads), served by this process on
 * loopback with the documented wire format; the short-timer limit is lowered through devhost's settings
 * so a 30 s Retry-After needs a long (split) durable timer, and devhost is killed and restarted while
 * the instance waits on it.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DurableApp, eventTypes, startDurableApp, type StatusBody } from './support/durableApp';

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  at: number;
}

const identityHeader = 'loopback-identity-secret';
let app: DurableApp;
let server: Server;
let base: string;
const seen: Seen[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        at: Date.now(),
      });
      if (url.pathname === '/msi/token') {
        // App Service managed identity (api-version 2019-08-01): the secret header, then a token for `resource`.
        if (req.headers['x-identity-header'] !== identityHeader) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad identity header"}');
          return;
        }
        const resource = url.searchParams.get('resource') ?? '';
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            access_token: `token-for:${resource}`,
            expires_on: String(Math.floor(Date.now() / 1000) + 3600),
            resource,
            token_type: 'Bearer',
          }),
        );
      } else if (url.pathname === '/secure') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(String(req.headers.authorization ?? 'none'));
      } else if (url.pathname === '/slow' && req.method === 'POST') {
        res.writeHead(202, { Location: '/slow/status', 'Retry-After': '30' }).end();
      } else if (url.pathname === '/slow/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}');
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  app = await startDurableApp({
    app: 'test/fixtures/durable-http',
    persistent: true,
    detached: true,
    env: {
      IDENTITY_ENDPOINT: `${base}/msi/token`,
      IDENTITY_HEADER: identityHeader,
      DEVHOST_DURABLE_MAX_SHORT_TIMER: '00:00:02',
      DEVHOST_DURABLE_LONG_TIMER_INTERVAL: '00:00:01',
    },
  });
}, 90_000);

afterAll(async () => {
  await app?.stop();
  await new Promise((r) => server?.close(r));
});

const requestsFor = (path: string): Seen[] => seen.filter((s) => s.path === path);

describe('callHttp with a managed identity that has a token', () => {
  it('asks the identity endpoint for the source resource and sends the token as Bearer', async () => {
    const resource = 'https://management.core.windows.net';
    const started = await app.start('fetchWithIdentity', { url: `${base}/secure`, resource });
    const done = await app.waitDone(started.id, 60_000);
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: { statusCode: 200 } });
    const asked = requestsFor('/msi/token');
    expect(asked.length).toBeGreaterThanOrEqual(1);
    expect(asked[0]!.query.get('resource')).toBe(resource);
    expect(asked[0]!.query.get('api-version')).toBe('2019-08-01');
    const secure = requestsFor('/secure');
    expect(secure).toHaveLength(1);
    expect(secure[0]!.headers.authorization).toBe(`Bearer token-for:${resource}`);
  }, 90_000);
});

describe('202 polling with a Retry-After beyond the short-timer limit', () => {
  it('waits on a long durable timer (split into sub-timers), across a SIGKILL and restart, then polls once', async () => {
    const started = await app.start('fetchThenStamp', { method: 'POST', url: `${base}/slow` });
    // The 202 is recorded and the first sub-timer armed: kill every process of devhost mid-wait.
    await app.waitUntil(started.id, (s) => eventTypes(s).includes('TimerCreated'), 30_000);
    await app.devhost.killGroup();
    await app.restart();
    const done: StatusBody = await app.waitDone(started.id, 60_000, 'showHistory=true');
    expect(done).toMatchObject({
      runtimeStatus: 'Completed',
      output: { statusCode: 200, content: '{"done":true}', stamped: 'stamped 200' },
    });
    expect(requestsFor('/slow').map((s) => s.method)).toEqual(['POST']);
    const polls = requestsFor('/slow/status');
    expect(polls.length).toBeGreaterThanOrEqual(1);
    const timers = (done.historyEvents ?? []).filter((e) => e.EventType === 'TimerCreated');
    // Retry-After 30 s with a 2 s short-timer limit: sub-timers of at most 2 s, the last one at +30 s.
    expect(timers.length).toBeGreaterThan(1);
    for (const t of timers) {
      expect(Date.parse(String(t.FireAt)) - Date.parse(String(t.Timestamp))).toBeLessThanOrEqual(2000);
    }
    const finalFire = Math.max(...timers.map((t) => Date.parse(String(t.FireAt))));
    const first = timers[0]!;
    expect(finalFire - Date.parse(String(first.Timestamp))).toBe(30_000);
    // No poll before the Retry-After was over.
    for (const p of polls) expect(p.at).toBeGreaterThanOrEqual(finalFire);
  }, 120_000);
});
