/**
 * Durable entities (durable-host-spec appendix B) through real HTTP against the compiled devhost hosting
 * the entity fixture app (test/fixtures/durable-entities): the library's batch protocol, client
 * signals and reads, the entity HTTP API, callEntity / signalEntity from orchestrations, and crash
 * safety (a SIGKILL of devhost's whole process group loses no acknowledged signal).
 */
import { type DurableApp, startDurableApp } from './support/durableApp';

let app: DurableApp;

beforeAll(async () => {
  app = await startDurableApp({ app: 'test/fixtures/durable-entities', persistent: true, detached: true });
}, 90_000);

afterAll(async () => {
  await app?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** client.signalEntity through the fixture's HTTP function. */
async function signal(name: string, key: string, op: string, input?: unknown): Promise<number> {
  const res = await fetch(`${app.url}/api/entity/${name}/${key}/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(input === undefined ? {} : { body: JSON.stringify(input) }),
  });
  await res.text();
  return res.status;
}

/** client.readEntityState through the fixture's HTTP function. */
async function read(name: string, key: string): Promise<{ entityExists: boolean; entityState?: unknown }> {
  const res = await fetch(`${app.url}/api/entity/${name}/${key}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { entityExists: boolean; entityState?: unknown };
}

async function waitForState(name: string, key: string, expected: unknown, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    last = await read(name, key);
    if (JSON.stringify((last as { entityState?: unknown }).entityState) === JSON.stringify(expected)) return;
    await sleep(50);
  }
  throw new Error(`${name}/${key} never reached ${JSON.stringify(expected)}: last ${JSON.stringify(last)}`);
}

describe('client operations', () => {
  it('a counter hammered by concurrent signals ends at the exact sum', async () => {
    const amounts = Array.from({ length: 300 }, (_, i) => (i % 7) + 1);
    const codes = await Promise.all(amounts.map((n) => signal('tally', 'hammer', 'add', n)));
    expect(codes.every((c) => c === 202)).toBe(true);
    await waitForState(
      'tally',
      'hammer',
      amounts.reduce((a, b) => a + b, 0),
    );
  }, 60_000);

  it('readEntityState says an entity that never ran does not exist, and one that was removed no longer does', async () => {
    expect(await read('tally', 'never')).toEqual({ entityExists: false });
    expect(await signal('tally', 'gone', 'add', 3)).toBe(202);
    await waitForState('tally', 'gone', 3);
    expect(await signal('tally', 'gone', 'remove')).toBe(202);
    const deadline = Date.now() + 20_000;
    while ((await read('tally', 'gone')).entityExists && Date.now() < deadline) await sleep(50);
    expect(await read('tally', 'gone')).toEqual({ entityExists: false });
  }, 60_000);

  it('an operation that throws fails that operation only: the operations around it apply', async () => {
    expect(await signal('tally', 'partial', 'add', 1)).toBe(202);
    expect(await signal('tally', 'partial', 'fail')).toBe(202);
    expect(await signal('tally', 'partial', 'add', 10)).toBe(202);
    await waitForState('tally', 'partial', 11);
  }, 60_000);

  it('signals an entity sends reach their targets (fan-out across entities)', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `fan${i}`);
    expect(await signal('tally', 'hub', 'fanOut', { keys, amount: 4 })).toBe(202);
    for (const k of keys) await waitForState('tally', k, 4);
  }, 60_000);
});

describe('entity HTTP API', () => {
  it('POST entities/{name}/{key}?op= answers 202 and GET answers 200 with the state, 404 when absent', async () => {
    const post = await app.webhook('POST', 'entities/tally/web?op=add', '41');
    expect(post.status).toBe(202);
    const post2 = await app.webhook('POST', 'entities/Tally/web?op=add', '1');
    expect(post2.status).toBe(202);
    await waitForState('tally', 'web', 42);
    const get = await app.webhook('GET', 'entities/tally/web');
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toContain('application/json');
    expect(await get.json()).toBe(42);
    const missing = await app.webhook('GET', 'entities/tally/absent');
    expect(missing.status).toBe(404);
  });

  it('refuses a missing operation, bad JSON and unknown entity functions with 400', async () => {
    const noOp = await app.webhook('POST', 'entities/tally/web', '1');
    expect(noOp.status).toBe(400);
    expect(await noOp.text()).toContain("'op'");
    const bad = await app.webhook('POST', 'entities/tally/web?op=add', '{nope');
    expect(bad.status).toBe(400);
    const unknown = await app.webhook('POST', 'entities/nosuch/k?op=add', '1');
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain("The function 'nosuch' doesn't exist");
  });
});

describe('from orchestrations', () => {
  it('callEntity returns each operation result in order', async () => {
    const { id } = await app.start('callTally', { key: 'calls', amounts: [1, 2, 3] });
    const done = await app.waitDone(id);
    // add returns nothing (undefined ⇒ null in JSON), get returns the tally.
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: [null, null, null, 6] });
  });

  it('signalEntity from an orchestration arrives in order, before a later callEntity', async () => {
    const { id } = await app.start('signalThenCall', { key: 'order', amounts: [5, 1, 4, 2, 3] });
    expect(await app.waitDone(id)).toMatchObject({ runtimeStatus: 'Completed', output: [5, 1, 4, 2, 3] });
  });

  it('signals sent in the episode that continues as new are delivered', async () => {
    const { id } = await app.start('signalAndContinue', { key: 'generations', n: 4 });
    expect(await app.waitDone(id)).toMatchObject({ runtimeStatus: 'Completed', output: 'done' });
    await waitForState('tally', 'generations', 5);
  });

  it('an entity operation that throws reaches the orchestration as a catchable error', async () => {
    const { id } = await app.start('callFails', { key: 'thrower' });
    expect(await app.waitDone(id)).toMatchObject({
      runtimeStatus: 'Completed',
      output: { caught: true, value: 5 },
    });
  });

  it('calls to several entities run in parallel (Task.all)', async () => {
    for (const [k, n] of [
      ['pa', 1],
      ['pb', 2],
    ] as const)
      expect(await signal('tally', k, 'add', n)).toBe(202);
    await waitForState('tally', 'pa', 1);
    await waitForState('tally', 'pb', 2);
    const { id } = await app.start('parallelCalls', { keys: ['pa', 'pb', 'pc'] });
    expect(await app.waitDone(id)).toMatchObject({ runtimeStatus: 'Completed', output: [1, 2, 0] });
  });

  it('an unknown entity name and a broken locking rule (nested lock) fail the instance with a message naming them', async () => {
    const unknown = await app.start('callUnknown');
    const u = await app.waitDone(unknown.id);
    expect(u.runtimeStatus).toBe('Failed');
    expect(String(u.output)).toContain(
      "The function 'nosuch' doesn't exist, is disabled, or is not an entity function",
    );
    const locked = await app.start('useLock');
    const l = await app.waitDone(locked.id);
    expect(l.runtimeStatus).toBe('Failed');
    expect(String(l.output)).toMatch(/lock/i);
  });
});

describe('crash safety', () => {
  it('callEntity results survive replay and a restart', async () => {
    expect(await signal('tally', 'replayed', 'add', 7)).toBe(202);
    await waitForState('tally', 'replayed', 7);
    const { id } = await app.start('readWaitRead', { key: 'replayed' });
    await app.waitUntil(
      id,
      (s) => (s.historyEvents ?? []).filter((e) => e.EventType === 'EventRaised').length === 1,
    );
    // The tally changes after the first read: a replay that re-ran the call would see 100.
    expect(await signal('tally', 'replayed', 'add', 93)).toBe(202);
    await waitForState('tally', 'replayed', 100);
    await app.devhost.killGroup();
    await app.restart();
    expect(await app.raise(id, 'Continue', 'go')).toBe(202);
    const done = await app.waitDone(id, 30_000);
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: { before: 7, after: 100, data: 'go' } });
  }, 90_000);

  it('entity state and every acknowledged signal survive a SIGKILL of the whole process group', async () => {
    expect(await signal('tally', 'durable', 'add', 1000)).toBe(202);
    await waitForState('tally', 'durable', 1000);
    // Signals keep coming from 8 senders; every process of devhost dies at a moment mid-stream.
    let stop = false;
    let acked = 0;
    let attempted = 0;
    const sender = async (): Promise<void> => {
      while (!stop) {
        attempted++;
        try {
          if ((await signal('tally', 'durable', 'add', 1)) === 202) acked++;
        } catch {
          // devhost is gone: this signal may or may not have been stored
        }
      }
    };
    const senders = Array.from({ length: 8 }, sender);
    await sleep(700);
    await app.devhost.killGroup();
    stop = true;
    await Promise.all(senders);
    expect(acked).toBeGreaterThan(20);
    await app.restart();
    // Every acknowledged signal is applied, once: the tally lies between the acknowledged and the sent.
    const tally = async (): Promise<number> => Number((await read('tally', 'durable')).entityState);
    const deadline = Date.now() + 30_000;
    while ((await tally()) < 1000 + acked && Date.now() < deadline) await sleep(50);
    await sleep(500);
    const value = await tally();
    expect(value).toBeGreaterThanOrEqual(1000 + acked);
    expect(value).toBeLessThanOrEqual(1000 + attempted);
  }, 90_000);
});
