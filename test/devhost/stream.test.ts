/**
 * HTTP streaming (`app.setup({ enableHttpStream: true })`): devhost speaks the worker's proxy protocol
 * with the library, so a response reaches the client while the handler is still producing it.
 */
import { startDevhost, type RunningDevhost } from '../helpers/devhost';

let host: RunningDevhost;
beforeAll(async () => {
  host = await startDevhost({ app: 'test/fixtures/stream', services: false });
});
afterAll(async () => {
  await host?.stop();
});

test('the first chunk arrives before the handler has produced the rest', async () => {
  const res = await fetch(`${host.url}/api/drip/7`);
  expect(res.status).toBe(200);
  expect(res.headers.get('x-drip')).toBe('7');
  expect(res.headers.getSetCookie()).toEqual(['session=abc; HttpOnly']);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('first;')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  // Only now may the handler go on: had devhost buffered the body, the read above would never return.
  expect(text).toBe('first;');
  expect((await fetch(`${host.url}/api/release/7`, { method: 'POST' })).status).toBe(204);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  expect(text).toBe('first;second');
});

test('request body, route parameters, query and headers reach a streaming handler', async () => {
  const res = await fetch(`${host.url}/api/count/abc?q=1`, {
    method: 'POST',
    body: Buffer.alloc(50_000, 1),
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(await res.json()).toEqual({ bytes: 50_000, name: 'abc', q: '1', type: 'application/octet-stream' });
});

test('a streaming handler that throws gives 500 with the invocation id', async () => {
  const res = await fetch(`${host.url}/api/boom`);
  expect(res.status).toBe(500);
  const { invocationId } = (await res.json()) as { invocationId: string };
  await host.waitForOutput(
    new RegExp(`Functions\\.streamBoom' \\(Failed, Id=${invocationId}[^]*stream-boom-marker`),
  );
});
