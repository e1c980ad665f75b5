/**
 * While devhost starts (the port opens before the app has loaded), a request gets 503 with
 * `Retry-After` and a problem JSON naming what is still starting, like the app's own errors; it
 * used to be `{"error":"devhost is starting"}` as plain JSON.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { runningDevhostUrl } from '../../cli/localSluice';
import { notReadyProblem } from '../../devhost/http/notReady';
import { spawnDevhost } from '../support/devhost';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** GET until the port answers at all (devhost listens before it loads the app). */
async function firstAnswer(url: string, deadline: number): Promise<Response> {
  for (;;) {
    try {
      return await fetch(url);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('GET /api/health while devhost starts is a 503 problem naming what is still starting; once ready it names its URL in its data folder', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devhost-starting-'));
  const gate = path.join(dir, 'go');
  const port = await freePort();
  const host = spawnDevhost({
    app: 'test/fixtures/slow-start',
    port,
    services: false,
    dataDir: dir,
    env: { SLOW_START_GATE: gate },
  });
  try {
    const url = `http://localhost:${port}/api/health`;
    // The port opens before devhost has locked its data folder (the 'services' part, even with the
    // embedded services off); the gate then holds it in loading the app's functions.
    let res = await firstAnswer(url, Date.now() + 60_000);
    const deadline = Date.now() + 60_000;
    while (
      res.status === 503 &&
      ((await res.clone().json()) as { starting: string[] }).starting.includes('services')
    ) {
      if (Date.now() > deadline) throw new Error('devhost never got past starting its services');
      await new Promise((r) => setTimeout(r, 50));
      res = await firstAnswer(url, deadline);
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      code: 'starting',
      detail: "devhost is starting: waiting for the app's functions, then the Durable engine",
      starting: ['functions', 'durable'],
      retryAfterSeconds: 1,
    });
    writeFileSync(gate, '');
    // Once the gate opens, start-up finishes and the app's own handler answers.
    let status = 503;
    while (status === 503) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await firstAnswer(url, Date.now() + 60_000)).status;
    }
    expect(status).toBe(200);

    // Ready, it names where it serves in its data folder (the demo finds \`npm start\` on any port)…
    expect(runningDevhostUrl(dir)).toBe(`http://localhost:${port}`);
    // …until it stops.
    const exited = new Promise((r) => host.proc.once('exit', r));
    host.proc.kill('SIGTERM');
    await exited;
    expect(existsSync(path.join(dir, 'devhost.json'))).toBe(false);
    expect(runningDevhostUrl(dir)).toBeUndefined();
  } finally {
    host.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the problem names every part still to start, and says when devhost is stopping', () => {
  expect(notReadyProblem(['services', 'functions', 'durable']).detail).toBe(
    "devhost is starting: waiting for the embedded storage and Cosmos DB emulators, then the app's functions, then the Durable engine",
  );
  expect(notReadyProblem(undefined)).toMatchObject({
    code: 'stopping',
    detail: 'devhost is stopping',
    starting: [],
  });
});
