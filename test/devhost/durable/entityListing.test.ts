/**
 * Entities, second slice: the entity listing of the Durable HTTP API (`GET entities[/{name}]`, with
 * fetchState, lastOperationTime filters and continuation-token paging) and
 * DEVHOST_DURABLE_MAX_PAYLOAD_BYTES for what an entity batch would store (state, operation results,
 * signals it sends), through the compiled devhost hosting test/fixtures/durable-entities-limits.
 */
import { type DurableApp, startDurableApp } from './support/durableApp';

let app: DurableApp;
const limit = 4096;

beforeAll(async () => {
  app = await startDurableApp({
    app: 'test/fixtures/durable-entities-limits',
    env: { DEVHOST_DURABLE_MAX_PAYLOAD_BYTES: String(limit) },
  });
}, 90_000);

afterAll(async () => {
  await app?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function signal(key: string, op: string, input: unknown): Promise<void> {
  const res = await app.webhook('POST', `entities/note/${key}?op=${op}`, JSON.stringify(input));
  expect(res.status).toBe(202);
}

async function call(key: string, op: string, n: number): Promise<{ result?: unknown; error?: string }> {
  const started = await app.start('callNote', { key, op, n });
  const done = await app.waitDone(started.id, 20_000);
  expect(done.runtimeStatus).toBe('Completed');
  return done.output as { result?: unknown; error?: string };
}

interface Listed {
  entityId: { name: string; key: string };
  lastOperationTime: string;
  state?: unknown;
}

async function list(query: string, token?: string): Promise<{ body: Listed[]; next: string | null }> {
  const res = await fetch(`${app.url}/runtime/webhooks/durabletask/entities${query}`, {
    ...(token ? { headers: { 'x-ms-continuation-token': token } } : {}),
  });
  expect(res.status).toBe(200);
  return { body: (await res.json()) as Listed[], next: res.headers.get('x-ms-continuation-token') };
}

describe('entity listing', () => {
  it('lists the entities that exist, with state on request, filtered by time and paged', async () => {
    for (const k of ['b', 'a', 'c']) await signal(`list-${k}`, 'grow', 2);
    expect((await call('list-c', 'read', 0)).result).toBe(2); // every signal before it has run
    const before = new Date().toISOString();
    await sleep(20);
    await signal('list-d', 'grow', 3);
    expect((await call('list-d', 'read', 0)).result).toBe(3);

    const all = await list('/note?fetchState=true');
    const mine = all.body.filter((e) => e.entityId.key.startsWith('list-'));
    expect(mine.map((e) => [e.entityId.name, e.entityId.key, e.state])).toEqual([
      ['note', 'list-a', 'xx'],
      ['note', 'list-b', 'xx'],
      ['note', 'list-c', 'xx'],
      ['note', 'list-d', 'xxx'],
    ]);
    expect(mine.every((e) => !Number.isNaN(Date.parse(e.lastOperationTime)))).toBe(true);
    // without fetchState there is no state; the name matches case-insensitively; unknown names list nothing
    expect((await list('/NOTE')).body.every((e) => !('state' in e))).toBe(true);
    expect((await list('/other')).body).toEqual([]);
    // lastOperationTimeFrom
    const recent = await list(`/note?lastOperationTimeFrom=${encodeURIComponent(before)}`);
    expect(recent.body.map((e) => e.entityId.key)).toContain('list-d');
    expect(recent.body.map((e) => e.entityId.key)).not.toContain('list-a');
    // paging: top=2 and the continuation token walk the same list
    const keys: string[] = [];
    let token: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await list('/note?top=2', token);
      expect(page.body.length).toBeLessThanOrEqual(2);
      keys.push(...page.body.map((e) => e.entityId.key));
      if (!page.next) break;
      token = page.next;
    }
    expect(keys).toEqual(all.body.map((e) => e.entityId.key));
    // GET entities without a name lists every entity
    expect((await list('')).body.length).toBe(all.body.length);
  }, 60_000);

  it('refuses a bad time or top with 400', async () => {
    expect((await fetch(`${app.url}/runtime/webhooks/durabletask/entities/note?top=-1`)).status).toBe(400);
    expect(
      (await fetch(`${app.url}/runtime/webhooks/durabletask/entities/note?lastOperationTimeFrom=yesterday`))
        .status,
    ).toBe(400);
  });
});

describe('entity payload limits', () => {
  it('a state over the limit undoes the batch: the state stays, the caller gets an error naming the sizes', async () => {
    expect((await call('big', 'grow', 100)).result).toBeUndefined();
    const failed = await call('big', 'grow', limit + 10);
    expect(failed.error).toMatch(
      /The state of entity '@note@big' is 4,208 bytes, over the devhost payload limit of 4,096/,
    );
    expect((await call('big', 'read', 0)).result).toBe(100);
    const read = await app.webhook('GET', 'entities/note/big');
    expect(await read.json()).toBe('x'.repeat(100));
  }, 60_000);

  it('a result over the limit fails that operation only', async () => {
    const failed = await call('echo', 'echo', limit + 1);
    expect(failed.error).toMatch(/The result of operation 'echo' of entity '@note@echo' is 4,099 bytes/);
    expect((await call('echo', 'echo', 10)).result).toBe('y'.repeat(10));
  }, 60_000);

  it('a signal whose input is over the limit is not sent; the rest of the operation stands', async () => {
    await call('teller', 'tell', limit + 1);
    expect((await call('teller', 'read', 0)).result).toBe(1);
    expect((await app.webhook('GET', 'entities/note/teller-copy')).status).toBe(404);
    await call('teller', 'tell', 5);
    for (let i = 0; i < 100 && (await app.webhook('GET', 'entities/note/teller-copy')).status === 404; i++)
      await sleep(50);
    expect(await (await app.webhook('GET', 'entities/note/teller-copy')).json()).toBe('zzzzz');
  }, 60_000);
});
