/**
 * Durable HTTP (`context.df.callHttp`) through the compiled devhost hosting the fixture app
 * test/fixtures/durable-http, against a local HTTP server in this process: the request made by the
 * host, the 202-and-Location pattern followed as the extension does (Retry-After honoured, else the
 * host.json sleep), the DurableHttpResponse returned, deterministic on replay and across a restart,
 * and a ManagedIdentityTokenSource that cannot get a token failing the call naming the resource.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DurableApp, eventTypes, startDurableApp, type StatusBody } from './support/durableApp';

interface Seen {
  method: string;
  path: string;
  body: string;
  headers: IncomingMessage['headers'];
  at: number;
}

let app: DurableApp;
let server: Server;
let base: string;
const seen: Seen[] = [];
/** Per job: how many more status polls answer 202. */
const pending = new Map<string, number>();

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      seen.push({ method: req.method ?? '', path: url.pathname, body, headers: req.headers, at: Date.now() });
      const job = /^\/jobs\/([^/]+)$/.exec(url.pathname);
      const status = /^\/jobs\/([^/]+)\/status$/.exec(url.pathname);
      if (job && req.method === 'POST') {
        // accepted: poll the (relative) Location after 1 s
        pending.set(job[1]!, Number(url.searchParams.get('polls') ?? '1'));
        res.writeHead(202, { Location: `/jobs/${job[1]}/status`, 'Retry-After': '1' }).end();
      } else if (status) {
        const left = pending.get(status[1]!) ?? 0;
        pending.set(status[1]!, left - 1);
        // still running: no Retry-After, so the host.json sleep (300 ms) applies
        if (left > 0) res.writeHead(202, { Location: `${base}/jobs/${status[1]}/status` }).end();
        else
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ job: status[1] }));
      } else if (url.pathname === '/moved') {
        res.writeHead(302, { Location: '/echo' }).end();
      } else if (url.pathname === '/echo') {
        res
          .writeHead(201, { 'content-type': 'text/plain', 'x-seen': String(req.headers['x-test'] ?? '') })
          .end(`${req.method} ${body}`);
      } else {
        res.writeHead(404).end('no such thing');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  app = await startDurableApp({ app: 'test/fixtures/durable-http', persistent: true });
}, 90_000);

afterAll(async () => {
  await app?.stop();
  await new Promise((r) => server?.close(r));
});

const requestsFor = (prefix: string): Seen[] => seen.filter((s) => s.path.startsWith(prefix));

function historyOf(s: StatusBody): Record<string, unknown>[] {
  return s.historyEvents ?? [];
}

describe('callHttp', () => {
  it('makes the request and returns status, headers and content; the response is replayed, not refetched', async () => {
    const started = await app.start('fetchThenStamp', {
      method: 'POST',
      url: `${base}/echo`,
      body: { hello: 'world' },
      headers: { 'x-test': 'abc' },
    });
    const done = await app.waitDone(started.id, 20_000, 'showHistory=true&showHistoryOutput=true');
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toEqual({
      statusCode: 201,
      content: 'POST {"hello":"world"}',
      location: null,
      contentType: 'text/plain',
      stamped: 'stamped 201',
    });
    const echo = requestsFor('/echo');
    expect(echo).toHaveLength(1); // the episode after the activity replayed the recorded response
    expect(echo[0]!.headers['x-test']).toBe('abc');
    const completed = historyOf(done).filter((e) => e.EventType === 'TaskCompleted');
    expect(completed.map((e) => e.FunctionName)).toEqual(['BuiltIn::HttpActivity', 'stamp']);
  }, 60_000);

  it('follows 202 + Location: waits Retry-After, then the host.json sleep, polls with GET until the final answer', async () => {
    const started = await app.start('fetchThenStamp', { method: 'POST', url: `${base}/jobs/a?polls=1` });
    const done = await app.waitDone(started.id, 30_000, 'showHistory=true');
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toMatchObject({ statusCode: 200, content: '{"job":"a"}', stamped: 'stamped 200' });
    const calls = [...requestsFor('/jobs/a')].map((s) => `${s.method} ${s.path}`);
    expect(calls).toEqual(['POST /jobs/a', 'GET /jobs/a/status', 'GET /jobs/a/status']);
    // the library's ids: call, timer, call, timer, call, then the activity
    const h = historyOf(done);
    expect(
      h
        .filter((e) => e.EventType === 'TaskCompleted' || e.EventType === 'TimerCreated')
        .map((e) => (e.EventType === 'TimerCreated' ? 'timer' : String(e.FunctionName))),
    ).toEqual([
      'BuiltIn::HttpActivity',
      'timer',
      'BuiltIn::HttpActivity',
      'timer',
      'BuiltIn::HttpActivity',
      'stamp',
    ]);
    // each poll timer is Retry-After (1 s), then the host.json sleep (300 ms), after the episode that got the 202
    const timers = h.filter((e) => e.EventType === 'TimerCreated');
    const delays = timers.map((t) => Date.parse(String(t.FireAt)) - Date.parse(String(t.Timestamp)));
    expect(delays).toEqual([1000, 300]);
    // and no poll was sent before its timer was due
    const gets = requestsFor('/jobs/a/status');
    expect(gets[0]!.at).toBeGreaterThanOrEqual(Date.parse(String(timers[0]!.FireAt)));
    expect(gets[1]!.at).toBeGreaterThanOrEqual(Date.parse(String(timers[1]!.FireAt)));
  }, 60_000);

  it('follows a redirect as .NET does (a POST answered 302 becomes a GET of the new location)', async () => {
    const started = await app.start('fetchThenStamp', { method: 'POST', url: `${base}/moved`, body: 'x' });
    const done = await app.waitDone(started.id, 20_000);
    expect(done.output).toMatchObject({ statusCode: 201, content: 'GET ' });
    expect(requestsFor('/moved').map((s) => s.method)).toEqual(['POST']);
  }, 60_000);

  it('returns the 202 itself when polling is disabled', async () => {
    const started = await app.start('fetchThenStamp', {
      method: 'POST',
      url: `${base}/jobs/b`,
      polling: false,
    });
    const done = await app.waitDone(started.id, 20_000);
    expect(done.output).toMatchObject({ statusCode: 202, content: '' });
    expect(requestsFor('/jobs/b').map((s) => s.method)).toEqual(['POST']);
  }, 60_000);

  it('polls two calls of a Task.all independently', async () => {
    await fetch(`${base}/jobs/c?polls=2`, { method: 'POST' });
    await fetch(`${base}/jobs/d?polls=0`, { method: 'POST' });
    const started = await app.start('fetchBoth', [`${base}/jobs/c/status`, `${base}/jobs/d/status`]);
    const done = await app.waitDone(started.id, 30_000);
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toEqual(['200:{"job":"c"}', '200:{"job":"d"}']);
    expect(requestsFor('/jobs/c/status')).toHaveLength(3);
    expect(requestsFor('/jobs/d/status')).toHaveLength(1);
  }, 60_000);

  it('a pending poll survives a restart of devhost and completes once', async () => {
    const started = await app.start('fetchThenStamp', { method: 'POST', url: `${base}/jobs/e?polls=0` });
    await app.waitUntil(started.id, (s) => eventTypes(s).includes('TimerCreated'), 20_000);
    await app.restart();
    const done = await app.waitDone(started.id, 30_000);
    expect(done.output).toMatchObject({ statusCode: 200, content: '{"job":"e"}' });
    // the POST was recorded before the restart, so it is not sent again; the poll ran after the restart
    // (at least once, as any activity whose completion was not recorded yet)
    const calls = requestsFor('/jobs/e').map((s) => `${s.method} ${s.path}`);
    expect(calls[0]).toBe('POST /jobs/e');
    expect(calls.filter((c) => c === 'POST /jobs/e')).toHaveLength(1);
    expect(calls.slice(1).length).toBeGreaterThanOrEqual(1);
    expect(new Set(calls.slice(1))).toEqual(new Set(['GET /jobs/e/status']));
  }, 90_000);

  it('fails the call, naming the resource, when the Azure credential chain has no token', async () => {
    const resource = 'https://management.core.windows.net';
    const started = await app.start('fetchWithIdentity', { url: `${base}/echo`, resource });
    const done = await app.waitDone(started.id, 60_000);
    expect(done.runtimeStatus).toBe('Completed');
    const error = (done.output as { error: string }).error;
    expect(error).toContain(`could not get a token for resource '${resource}'`);
    expect(error).toContain('DefaultAzureCredential');
    expect(requestsFor('/echo').filter((s) => s.headers.authorization !== undefined)).toHaveLength(0);
  }, 90_000);

  it('fails the orchestration with a message naming a url that is not absolute', async () => {
    const started = await app.start('fetchThenStamp', { method: 'GET', url: '/relative' });
    const done = await app.waitDone(started.id, 20_000);
    expect(done.runtimeStatus).toBe('Failed');
    expect(String(done.output)).toContain("the url '/relative' is not an absolute URL");
  }, 60_000);
});
