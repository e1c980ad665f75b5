/**
 * devhost's HTTP front on the `basic` fixture app, through real HTTP: routes, methods, request and
 * response bodies of every kind, cookies, errors, the body limit, settings, hooks, logs and the admin API.
 */
import { startDevhost, type RunningDevhost } from '../support/devhost';

let host: RunningDevhost;
const bodyLimit = 64 * 1024;

beforeAll(async () => {
  host = await startDevhost({
    app: 'test/fixtures/basic',
    services: false,
    env: { FIXTURE_OVERRIDDEN: 'from-environment', FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(bodyLimit) },
  });
});

afterAll(async () => {
  await host?.stop();
});

const api = (path: string): string => `${host.url}/api/${path}`;

async function json(
  path: string,
  init?: RequestInit,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(api(path), init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('routing', () => {
  test('route parameters, an optional parameter and the query reach the handler', async () => {
    const res = await json('greet/amy?q=2&a=1&a=2', { headers: { 'x-test': 'hdr' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'amy', method: 'GET', q: '2', all: ['1', '2'], header: 'hdr' });
    expect(res.body.url).toBe(`${host.url}/api/greet/amy?q=2&a=1&a=2`);
    const without = await json('greet');
    expect(without.body.name).toBeNull();
  });

  test('parameter values are URL-decoded', async () => {
    const res = await json('greet/J%C3%BCrgen%20M');
    expect(res.body.name).toBe('Jürgen M');
  });

  test('literal segments win over parameters, constrained over free ones', async () => {
    expect((await json('items/special')).body.route).toBe('itemsLiteral');
    expect((await json('items/42')).body).toEqual({ route: 'itemById', params: { id: '42' } });
    expect((await json('items/abc')).body).toEqual({ route: 'itemByName', params: { name: 'abc' } });
    expect((await json('items/a-1')).body).toEqual({ route: 'itemAny', params: { anything: 'a-1' } });
  });

  test('literals are case-insensitive; a route defaults to the function name', async () => {
    expect((await json('ITEMS/Special')).body.route).toBe('itemsLiteral');
    expect((await json('noroutegiven')).body.route).toBe('NoRouteGiven');
  });

  test('catch-all, complex segments and defaults', async () => {
    expect((await json('docs/a/b/c.md')).body).toEqual({ route: 'catchAll', params: { path: 'a/b/c.md' } });
    expect((await json('files/report.pdf')).body).toEqual({
      route: 'files',
      params: { name: 'report', ext: 'pdf' },
    });
    expect((await json('pages')).body).toEqual({ route: 'withDefault', params: { page: '1' } });
    expect((await json('pages/7')).body).toEqual({ route: 'withDefault', params: { page: '7' } });
  });

  test('constraints that do not match give 404', async () => {
    expect((await json('range/5')).body.route).toBe('ranged');
    expect((await fetch(api('range/11'))).status).toBe(404);
    expect((await json('guid/0f8fafc0-2d11-4b35-a1f2-6d0e0c2a5e77')).body.route).toBe('guid');
    expect((await fetch(api('guid/not-a-guid'))).status).toBe(404);
    expect((await json('codes/ab-12')).body.route).toBe('regex');
    expect((await fetch(api('codes/abc-12'))).status).toBe(404);
    expect((await fetch(api('pages/x'))).status).toBe(404);
  });

  test('methods select the function; a method no function takes is 404', async () => {
    expect((await json('thing')).body.route).toBe('thingRead');
    expect((await json('thing', { method: 'PUT' })).body.route).toBe('thingWrite');
    expect((await json('thing', { method: 'DELETE' })).body.route).toBe('thingWrite');
    expect((await fetch(api('thing'), { method: 'POST' })).status).toBe(404);
  });

  test('unknown routes and paths outside the route prefix give 404', async () => {
    expect((await fetch(api('no/such/route'))).status).toBe(404);
    expect((await fetch(`${host.url}/greet/amy`)).status).toBe(404);
  });
});

describe('request bodies', () => {
  test('text', async () => {
    const res = await json('echo/text', {
      method: 'POST',
      body: 'héllo',
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.body).toEqual({ type: 'text/plain', text: 'héllo' });
  });

  test('JSON', async () => {
    const res = await json('echo/json', {
      method: 'POST',
      body: JSON.stringify({ a: [1, { b: null }] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.body).toEqual({ type: 'application/json', json: { a: [1, { b: null }] } });
  });

  test('binary bytes round-trip unchanged', async () => {
    const bytes = Buffer.from([0, 255, 128, 10, 13, 0, 1]);
    const res = await fetch(api('echo/bytes'), {
      method: 'POST',
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
  });

  test('blob', async () => {
    const res = await json('echo/blob', { method: 'POST', body: 'blob-text' });
    expect(res.body).toEqual({ size: 9, text: 'blob-text' });
  });

  test('URL-encoded and multipart forms', async () => {
    const urlEncoded = await json('echo/form', {
      method: 'POST',
      body: new URLSearchParams({ a: '1', b: 'x y' }),
    });
    expect(urlEncoded.body).toEqual({ fields: { a: '1', b: 'x y' } });
    const form = new FormData();
    form.set('field', 'value');
    form.set('upload', new Blob(['file contents'], { type: 'text/plain' }), 'notes.txt');
    const multipart = await json('echo/form', { method: 'POST', body: form });
    expect(multipart.body).toEqual({
      fields: { field: 'value', upload: { file: 'notes.txt', text: 'file contents' } },
    });
  });

  test('the body as a stream', async () => {
    const res = await json('echo/stream', { method: 'POST', body: Buffer.alloc(20_000, 7) });
    expect(res.body).toEqual({ size: 20_000 });
  });

  test('a body over the limit gives 413 and the function does not run', async () => {
    const before = host.output().split("Executed 'Functions.upload'").length;
    const res = await fetch(api('upload'), { method: 'POST', body: Buffer.alloc(bodyLimit + 1) });
    expect(res.status).toBe(413);
    expect(host.output().split("Executed 'Functions.upload'").length).toBe(before);
    const ok = await json('upload', { method: 'POST', body: Buffer.alloc(bodyLimit) });
    expect(ok.body).toEqual({ bytes: bodyLimit });
  });
});

describe('response bodies', () => {
  const get = (kind: string): Promise<Response> => fetch(api(`respond/${kind}`));

  test('jsonBody sets application/json', async () => {
    const res = await get('json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ ok: true, list: [1, 2, 3] });
  });

  test('text', async () => {
    const res = await get('text');
    expect(res.headers.get('content-type')).toBe('text/plain;charset=UTF-8');
    expect(await res.text()).toBe('just text');
  });

  test.each([
    ['buffer', [0, 1, 2, 255]],
    ['uint8array', [5, 6, 7]],
    ['arraybuffer', [8, 9]],
  ])('bytes from a %s', async (kind, bytes) => {
    const res = await get(kind);
    expect([...Buffer.from(await res.arrayBuffer())]).toEqual(bytes);
  });

  test('streams: Node Readable, web ReadableStream, async iterable', async () => {
    const node = await get('node-stream');
    expect(node.status).toBe(201);
    expect(node.headers.get('x-a')).toBe('1');
    expect(await node.text()).toBe('abc');
    expect(await (await get('web-stream')).text()).toBe('web-stream');
    expect(await (await get('async-iterable')).text()).toBe('iterable');
  });

  test('Blob, URLSearchParams and FormData carry their content types', async () => {
    const blob = await get('blob');
    expect(blob.headers.get('content-type')).toBe('text/x-blob');
    expect(await blob.text()).toBe('blob body');
    const params = await get('search-params');
    expect(params.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/);
    expect(await params.text()).toBe('a=1&b=two+words');
    const form = await (await get('form-data')).formData();
    expect(form.get('field')).toBe('value');
  });

  test('status and headers', async () => {
    const res = await get('headers');
    expect(res.status).toBe(202);
    expect(res.headers.get('x-custom')).toBe('yes');
    expect(res.headers.get('content-type')).toBe('text/csv');
    expect(await res.text()).toBe('a,b\n1,2\n');
  });

  test('cookies with every attribute', async () => {
    const res = await get('cookies');
    expect(res.headers.getSetCookie()).toEqual([
      'plain=v1',
      'full=a%20b%3Bc; Domain=localhost; Path=/api; Expires=Thu, 02 Jan 2031 03:04:05 GMT; Max-Age=3600; Secure; HttpOnly; SameSite=Strict',
      'lax=x; SameSite=Lax',
    ]);
  });

  test('204, undefined (200 empty) and an HttpResponse instance', async () => {
    const noContent = await get('no-content');
    expect(noContent.status).toBe(204);
    expect(await noContent.text()).toBe('');
    const empty = await get('undefined');
    expect(empty.status).toBe(200);
    expect(await empty.text()).toBe('');
    const teapot = await get('class');
    expect(teapot.status).toBe(418);
    expect(await teapot.json()).toEqual({ teapot: true });
  });
});

describe('failures and logging', () => {
  test('a handler that throws gives 500 with the invocation id, and the stack is logged with it', async () => {
    const res = await fetch(api('boom'));
    expect(res.status).toBe(500);
    const body = (await res.json()) as { invocationId: string };
    expect(body.invocationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-ms-invocation-id')).toBe(body.invocationId);
    const [logged] = await host.waitForOutput(
      new RegExp(
        `Executed 'Functions\\.boom' \\(Failed, Id=${body.invocationId}, Duration=\\d+ms\\)\\n.*boom-error-marker`,
      ),
    );
    expect(logged).toContain('boom-error-marker');
  });

  test('one log line per invocation with function, invocation id, duration and outcome', async () => {
    await fetch(api('greet/log-line'));
    const [line] = await host.waitForOutput(
      /Executed 'Functions\.greet' \(Succeeded, Id=[0-9a-f-]{36}, Duration=\d+ms\)/,
    );
    expect(line).toMatch(/Succeeded/);
  });

  test('context.log output is shown with the function name', async () => {
    await fetch(api('logs?n=77'));
    const [line] = await host.waitForOutput(/\[logs\] user-log-marker 77/);
    expect(line).toContain('user-log-marker 77');
    await host.waitForOutput(/warn .*\[logs\] user-warn-marker/);
  });
});

describe('settings, hooks and the admin API', () => {
  test('local.settings.json Values reach process.env; variables already set win', async () => {
    expect((await json('env/FIXTURE_SETTING')).body.value).toBe('from-local-settings');
    expect((await json('env/FIXTURE_OVERRIDDEN')).body.value).toBe('from-environment');
  });

  test('WEBSITE_HOSTNAME names the devhost port for the Durable client', async () => {
    expect((await json('env/WEBSITE_HOSTNAME')).body.value).toBe(`localhost:${host.port}`);
  });

  test('appStart and invocation hooks run', async () => {
    const hooked = await fetch(api('hooked'));
    // preInvocation replaced the handler; postInvocation replaced the result, reading the shared hookData.
    expect(hooked.headers.get('x-hooked')).toBe('pre');
    expect(hooked.headers.get('x-post')).toBe('shared');
    expect(await hooked.text()).toBe('hooked');
    const state = (await json('state')).body as { appStart: unknown; hookCalls: number };
    expect(state.appStart).toEqual({ ran: true, hookData: 'object' });
    expect(state.hookCalls).toBeGreaterThan(1);
  });

  test('POST /admin/functions/{name} runs a non-HTTP function once with the given input', async () => {
    const res = await fetch(`${host.url}/admin/functions/manual`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'queued message' }),
    });
    expect(res.status).toBe(202);
    const id = res.headers.get('x-ms-invocation-id');
    await host.waitForOutput(new RegExp(`Executed 'Functions\\.manual' \\(Succeeded, Id=${id}`));
    const state = (await json('state')).body as { manualInputs: unknown[] };
    expect(state.manualInputs).toEqual([{ input: 'queued message', functionName: 'manual' }]);
  });

  test('the admin API refuses HTTP functions and unknown names', async () => {
    const http = await fetch(`${host.url}/admin/functions/greet`, { method: 'POST', body: '{}' });
    expect(http.status).toBe(400);
    const unknown = await fetch(`${host.url}/admin/functions/nope`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
  });
});
