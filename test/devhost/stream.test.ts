/**
 * HTTP streaming (`app.setup({ enableHttpStream: true })`): devhost speaks the worker's proxy protocol
 * with the library, so a response reaches the client while the handler is still producing it.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { startDevhost, type RunningDevhost } from '../support/devhost';

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

/** devhost's peak resident memory so far (VmHWM) in MiB. */
function peakMemoryMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** A chunked POST written only as fast as the connection takes it (the client honours backpressure). */
function chunkedUpload(url: string): { req: ClientRequest; response: Promise<IncomingMessage> } {
  const req = httpRequest(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  return { req, response };
}

async function writeAll(
  req: ClientRequest,
  bytes: number,
  progress = { sent: 0 },
  chunk = Buffer.alloc(64 * 1024, 7),
): Promise<void> {
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!req.write(chunk)) await once(req, 'drain');
    progress.sent += chunk.length;
  }
}

describe('Chunked bodies are buffered whole: a streaming function gets the body as it arrives', () => {
  test('the handler reads the first half of an upload before the client has sent the second', async () => {
    const MiB = 1024 * 1024;
    const { req, response } = chunkedUpload(`${host.url}/api/progress`);
    await writeAll(req, 4 * MiB);
    // Had devhost read the body whole before invoking, no answer could come before the upload ended.
    const res = await Promise.race([
      response,
      new Promise<never>((_resolve, reject) =>
        setTimeout(
          () => reject(new Error('devhost held the body back until it was complete')),
          30_000,
        ).unref(),
      ),
    ]);
    expect(res.statusCode).toBe(200);
    let text = '';
    const lastLine = (): string => text.trim().split('\n').at(-1) ?? '';
    const waiters: (() => void)[] = [];
    res.setEncoding('utf8').on('data', (part: string) => {
      text += part;
      for (const wake of waiters.splice(0)) wake();
    });
    const ended = once(res, 'end');
    while (Number(lastLine()) < 3 * MiB) await new Promise<void>((resolve) => waiters.push(resolve));
    const readSoFar = Number(lastLine());
    expect(readSoFar).toBeLessThanOrEqual(4 * MiB);
    await writeAll(req, 4 * MiB);
    req.end();
    await ended;
    expect(text.trim().split('\n').at(-1)).toBe(`done ${8 * MiB}`);
  });

  test('four concurrent 95 MB chunked uploads pass through without devhost holding them', async () => {
    const pid = host.proc.pid!;
    const before = peakMemoryMb(pid);
    const size = 95 * 1024 * 1024;
    const results = await Promise.all(
      Array.from({ length: 4 }, async (_unused, i) => {
        const { req, response } = chunkedUpload(`${host.url}/api/count/u${i}`);
        await writeAll(req, size);
        req.end();
        const res = await response;
        let body = '';
        for await (const part of res.setEncoding('utf8') as AsyncIterable<string>) body += part;
        return JSON.parse(body) as { bytes: number; name: string };
      }),
    );
    expect(results.map((r) => r.bytes)).toEqual([size, size, size, size]);
    // Buffered, the bodies alone are 380 MB (and were copied more); streamed, devhost holds a few chunks.
    expect(peakMemoryMb(pid) - before).toBeLessThan(190);
  });

  test('a handler that stops reading stops the upload: devhost passes backpressure back to the client', async () => {
    const MiB = 1024 * 1024;
    const size = 95 * MiB;
    const { req, response } = chunkedUpload(`${host.url}/api/hold/bp`);
    const progress = { sent: 0 };
    const writing = writeAll(req, size, progress).then(() => req.end());
    const res = await response;
    let text = '';
    res.setEncoding('utf8').on('data', (part: string) => (text += part));
    const ended = once(res, 'end');
    while (!text.includes('paused')) await new Promise((r) => setTimeout(r, 20));
    // Wait until the client cannot hand over more (its writes wait for 'drain'), however long that takes.
    let last = -1;
    for (let still = 0; still < 5;) {
      await new Promise((r) => setTimeout(r, 100));
      still = progress.sent === last ? still + 1 : 0;
      last = progress.sent;
    }
    // Without backpressure devhost would have taken all 95 MB into memory by now.
    expect(progress.sent).toBeLessThan(48 * MiB);
    expect((await fetch(`${host.url}/api/release/bp`, { method: 'POST' })).status).toBe(204);
    await writing;
    await ended;
    expect(text).toBe(`paused\ndone ${size}\n`);
  });
});
