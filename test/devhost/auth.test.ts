/**
 * Auth levels as in Azure once keys are configured: `anonymous` open, `function` takes a function key or
 * the master key, `admin` (and the admin API) only the master key, from `x-functions-key` or `?code=`.
 */
import { startDevhost, type RunningDevhost } from '../support/devhost';

describe('with --keys', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({
      app: 'test/fixtures/basic',
      services: false,
      args: ['--keys', 'master=mk-123,default=fk-456'],
    });
  });
  afterAll(async () => {
    await host?.stop();
  });

  const status = async (path: string, headers: Record<string, string> = {}): Promise<number> =>
    (await fetch(`${host.url}${path}`, { headers })).status;

  test('devhost prints the keys it uses at start', () => {
    expect(host.output()).toMatch(
      /Keys \(send as x-functions-key header or \?code=\): master=mk-123 default=fk-456/,
    );
  });

  test('anonymous functions need no key', async () => {
    expect(await status('/api/auth/open')).toBe(200);
  });

  test('function level: 401 without or with a wrong key; function or master key via header or code', async () => {
    expect(await status('/api/auth/function')).toBe(401);
    expect(await status('/api/auth/function?code=wrong')).toBe(401);
    expect(await status('/api/auth/function', { 'x-functions-key': 'wrong' })).toBe(401);
    expect(await status('/api/auth/function?code=fk-456')).toBe(200);
    expect(await status('/api/auth/function', { 'x-functions-key': 'fk-456' })).toBe(200);
    expect(await status('/api/auth/function?code=mk-123')).toBe(200);
  });

  test('the x-functions-key header wins over the code query', async () => {
    expect(await status('/api/auth/function?code=fk-456', { 'x-functions-key': 'wrong' })).toBe(401);
  });

  test('admin level takes only the master key', async () => {
    expect(await status('/api/auth/admin?code=fk-456')).toBe(401);
    expect(await status('/api/auth/admin', { 'x-functions-key': 'mk-123' })).toBe(200);
  });

  test('the admin API needs the master key', async () => {
    const run = (key?: string): Promise<Response> =>
      fetch(`${host.url}/admin/functions/manual`, {
        method: 'POST',
        headers: key ? { 'x-functions-key': key } : {},
        body: JSON.stringify({ input: 'x' }),
      });
    expect((await run()).status).toBe(401);
    expect((await run('fk-456')).status).toBe(401);
    expect((await run('mk-123')).status).toBe(202);
  });
});

describe('keys from the DEVHOST_KEYS setting', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({
      app: 'test/fixtures/basic',
      services: false,
      env: { DEVHOST_KEYS: 'only-key' },
    });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('a bare key is the default function key and a master key is generated and printed', async () => {
    const [, master] = await host.waitForOutput(/master=(\S+) default=only-key/);
    expect((await fetch(`${host.url}/api/auth/function?code=only-key`)).status).toBe(200);
    expect((await fetch(`${host.url}/api/auth/admin?code=only-key`)).status).toBe(401);
    expect((await fetch(`${host.url}/api/auth/admin?code=${master!}`)).status).toBe(200);
  });
});

describe('without keys (the Core Tools default)', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/basic', services: false });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('keys are not enforced and devhost says so', async () => {
    expect(host.output()).toContain('Keys: not enforced');
    expect((await fetch(`${host.url}/api/auth/function`)).status).toBe(200);
    expect((await fetch(`${host.url}/api/auth/admin`)).status).toBe(200);
  });
});
