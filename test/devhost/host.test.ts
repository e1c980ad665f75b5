/**
 * devhost composed with its embedded services and the Durable engine: the app sees the emulator
 * settings, a Durable client input is injected into HTTP functions, and SIGTERM stops everything with
 * exit code 0. (The other devhost tests run with --no-services to keep them fast.)
 */
import { startDevhost, type RunningDevhost } from '../support/devhost';

describe('with embedded services', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/basic', env: { AzureWebJobsStorage: undefined } });
  });
  afterAll(async () => {
    await host?.kill();
  });

  const setting = async (name: string): Promise<string | null> => {
    const res = await fetch(`${host.url}/api/env/${name}`);
    return ((await res.json()) as { value: string | null }).value;
  };

  test('the app sees AzureWebJobsStorage and the Cosmos settings of the embedded emulators', async () => {
    expect(await setting('AzureWebJobsStorage')).toMatch(
      /BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1/,
    );
    expect(await setting('COSMOS_ENDPOINT')).toMatch(/^https?:\/\/(127\.0\.0\.1|localhost):\d+/);
  });

  test('SIGTERM stops the services and exits 0', async () => {
    expect(await host.stop()).toBe(0);
    expect(host.output()).toContain('embedded services stopped');
    expect(host.output()).toContain('devhost stopped');
  });
});

describe('HTTP functions with a Durable client input', () => {
  let host: RunningDevhost;
  beforeAll(async () => {
    host = await startDevhost({ app: 'test/fixtures/durable-app' });
  });
  afterAll(async () => {
    await host?.stop();
  });

  test('df.getClient works in an HTTP starter and the orchestration completes', async () => {
    const res = await fetch(`${host.url}/api/sync/helloSequence`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello Cairo']);
  });
});
