/**
 * Issue 13, item 4: "devhost binds to loopback unless told otherwise (`--host`)". A keyless devhost on
 * every interface let any machine on the network (and any web page, through a cross-site form to the
 * machine's address) call the app. Loopback is served on IPv4 and IPv6, so `localhost` works whichever
 * address it resolves to.
 */
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { runDevhostToExit, startDevhost, type RunningDevhost } from '../support/devhost';

/** This machine's first non-loopback IPv4 address (the sandbox has one; a laptop has its LAN address). */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) if (!info.internal && info.family === 'IPv4') return info.address;
  }
  return undefined;
}

/** 'open' when a TCP connection is accepted, else the error code (ECONNREFUSED when nothing listens). */
function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

const landing = async (origin: string): Promise<number> => (await fetch(`${origin}/`)).status;

describe('devhost binds to loopback unless told otherwise (--host)', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/basic', services: false });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('by default only 127.0.0.1 and ::1 listen, and the ready line still names localhost', async () => {
    expect(host.url).toBe(`http://localhost:${host.port}`);
    expect(host.output()).toContain(`Listening on 127.0.0.1:${host.port}, [::1]:${host.port}`);
    expect(host.output()).not.toMatch(/listens beyond loopback/);
    expect(await landing(`http://127.0.0.1:${host.port}`)).toBe(200);
    expect(await landing(`http://[::1]:${host.port}`)).toBe(200);
    expect(await landing(host.url)).toBe(200);
  });

  test('the machine’s network address is not served', async () => {
    const address = externalAddress();
    expect(address).toBeDefined();
    expect(await probe(address!, host.port)).toBe('ECONNREFUSED');
  });
});

describe('--host 0.0.0.0 without keys', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/basic', services: false, args: ['--host', '0.0.0.0'] });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('serves the network address and warns that it is open to anyone', async () => {
    expect(await landing(`http://${externalAddress()!}:${host.port}`)).toBe(200);
    expect(await landing(host.url)).toBe(200);
    expect(host.output()).toMatch(/devhost listens beyond loopback \(--host 0\.0\.0\.0\) without keys/);
  });
});

describe('--host <address> with keys', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({
      app: 'test/fixtures/basic',
      services: false,
      args: ['--host', externalAddress()!, '--keys', 'master=m-1,default=f-1'],
    });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('serves that address and loopback, keys enforced on both, no warning', async () => {
    const remote = `http://${externalAddress()!}:${host.port}`;
    expect(await landing(remote)).toBe(200);
    expect(await landing(`http://127.0.0.1:${host.port}`)).toBe(200);
    expect((await fetch(`${remote}/api/auth/function`)).status).toBe(401);
    expect((await fetch(`${remote}/api/auth/function?code=f-1`)).status).toBe(200);
    expect(host.output()).not.toMatch(/listens beyond loopback/);
  });
});

test('--host that is not an address exits with code 2 and says what it takes', async () => {
  const { code, output } = await runDevhostToExit({
    app: 'test/fixtures/basic',
    services: false,
    args: ['--host', 'example.com'],
  });
  expect(code).toBe(2);
  expect(output).toContain(
    "--host must be an IP address (127.0.0.1, 0.0.0.0, ::) or localhost, got 'example.com'",
  );
});

describe("the library's HTTP streaming proxy stays on loopback too", () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/stream', services: false });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('@azure/functions listens on 127.0.0.1 only, and streaming requests still reach it', async () => {
    // The library calls server.listen() with no host, which binds every interface.
    const [, port] = await host.waitForOutput(/the library's proxy listens on http:\/\/127\.0\.0\.1:(\d+)\//);
    expect(await probe('127.0.0.1', Number(port))).toBe('open');
    expect(await probe(externalAddress()!, Number(port))).toBe('ECONNREFUSED');
    const res = await fetch(`${host.url}/api/count/abc?q=1`, { method: 'POST', body: 'hello' });
    expect(await res.json()).toMatchObject({ bytes: 5, name: 'abc', q: '1' });
  });
});
