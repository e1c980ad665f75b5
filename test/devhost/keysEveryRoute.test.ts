/**
 * Issue 13, "devhost is locked like Azure": the `--keys` tests cover every route including the Durable
 * API. The app routes are read from devhost's own listing (`GET /admin/functions`), so a new route is
 * covered without touching this file; the Durable HTTP API routes are the URLs devhost hands the app's
 * `DurableClient` plus the collection routes of durable-host-spec §9.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { compileRoute } from '../../devhost/http/routes';
import { startDevhost, type RunningDevhost } from '../support/devhost';

const MASTER = 'mk-every-route';
const FUNCTION_KEY = 'fk-every-route';
const SYSTEM_KEY = 'sk-every-route';
const keysArg = `master=${MASTER},default=${FUNCTION_KEY},durabletask_extension=${SYSTEM_KEY}`;

interface ListedFunction {
  name: string;
  trigger: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
}

interface CallableRoute {
  name: string;
  path: string;
  methods: string[];
  authLevel: string;
}

// The empty string last: the console's root route is `{ignored:maxlength(0)?}`, which only '' fits.
const samples = ['1', 'x1', '0f8fafc0-2d11-4b35-a1f2-6d0e0c2a5e77', 'true', 'abc', 'a.csv', ''];

/** A concrete path for a route template: each parameter gets the first sample its constraints accept. */
function samplePath(displayPath: string): string {
  const compiled = compileRoute(displayPath);
  let path = displayPath;
  for (const param of compiled.parameters) {
    const value = samples.find((v) => param.constraints.every((c) => c.test(v)));
    if (value === undefined) throw new Error(`no sample value fits {${param.name}} of ${displayPath}`);
    path = path.replace(/\{[^{}]*\}/, value);
  }
  if (!compiled.match(path)) throw new Error(`could not build a path for ${displayPath}: add a sample`);
  return path;
}

async function listRoutes(host: RunningDevhost): Promise<CallableRoute[]> {
  const res = await fetch(`${host.url}/admin/functions`, { headers: { 'x-functions-key': MASTER } });
  expect(res.status).toBe(200);
  const listed = (await res.json()) as ListedFunction[];
  return listed
    .filter((fn) => fn.route !== undefined)
    .map((fn) => ({
      name: fn.name,
      path: samplePath(fn.route!),
      methods: fn.methods && fn.methods.length > 0 ? fn.methods : ['GET', 'POST'],
      authLevel: (fn.authLevel ?? 'function').toLowerCase(),
    }));
}

async function call(url: string, method: string, key?: string, body?: string): Promise<number> {
  const res = await fetch(url, {
    method,
    headers: {
      ...(key === undefined ? {} : { 'x-functions-key': key }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(30_000),
  });
  const answer = await res.arrayBuffer();
  // devhost refuses a key with an empty 401, as Azure does; a handler's own 401 (the approval page
  // for an unknown token) has a body and means the function ran.
  return res.status === 401 && answer.byteLength > 0 ? 4010 : res.status;
}

/** Every app route: no key or a wrong one is 401 unless anonymous; each key opens exactly its levels. */
async function checkAppRoutes(host: RunningDevhost, routes: CallableRoute[]): Promise<string[]> {
  const wrong: string[] = [];
  const expectStatus = (what: string, status: number, refused: boolean): void => {
    if ((status === 401) !== refused)
      wrong.push(`${what}: ${status}, expected ${refused ? '401' : 'not 401'}`);
  };
  for (const route of routes) {
    const url = `${host.url}${route.path}`;
    const open = route.authLevel === 'anonymous';
    for (const method of route.methods) {
      if (open) continue; // called below with a key: an open route runs its handler on every call
      expectStatus(
        `${method} ${route.path} (${route.authLevel}) without a key`,
        await call(url, method),
        true,
      );
      expectStatus(`${method} ${route.path} with a wrong key`, await call(url, method, 'nope'), true);
      expectStatus(
        `${method} ${route.path} with the Durable system key`,
        await call(url, method, SYSTEM_KEY),
        true,
      );
    }
    // One call per key that may run the handler (its answer, often 400 for an empty body, is not the point).
    const method = route.methods.includes('GET') ? 'GET' : route.methods[0]!;
    expectStatus(
      `${method} ${route.path} (${route.authLevel}) without a key`,
      await call(url, method),
      !open,
    );
    expectStatus(
      `${method} ${route.path} (${route.authLevel}) with a function key`,
      await call(url, method, FUNCTION_KEY),
      route.authLevel === 'admin',
    );
    expectStatus(`${method} ${route.path} with the master key`, await call(url, method, MASTER), false);
  }
  return wrong;
}

describe('The --keys tests cover every route including the Durable API: Durable fixture app', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/durable-app', args: ['--keys', keysArg] });
  });
  afterAll(async () => {
    await host?.stop();
  });

  const start = async (name: string, input: unknown): Promise<Record<string, string>> => {
    const res = await fetch(`${host.url}/api/start/${name}`, {
      method: 'POST',
      headers: { 'x-functions-key': FUNCTION_KEY, 'content-type': 'application/json' },
      body: JSON.stringify(input),
    });
    expect(res.status).toBe(202);
    return (await res.json()) as Record<string, string>;
  };

  test('devhost prints the Durable system key with the others', () => {
    expect(host.output()).toContain(`durabletask_extension=${SYSTEM_KEY}`);
  });

  test('every app route answers by its auth level', async () => {
    const routes = await listRoutes(host);
    expect(routes.map((r) => r.name)).toEqual(
      expect.arrayContaining(['start', 'httpSyncStart', 'clientOps']),
    );
    expect(await checkAppRoutes(host, routes)).toEqual([]);
  });

  test('the management URLs handed to the app carry code=<system key>, and work as given', async () => {
    const links = await start('helloSequence', undefined);
    const urls = Object.entries(links).filter(([name]) => name !== 'id');
    expect(urls.length).toBeGreaterThanOrEqual(7);
    for (const [name, value] of urls) {
      expect([name, new URL(value).searchParams.get('code')]).toEqual([name, SYSTEM_KEY]);
    }
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      const res = await fetch(links.statusQueryGetUri!);
      status = res.status;
      expect((await res.json()) as { output: unknown }).toHaveProperty('output');
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    const payload = await fetch(`${host.url}/api/client/payload/${links.id}`, {
      headers: { 'x-functions-key': FUNCTION_KEY },
    });
    const management = (await payload.json()) as Record<string, string>;
    for (const [name, value] of Object.entries(management).filter(([n]) => n !== 'id')) {
      expect([name, new URL(value).searchParams.get('code')]).toEqual([name, SYSTEM_KEY]);
    }
  });

  test('every Durable HTTP API route needs the system key or the master key', async () => {
    const links = await start('helloSequence', undefined);
    const payload = await fetch(`${host.url}/api/client/payload/${links.id}`, {
      headers: { 'x-functions-key': FUNCTION_KEY },
    });
    const management = (await payload.json()) as Record<string, string>;
    const methodOf: Record<string, string> = {
      statusQueryGetUri: 'GET',
      sendEventPostUri: 'POST',
      terminatePostUri: 'POST',
      rewindPostUri: 'POST',
      purgeHistoryDeleteUri: 'DELETE',
      restartPostUri: 'POST',
      suspendPostUri: 'POST',
      resumePostUri: 'POST',
    };
    const hook = `${host.url}/runtime/webhooks/durabletask`;
    const api: { method: string; url: string; body?: string }[] = Object.entries(management)
      .filter(([name]) => name !== 'id')
      .map(([name, value]) => {
        const method = methodOf[name];
        if (!method) throw new Error(`new management URL ${name}: add its method here`);
        const url = new URL(value.replace('{eventName}', 'Approval').replace('{text}', 'test'));
        url.searchParams.delete('code');
        return { method, url: url.href, ...(method === 'POST' ? { body: '"x"' } : {}) };
      });
    api.push(
      { method: 'POST', url: `${hook}/orchestrators/helloSequence`, body: '' },
      { method: 'GET', url: `${hook}/instances/` },
      { method: 'GET', url: `${hook}/instances/?runtimeStatus=Completed` },
      { method: 'DELETE', url: `${hook}/instances/?createdTimeFrom=2000-01-01T00:00:00Z` },
      { method: 'POST', url: `${hook}/entities/counter/k1?op=add`, body: '1' },
      { method: 'GET', url: `${hook}/entities/counter/k1` },
    );
    const wrong: string[] = [];
    for (const { method, url, body } of api) {
      const path = `${method} ${url.slice(hook.length)}`;
      for (const [who, key] of [
        ['no key', undefined],
        ['a wrong key', 'nope'],
        ['the function key', FUNCTION_KEY],
      ] as const) {
        const status = await call(url, method, key, body);
        if (status !== 401) wrong.push(`${path} with ${who}: ${status}, expected 401`);
      }
      const withCode = new URL(url);
      withCode.searchParams.set('code', FUNCTION_KEY);
      const byQuery = await call(withCode.href, method, undefined, body);
      if (byQuery !== 401) wrong.push(`${path} with code=<function key>: ${byQuery}, expected 401`);
    }
    // Allowed last: these really terminate, purge and restart.
    for (const { method, url, body } of api) {
      const path = `${method} ${url.slice(hook.length)}`;
      for (const [who, key] of [
        ['the system key', SYSTEM_KEY],
        ['the master key', MASTER],
      ] as const) {
        const status = await call(url, method, key, body);
        if (status === 401) wrong.push(`${path} with ${who}: 401`);
      }
      const withCode = new URL(url);
      withCode.searchParams.set('code', SYSTEM_KEY);
      const byQuery = await call(withCode.href, method, undefined, body);
      if (byQuery === 401) wrong.push(`${path} with code=<system key>: 401`);
    }
    expect(wrong).toEqual([]);
  });

  test('a refused key on the Durable API is answered before its body is read', async () => {
    // A body over the 100 MB limit would be 413 once read: a 401 shows the key was checked first.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${host.url}/runtime/webhooks/durabletask/orchestrators/Hello`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(150 * 1024 * 1024) },
      });
      req.once('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.once('error', reject);
      req.write('{');
    });
    expect(status).toBe(401);
  });

  test("the app's own durable client (start, status, raise, terminate, list, purge) works with keys on", async () => {
    const client = async (op: string, id = '', arg = '', body?: unknown): Promise<Response> =>
      fetch(`${host.url}/api/client/${op}/${id}${arg ? `/${arg}` : ''}`, {
        method: 'POST',
        headers: { 'x-functions-key': FUNCTION_KEY, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const approval = await start('approval', { timeoutMs: 120_000 });
    expect((await client('raise', approval.id, 'Approval', 'amy')).status).toBe(202);
    let output: unknown;
    for (let i = 0; i < 100 && output === undefined; i++) {
      const status = (await (await client('status', approval.id)).json()) as {
        runtimeStatus: string;
        output: unknown;
      };
      if (status.runtimeStatus === 'Completed') output = status.output;
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(output).toEqual({ result: 'approved', by: 'amy' });

    const waiting = await start('approval', { timeoutMs: 120_000 });
    expect((await client('terminate', waiting.id, 'stop')).status).toBe(202);
    const running = (await (await client('running')).json()) as { instanceId: string }[];
    expect(running.map((s) => s.instanceId)).not.toContain(approval.id);
    expect(await (await client('purge', approval.id)).json()).toEqual({ instancesDeleted: 1 });

    const sync = await fetch(`${host.url}/api/sync/helloSequence`, {
      method: 'POST',
      headers: { 'x-functions-key': FUNCTION_KEY },
    });
    expect(sync.status).toBe(200);
    expect(await sync.json()).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello Cairo']);
  });
});

describe('--keys without a durabletask_extension entry', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/durable-app', args: ['--keys', `master=${MASTER}`] });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('a system key is generated, printed, put in the management URLs and accepted', async () => {
    const [, generated] = await host.waitForOutput(/durabletask_extension=(\S+)/);
    const res = await fetch(`${host.url}/api/start/helloSequence`, {
      method: 'POST',
      headers: { 'x-functions-key': MASTER },
    });
    expect(res.status).toBe(202);
    const links = (await res.json()) as Record<string, string>;
    expect(new URL(links.statusQueryGetUri!).searchParams.get('code')).toBe(generated);
    expect([200, 202]).toContain((await fetch(links.statusQueryGetUri!)).status);
    const bare = new URL(links.statusQueryGetUri!);
    bare.searchParams.delete('code');
    expect((await fetch(bare)).status).toBe(401);
  });
});

describe('The --keys tests cover every route including the Durable API: the Sluice app', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({
      app: '.',
      args: ['--keys', keysArg],
      env: {
        APPROVAL_SIGNING_KEYS: JSON.stringify({ k1: randomBytes(32).toString('base64') }),
        APPROVAL_ACTIVE_KEY_ID: 'k1',
        NOTIFIER: 'outbox',
        DURABLE_TASK_HUB: 'KeysEveryRoute',
      },
      readyTimeoutMs: 120_000,
    });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('every Sluice route answers by its auth level; approval page, health and reads stay open', async () => {
    const routes = await listRoutes(host);
    const byName = new Map(routes.map((r) => [r.name, r.authLevel]));
    expect(byName.get('health')).toBe('anonymous');
    expect(byName.get('approvalPage')).toBe('anonymous');
    expect(byName.get('startRun')).toBe('function');
    expect(await checkAppRoutes(host, routes)).toEqual([]);
  });

  test('the Durable HTTP API of Sluice refuses a function key and takes the system key', async () => {
    const hook = `${host.url}/runtime/webhooks/durabletask/instances/`;
    expect(await call(hook, 'GET')).toBe(401);
    expect(await call(hook, 'GET', FUNCTION_KEY)).toBe(401);
    expect(await call(`${hook}?code=${SYSTEM_KEY}`, 'GET')).toBe(200);
    expect(await call(hook, 'GET', MASTER)).toBe(200);
  });
});
