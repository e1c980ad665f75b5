import { withLogTail } from '../../../lib/training/backends/azureml';
import { AzureMlClient, retryAfterMs } from '../../../lib/training/backends/azuremlClient';

/** A fetch that answers from a list, recording what was asked. */
function scripted(answers: { status: number; headers?: Record<string, string>; body?: unknown }[]) {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const fetchImpl = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init });
    const a = answers.shift();
    if (!a) throw new TypeError('fetch failed: connection refused');
    return new Response(a.body === undefined ? null : JSON.stringify(a.body), {
      status: a.status,
      headers: a.headers,
    });
  }) as typeof fetch;
  return { fetchImpl, calls };
}

const credential = { getToken: async () => ({ token: 't', expiresOnTimestamp: 0 }) };

function client(fetchImpl: typeof fetch, sleeps: number[]) {
  return new AzureMlClient({
    subscriptionId: 's',
    resourceGroup: 'rg',
    workspace: 'w',
    credential,
    fetch: fetchImpl,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
}

describe('the Azure ML ARM client', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('12', now)).toBe(12_000);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it('waits what Retry-After asks, capped at 30 s, and retries network failures with a doubling backoff', async () => {
    const sleeps: number[] = [];
    const { fetchImpl, calls } = scripted([
      {
        status: 429,
        headers: { 'retry-after': '120' },
        body: { error: { code: 'TooManyRequests', message: 'slow down' } },
      },
      { status: 503 },
      { status: 200, body: { name: 'job' } },
    ]);
    const c = client(fetchImpl, sleeps);
    await expect(c.send('GET', c.url(c.armId('jobs', 'j')))).resolves.toMatchObject({ status: 200 });
    expect(sleeps).toEqual([30_000, 2_000]);
    expect(calls[0]!.url).toBe(
      'https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/jobs/j?api-version=2024-04-01',
    );
    expect((calls[0]!.init!.headers as Record<string, string>).authorization).toBe('Bearer t');

    const refused = scripted([]);
    const sleeps2: number[] = [];
    const c2 = client(refused.fetchImpl, sleeps2);
    await expect(c2.send('GET', c2.url('jobs/j'))).rejects.toMatchObject({
      name: 'TransientError',
      code: 'azureml_unavailable',
      message: expect.stringContaining('connection refused'),
    });
    expect(refused.calls).toHaveLength(4);
    expect(sleeps2).toEqual([1_000, 2_000, 4_000]);
  });

  it("turns 4xx into NonRetriableError with Azure's code and message, asked once", async () => {
    const { fetchImpl, calls } = scripted([
      { status: 400, body: { error: { code: 'UserError', message: 'command is required' } } },
      { status: 403, headers: { 'x-ms-error-code': 'AuthorizationFailed' } },
    ]);
    const c = client(fetchImpl, []);
    await expect(c.arm('PUT', 'jobs/j', 'create job j', {})).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'azureml_rejected',
      message: 'create job j: HTTP 400 UserError: command is required',
    });
    await expect(c.arm('GET', 'jobs/j', 'read job j')).rejects.toMatchObject({
      code: 'azureml_forbidden',
      message: expect.stringContaining('AuthorizationFailed'),
    });
    expect(calls).toHaveLength(2);
  });

  it('a credential that gives no token is not retried', async () => {
    const c = new AzureMlClient({
      subscriptionId: 's',
      resourceGroup: 'rg',
      workspace: 'w',
      credential: { getToken: async () => null },
    });
    await expect(c.send('GET', c.url('jobs/j'))).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'azureml_credential_unavailable',
    });
  });

  it('keeps the end of a long log in a failure message of at most 2,000 characters', () => {
    const lines = Array.from({ length: 40 }, (_, i) => `${i}:${'x'.repeat(i % 2 ? 500 : 10)}`);
    const m = withLogTail('the job failed', lines);
    expect(m.length).toBeLessThanOrEqual(2_000);
    expect(m.startsWith('the job failed; last lines of the log:\n')).toBe(true);
    expect(m.endsWith(`39:${'x'.repeat(294)}...`)).toBe(true);
    expect(m.split('\n').length).toBeGreaterThan(5);
    expect(withLogTail('the job failed', [])).toBe('the job failed');
  });
});
