/**
 * devhost start-up and shutdown: load failures, busy ports, the port and route prefix from the app's
 * settings, the default data folder, and graceful SIGTERM/SIGINT handling.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, runDevhostToExit, startDevhost } from '../support/devhost';

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A throw-away app folder whose entry point loads fixture function files by absolute path. */
function tempApp(options: { hostJson?: unknown; localSettings?: unknown; files: string[] }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'devhost-app-'));
  tempDirs.push(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'temp-app', main: 'index.js' }));
  writeFileSync(path.join(dir, 'host.json'), JSON.stringify(options.hostJson ?? { version: '2.0' }));
  if (options.localSettings)
    writeFileSync(path.join(dir, 'local.settings.json'), JSON.stringify(options.localSettings));
  const requires = options.files.map((file) => `require(${JSON.stringify(path.join(repoRoot, file))});`);
  writeFileSync(path.join(dir, 'index.js'), requires.join('\n') + '\n');
  return dir;
}

function listenOnFreePort(): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, () => resolve(server));
  });
}

const portOf = (server: Server): number => (server.address() as { port: number }).port;
const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => server.close(() => resolve()));

describe('start-up failures exit non-zero with a clear message', () => {
  test('an entry point that throws is named with its error', async () => {
    const { code, output } = await runDevhostToExit({ app: 'test/fixtures/broken', services: false });
    expect(code).toBe(1);
    expect(output).toContain(path.join(repoRoot, 'test/fixtures/broken/functions/throws.js'));
    expect(output).toContain('fixture failure at load time');
  });

  test('a main glob that matches nothing', async () => {
    const { code, output } = await runDevhostToExit({ app: 'test/fixtures/empty', services: false });
    expect(code).toBe(1);
    expect(output).toContain('Found zero files matching the supplied pattern "dist/functions/*.js"');
  });

  test('a missing app folder', async () => {
    const { code, output } = await runDevhostToExit({ app: 'test/fixtures/does-not-exist', services: false });
    expect(code).toBe(1);
    expect(output).toMatch(/does-not-exist does not exist \(--app\)/);
  });

  test('a port already in use is reported with the port and the flag', async () => {
    const blocker = await listenOnFreePort();
    try {
      const port = portOf(blocker);
      const { code, output } = await runDevhostToExit({ app: 'test/fixtures/basic', services: false, port });
      expect(code).toBe(1);
      expect(output).toContain(`Port ${port} is already in use`);
      expect(output).toContain('--port');
    } finally {
      await closeServer(blocker);
    }
  });

  test('unknown flags exit 2 with the usage', async () => {
    const { code, output } = await runDevhostToExit({
      app: 'test/fixtures/basic',
      services: false,
      args: ['--no-such-flag'],
    });
    expect(code).toBe(2);
    expect(output).toContain('Usage: devhost');
  });
});

describe("the app's own settings", () => {
  test('Host.LocalHttpPort from local.settings.json sets the port when --port is not given', async () => {
    const probe = await listenOnFreePort();
    const port = portOf(probe);
    await closeServer(probe);
    const app = tempApp({
      localSettings: { IsEncrypted: false, Values: {}, Host: { LocalHttpPort: port } },
      files: ['test/fixtures/basic/functions/bodies.js'],
    });
    const host = await startDevhost({ app, services: false, port: null });
    try {
      expect(host.port).toBe(port);
      expect((await fetch(`http://localhost:${port}/api/respond/text`)).status).toBe(200);
    } finally {
      await host.stop();
    }
  });

  test.each([
    ['v1', '/v1/respond/text', '/api/respond/text'],
    ['', '/respond/text', '/api/respond/text'],
  ])('host.json routePrefix %j', async (routePrefix, served, notServed) => {
    const app = tempApp({
      hostJson: { version: '2.0', extensions: { http: { routePrefix } } },
      files: ['test/fixtures/basic/functions/bodies.js'],
    });
    const host = await startDevhost({ app, services: false });
    try {
      expect(await (await fetch(`${host.url}${served}`)).text()).toBe('just text');
      expect((await fetch(`${host.url}${notServed}`)).status).toBe(404);
    } finally {
      await host.stop();
    }
  });

  test('host.json functionTimeout fails an invocation that runs longer', async () => {
    const app = tempApp({
      hostJson: { version: '2.0', functionTimeout: '00:00:01' },
      files: ['test/fixtures/basic/functions/behaviour.js'],
    });
    const host = await startDevhost({ app, services: false });
    try {
      const res = await fetch(`${host.url}/api/slow/5000`);
      expect(res.status).toBe(500);
      await host.waitForOutput(/Timeout value of 00:00:01 was exceeded by function: Functions\.slow/);
    } finally {
      await host.stop();
    }
  });

  test('Host.CORS allows the listed origins and answers preflight requests', async () => {
    const app = tempApp({
      localSettings: {
        IsEncrypted: false,
        Values: {},
        Host: { CORS: 'http://allowed.test, http://other.test' },
      },
      files: ['test/fixtures/basic/functions/bodies.js'],
    });
    const host = await startDevhost({ app, services: false });
    try {
      const allowed = await fetch(`${host.url}/api/respond/text`, {
        headers: { origin: 'http://allowed.test' },
      });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('http://allowed.test');
      const denied = await fetch(`${host.url}/api/respond/text`, { headers: { origin: 'http://evil.test' } });
      expect(denied.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await fetch(`${host.url}/api/echo/json`, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://other.test',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
      expect(preflight.headers.get('access-control-allow-headers')).toBe('content-type');
    } finally {
      await host.stop();
    }
  });

  test('an ES module app loads .js with import() and .cjs with require()', async () => {
    const host = await startDevhost({ app: 'test/fixtures/esm', services: false });
    try {
      expect(await (await fetch(`${host.url}/api/esm`)).text()).toBe('esm undefined');
      expect(await (await fetch(`${host.url}/api/cjs`)).text()).toBe('cjs function');
    } finally {
      await host.stop();
    }
  });

  test('an encrypted local.settings.json is refused', async () => {
    const app = tempApp({
      localSettings: { IsEncrypted: true, Values: {} },
      files: ['test/fixtures/basic/functions/bodies.js'],
    });
    const { code, output } = await runDevhostToExit({ app, services: false });
    expect(code).toBe(1);
    expect(output).toContain('is encrypted');
  });

  test('without --data-dir or --in-memory, state goes to <app>/.sluice', async () => {
    const app = tempApp({ files: ['test/fixtures/basic/functions/bodies.js'] });
    const host = await startDevhost({ app, services: false, dataDir: null });
    try {
      expect(existsSync(path.join(app, '.sluice'))).toBe(true);
    } finally {
      await host.stop();
    }
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM lets an in-flight request finish, then exits 0', async () => {
    const host = await startDevhost({ app: 'test/fixtures/basic', services: false });
    const inFlight = fetch(`${host.url}/api/slow/1500`);
    await host.waitForOutput(/slow-start 1500/);
    const code = await host.stop();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('slept 1500');
    expect(code).toBe(0);
    expect(host.output()).toContain('devhost stopped');
  });

  test('SIGINT exits 0 and new connections are refused afterwards', async () => {
    const host = await startDevhost({ app: 'test/fixtures/basic', services: false });
    const exited = new Promise<number | null>((resolve) => host.proc.once('exit', (code) => resolve(code)));
    host.proc.kill('SIGINT');
    expect(await exited).toBe(0);
    await expect(fetch(`${host.url}/api/respond/text`)).rejects.toThrow();
  });
});
