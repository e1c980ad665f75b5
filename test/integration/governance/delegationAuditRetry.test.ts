// Security review: a delegation change whose audit write fails must not lose its audit event. The
// change and a note of the event are stored together; a retry finds the identical delegation (or
// the noted end), answers it, and records the event under the same key, exactly once.
import { DelegationStore } from '../../../lib/approval/delegation';
import type { AuditEvent, AuditSink } from '../../../lib/audit/log';
import { AuditLog } from '../../../lib/audit/log';
import { useEmulators } from '../../support/emulatorSuite';

const T0 = new Date('2026-03-01T09:00:00.000Z');
const at = (hours: number) => new Date(T0.getTime() + hours * 3_600_000).toISOString();

const suite = useEmulators();
let audit: AuditLog;
let counter = 0;

/** The real audit log, failing the next `failures` writes the way a Cosmos outage would. */
function flaky(): AuditSink & { failures: number } {
  const sink = {
    failures: 0,
    async record(event: AuditEvent) {
      if (sink.failures > 0) {
        sink.failures--;
        throw new Error('audit unavailable (test)');
      }
      return audit.record(event);
    },
  };
  return sink;
}

beforeAll(async () => {
  audit = new AuditLog(suite.cosmos.container('audit'));
});

const kinds = async (reviewer: string) =>
  (await audit.page({ subject: `reviewer/${reviewer}` })).entries.map((e) => e.kind).sort();

describe('delegation audit survives a failed audit write', () => {
  it('a retried PUT returns the identical delegation and records delegation.set once', async () => {
    const sink = flaky();
    const store = new DelegationStore(suite.cosmos.container('approvals'), sink);
    const reviewer = `ana${++counter}@example.com`;
    const body = { to: 'zoe@example.com', until: at(48), reason: 'conference' };
    const ctx = { now: T0, by: 'operator' };
    sink.failures = 1;
    await expect(store.set(reviewer, body, ctx)).rejects.toThrow(/audit unavailable/);
    expect(await kinds(reviewer)).toEqual([]);
    // The retry comes a little later: no `from` in the body, so it must not be taken for a new one.
    const again = await store.set(reviewer, body, { now: new Date(T0.getTime() + 5_000), by: 'operator' });
    const stored = await store.list(reviewer);
    expect(stored).toHaveLength(1);
    expect(again).toEqual(stored[0]);
    expect(again.from).toBe(T0.toISOString());
    expect(await kinds(reviewer)).toEqual(['delegation.set']);
    // A third identical PUT records nothing more.
    await store.set(reviewer, body, ctx);
    expect(await kinds(reviewer)).toEqual(['delegation.set']);
  });

  it('the same delegation gets the same id (so the same audit key)', async () => {
    const reviewer = `bea${++counter}@example.com`;
    const body = { to: 'zoe@example.com', from: at(1), until: at(48), reason: 'leave' };
    const a = new DelegationStore(suite.cosmos.container('approvals'), audit);
    const first = await a.set(reviewer, body, { now: T0, by: 'operator' });
    await a.end(reviewer, { now: T0, by: 'operator' });
    const second = await a.set(reviewer, body, { now: T0, by: 'operator' });
    expect(second.id).toBe(first.id);
    expect(first.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('a retried DELETE returns the end it made and records delegation.ended, not ending the next one', async () => {
    const sink = flaky();
    const store = new DelegationStore(suite.cosmos.container('approvals'), sink);
    const reviewer = `cy${++counter}@example.com`;
    const ctx = { now: T0, by: 'operator' };
    const now = await store.set(reviewer, { to: 'zoe@example.com', until: at(24), reason: 'trip' }, ctx);
    const later = await store.set(
      reviewer,
      { to: 'dan@example.com', from: at(48), until: at(72), reason: 'leave' },
      ctx,
    );
    sink.failures = 1;
    await expect(store.end(reviewer, ctx)).rejects.toThrow(/audit unavailable/);
    const retried = await store.end(reviewer, ctx);
    expect(retried).toMatchObject({ id: now.id, endedBy: 'operator' });
    const items = await store.list(reviewer);
    expect(items.find((d) => d.id === later.id)?.endedAt).toBeUndefined();
    expect(await kinds(reviewer)).toEqual(['delegation.ended', 'delegation.set', 'delegation.set']);
  });

  it('an unrecorded event is also recorded by the next change of that reviewer', async () => {
    const sink = flaky();
    const store = new DelegationStore(suite.cosmos.container('approvals'), sink);
    const reviewer = `di${++counter}@example.com`;
    const ctx = { now: T0, by: 'operator' };
    sink.failures = 1;
    await expect(
      store.set(reviewer, { to: 'zoe@example.com', until: at(24), reason: 'trip' }, ctx),
    ).rejects.toThrow(/audit unavailable/);
    await store.set(reviewer, { to: 'dan@example.com', from: at(48), until: at(72), reason: 'leave' }, ctx);
    expect(await kinds(reviewer)).toEqual(['delegation.set', 'delegation.set']);
    expect((await audit.verify()).valid).toBe(true);
  });
});
