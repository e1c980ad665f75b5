/**
 * Entity critical sections (`context.df.lock`, replay schema V4) through real HTTP against the compiled
 * devhost hosting the entity fixture app (test/fixtures/durable-entities): concurrent read-modify-write
 * sections over two entities never interleave and lose no update; what others send to a locked entity
 * waits for the release, in order; a section ends with its execution (returned or failed); the lock
 * and the waiting operations survive a SIGKILL of devhost's whole process group.
 */
import { type DurableApp, startDurableApp } from './support/durableApp';

let app: DurableApp;

beforeAll(async () => {
  app = await startDurableApp({ app: 'test/fixtures/durable-entities', persistent: true, detached: true });
}, 90_000);

afterAll(async () => {
  await app?.stop();
});

interface Account {
  balance: number;
  journal: string[];
}

async function account(key: string): Promise<{ entityExists: boolean; entityState?: Account }> {
  const res = await fetch(`${app.url}/api/entity/account/${key}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { entityExists: boolean; entityState?: Account };
}

async function signal(key: string, op: string, input: unknown): Promise<number> {
  const res = await fetch(`${app.url}/api/entity/account/${key}/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  await res.text();
  return res.status;
}

/** The journal as consecutive (read, write) pairs of one instance each, or the first pair that is not. */
function sections(journal: string[]): { owners: string[]; broken?: string } {
  const owners: string[] = [];
  for (let i = 0; i < journal.length; i += 2) {
    const r = journal[i]!;
    const w = journal[i + 1] ?? '';
    if (!r.startsWith('r:') || w !== `w:${r.slice(2)}`) return { owners, broken: `${r} ${w}` };
    owners.push(r.slice(2));
  }
  return { owners };
}

describe('critical sections', () => {
  it('concurrent read-modify-write sections over two entities never interleave and lose no update', async () => {
    const keys = ['lk-a', 'lk-b'];
    const rounds = 5;
    const starts = await Promise.all(
      ['p', 'q', 'r'].map((s) => app.start('lockedIncrement', { keys, rounds }, `locked-${s}`)),
    );
    const done = await Promise.all(starts.map((s) => app.waitDone(s.id, 60_000)));
    for (const d of done) {
      expect(d.runtimeStatus).toBe('Completed');
      const out = d.output as { inside: { isLocked: boolean; owned: string[] }[]; after: boolean };
      expect(out.after).toBe(false);
      expect(out.inside).toEqual(Array.from({ length: rounds }, () => ({ isLocked: true, owned: keys })));
    }
    for (const key of keys) {
      const a = await account(key);
      // 3 orchestrations x 5 sections, each +1 on a value it read inside the section: exact.
      expect(a.entityState?.balance).toBe(3 * rounds);
      const s = sections(a.entityState?.journal ?? []);
      expect(s.broken).toBeUndefined();
      expect(s.owners).toHaveLength(3 * rounds);
      expect(new Set(s.owners)).toEqual(new Set(starts.map((x) => x.id)));
    }
    // Both entities saw the sections in the same order: a section held both locks at once.
    const [a, b] = await Promise.all(keys.map(account));
    expect(sections(a!.entityState!.journal).owners).toEqual(sections(b!.entityState!.journal).owners);
  }, 120_000);

  it('a signal to a locked entity waits for the release, also across a SIGKILL of every process', async () => {
    expect(await signal('held', 'add', 10)).toBe(202);
    const { id } = await app.start('holdLock', { key: 'held' });
    await app.waitUntil(id, (s) => s.customStatus === 'holding', 30_000);
    // Queued before the section's second call, yet it waits: the entity serves only the lock holder.
    expect(await signal('held', 'add', 5)).toBe(202);
    await app.devhost.killGroup();
    await app.restart();
    expect(await app.raise(id, 'go', null)).toBe(202);
    const done = await app.waitDone(id, 30_000);
    expect(done).toMatchObject({ runtimeStatus: 'Completed', output: { before: 10, inside: 10, after: 15 } });
    expect((await account('held')).entityState?.balance).toBe(15);
  }, 120_000);

  it('a section ends with its execution: returning or failing while holding the lock frees the entity', async () => {
    const returned = await app.start('lockAndEnd', { key: 'ends' });
    expect(await app.waitDone(returned.id, 30_000)).toMatchObject({ runtimeStatus: 'Completed', output: 0 });
    const failed = await app.start('lockAndEnd', { key: 'ends', fail: true });
    const f = await app.waitDone(failed.id, 30_000);
    expect(f.runtimeStatus).toBe('Failed');
    expect(String(f.output)).toContain('failing while holding ends');
    // A later section and a client signal both get through.
    const next = await app.start('lockedIncrement', { keys: ['ends'], rounds: 1 });
    expect((await app.waitDone(next.id, 30_000)).runtimeStatus).toBe('Completed');
    expect(await signal('ends', 'add', 100)).toBe(202);
    const deadline = Date.now() + 20_000;
    while ((await account('ends')).entityState?.balance !== 101 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await account('ends')).entityState?.balance).toBe(101);
  }, 120_000);

  it('terminating the holder frees the entity: a section waiting for it runs', async () => {
    const holder = await app.start('holdLock', { key: 'terminated' });
    await app.waitUntil(holder.id, (s) => s.customStatus === 'holding', 30_000);
    const waiting = await app.start('lockedIncrement', { keys: ['terminated'], rounds: 1 });
    // The waiting section's lock request is queued behind the holder's lock; terminate the holder.
    const url = holder.terminatePostUri.replace('{text}', 'stop');
    const res = await fetch(url, { method: 'POST' });
    await res.text();
    expect(res.status).toBe(202);
    expect((await app.waitDone(holder.id, 30_000)).runtimeStatus).toBe('Terminated');
    expect((await app.waitDone(waiting.id, 30_000)).runtimeStatus).toBe('Completed');
    expect((await account('terminated')).entityState?.balance).toBe(1);
  }, 60_000);

  it('a lock request of an execution that ended while it waited is dropped: the entity stays free', async () => {
    const holder = await app.start('holdLock', { key: 'dropped' });
    await app.waitUntil(holder.id, (s) => s.customStatus === 'holding', 30_000);
    const waiting = await app.start('lockedIncrement', { keys: ['dropped'], rounds: 1 });
    await app.waitUntil(waiting.id, (s) => s.runtimeStatus === 'Running', 30_000);
    const res = await fetch(waiting.terminatePostUri.replace('{text}', 'gave up'), { method: 'POST' });
    await res.text();
    expect((await app.waitDone(waiting.id, 30_000)).runtimeStatus).toBe('Terminated');
    expect(await app.raise(holder.id, 'go', null)).toBe(202);
    expect(await app.waitDone(holder.id, 30_000)).toMatchObject({ runtimeStatus: 'Completed' });
    // Nobody holds the entity now: a signal applies.
    expect(await signal('dropped', 'add', 7)).toBe(202);
    const deadline = Date.now() + 20_000;
    while ((await account('dropped')).entityState?.balance !== 7 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await account('dropped')).entityState?.balance).toBe(7);
  }, 60_000);

  it('locking an entity that never ran does not make it exist', async () => {
    const { id } = await app.start('lockAndEnd', { key: 'ghost', touch: false });
    expect(await app.waitDone(id, 30_000)).toMatchObject({ runtimeStatus: 'Completed', output: null });
    expect(await account('ghost')).toEqual({ entityExists: false });
    const listed = await app.webhook('GET', 'entities/account');
    expect(listed.status).toBe(200);
    const keys = ((await listed.json()) as { entityId: { key: string } }[]).map((e) => e.entityId.key);
    expect(keys).not.toContain('ghost');
    // and the lock it held is free: a section on it runs
    const next = await app.start('lockedIncrement', { keys: ['ghost'], rounds: 1 });
    expect((await app.waitDone(next.id, 30_000)).runtimeStatus).toBe('Completed');
    expect((await account('ghost')).entityState?.balance).toBe(1);
  }, 60_000);
});
