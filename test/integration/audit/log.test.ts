import type { Container } from '@azure/cosmos';
import { AnchorStore } from '../../../lib/audit/anchors';
import { hashEntry, verifyChain, canonicalJson } from '../../../lib/audit/chain';
import type { AuditEntry } from '../../../lib/audit/chain';
import { AUDIT_CHAIN, AuditLog, entryId } from '../../../lib/audit/log';
import { ArtifactStore } from '../../../lib/storage/blob';
import type { CosmosStore } from '../../../lib/storage/cosmos';
import { cosmosStoreOn } from '../../support/emulators';
import { useEmulators } from '../../support/emulatorSuite';

// The audit log on the real emulators: writers racing for the next seq, and someone with write
// access to Cosmos editing, deleting, reordering and truncating entries behind the log's back.

const suite = useEmulators({ blob: true });
let store: CosmosStore;
let artifacts: ArtifactStore;
let n = 0;

beforeAll(async () => {
  store = suite.cosmos;
  artifacts = ArtifactStore.fromConnectionString(suite.blob.connectionString);
});

/** A fresh chain: its own container and anchor container, so tests do not share a head. */
async function freshLog(): Promise<{ log: AuditLog; container: Container; anchors: AnchorStore }> {
  n += 1;
  const { container } = await store.database.containers.createIfNotExists({
    id: `audit-test-${n}`,
    partitionKey: { paths: ['/chain'] },
  });
  const anchors = new AnchorStore(artifacts, `audit-anchors-test-${n}`);
  await anchors.ensure();
  return { log: new AuditLog(container, { anchors }), container, anchors };
}

const event = (i: number, extra: Partial<{ key: string; anchor: boolean }> = {}) => ({
  kind: 'alias.moved',
  actor: `user${i}@example.com`,
  subject: `model/churn/${i}`,
  data: { to: i, reason: `deploy ${i}` },
  key: `test:${i}`,
  ...extra,
});

async function fill(log: AuditLog, count: number): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (let i = 1; i <= count; i++) out.push(await log.record(event(i)));
  return out;
}

type Raw = AuditEntry & { id: string; chain: string; type: string };
const readRaw = async (c: Container, seq: number) =>
  (await c.item(entryId(seq), AUDIT_CHAIN).read<Raw>()).resource!;
const strip = (d: Raw): Raw => {
  const out = { ...d } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (k.startsWith('_')) delete out[k];
  return out as unknown as Raw;
};

describe('canonical JSON and the entry hash', () => {
  it('does not depend on key order, and changes with any field', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[1,{"x":1,"y":2}]},"b":1}',
    );
    const body = {
      seq: 1,
      at: '2026-01-01T00:00:00.000Z',
      kind: 'k',
      actor: 'a',
      subject: 's',
      data: { x: 1 },
      prevHash: '0'.repeat(64),
    };
    const h = hashEntry(body);
    expect(hashEntry({ ...body, data: { x: 1 } })).toBe(h);
    expect(hashEntry({ ...body, data: { x: 2 } })).not.toBe(h);
    expect(hashEntry({ ...body, actor: 'b' })).not.toBe(h);
  });
});

describe('AuditLog on the Cosmos emulator', () => {
  it('chains entries: each holds the previous hash, and the chain verifies', async () => {
    const { log } = await freshLog();
    const entries = await fill(log, 5);
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    for (let i = 1; i < entries.length; i++) expect(entries[i]!.prevHash).toBe(entries[i - 1]!.hash);
    expect(await log.head()).toEqual({ seq: 5, hash: entries[4]!.hash });
    expect(await log.verify()).toMatchObject({ valid: true, entries: 5, head: { seq: 5 } });
  });

  it('records an event once however often it is recorded (same key)', async () => {
    const { log } = await freshLog();
    const first = await log.record(event(1));
    const again = await log.record({ ...event(1), data: { changed: true } });
    expect(again).toEqual(first);
    await log.record(event(2));
    expect((await log.range(1, 10)).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('loses no entry when 24 writers on separate clients append at once', async () => {
    const { container } = await freshLog();
    // Separate clients, as separate Functions instances would have.
    const clients = Array.from({ length: 4 }, () => cosmosStoreOn(suite.emulator));
    const logs = clients.map(
      (c) =>
        new AuditLog(c.database.container(container.id), {
          sleep: async () => new Promise((r) => setTimeout(r, Math.random() * 10)),
        }),
    );
    const written = await Promise.all(
      Array.from({ length: 24 }, (_, i) => logs[i % 4]!.record(event(i + 1))),
    );
    for (const c of clients) c.client.dispose();
    expect(written.map((e) => e.seq).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 24 }, (_, i) => i + 1),
    );
    const stored = await new AuditLog(container).range(1, 100);
    expect(stored).toHaveLength(24);
    expect(new Set(stored.map((e) => e.subject)).size).toBe(24);
    expect(await new AuditLog(container).verify()).toMatchObject({ valid: true, entries: 24 });
  });

  it('pages newest first and filters by subject', async () => {
    const { log } = await freshLog();
    await fill(log, 7);
    await log.record({ ...event(8), subject: 'model/churn/3', key: 'again:3' });
    const first = await log.page({ limit: 3 });
    expect(first.entries.map((e) => e.seq)).toEqual([8, 7, 6]);
    expect(first.next).toBe(6);
    const second = await log.page({ limit: 3, before: first.next });
    expect(second.entries.map((e) => e.seq)).toEqual([5, 4, 3]);
    expect((await log.page({ subject: 'model/churn/3' })).entries.map((e) => e.seq)).toEqual([8, 3]);
    expect((await log.bySubject('model/churn')).length).toBe(8);
  });
});

describe('anchors', () => {
  it('writes the head once per seq (the timer repeats itself cheaply), and lists every anchor', async () => {
    const { log, anchors } = await freshLog();
    expect(await log.anchor()).toBeUndefined();
    await fill(log, 2);
    const first = await log.anchor();
    expect(first).toMatchObject({ written: true, anchor: { seq: 2 } });
    expect(await log.anchor()).toEqual({ written: false, anchor: first!.anchor });
    await log.record(event(3, { anchor: true }));
    expect((await anchors.list()).map((a) => a.seq)).toEqual([2, 3]);
  });
});

describe('tampering, done directly in the Cosmos emulator, is named at the first bad entry', () => {
  it('an edited entry', async () => {
    const { log, container } = await freshLog();
    await fill(log, 6);
    const doc = strip(await readRaw(container, 3));
    await container
      .item(doc.id, AUDIT_CHAIN)
      .replace({ ...doc, data: { ...doc.data, reason: 'nothing to see' } });
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'edited', seq: 3 } });
  });

  it('an edited entry whose hash was recomputed (the next entry no longer follows it)', async () => {
    const { log, container } = await freshLog();
    await fill(log, 6);
    const doc = strip(await readRaw(container, 3));
    const forged = { ...doc, actor: 'mallory@example.com' };
    await container.item(doc.id, AUDIT_CHAIN).replace({ ...forged, hash: hashEntry(forged) });
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'reordered', seq: 4 } });
  });

  it('a deleted entry', async () => {
    const { log, container } = await freshLog();
    await fill(log, 6);
    await container.item(entryId(4), AUDIT_CHAIN).delete();
    const result = await log.verify();
    expect(result).toMatchObject({ valid: false, firstBad: { kind: 'deleted', seq: 4 } });
  });

  it('two entries swapped (each rehashed to look intact)', async () => {
    const { log, container } = await freshLog();
    await fill(log, 6);
    const a = strip(await readRaw(container, 3));
    const b = strip(await readRaw(container, 4));
    const asA = { ...b, id: a.id, seq: 3 };
    const asB = { ...a, id: b.id, seq: 4 };
    await container.item(a.id, AUDIT_CHAIN).replace({ ...asA, hash: hashEntry(asA) });
    await container.item(b.id, AUDIT_CHAIN).replace({ ...asB, hash: hashEntry(asB) });
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'reordered', seq: 3 } });
  });

  it('the tail cut off after an anchor, head rewritten to match', async () => {
    const { log, container } = await freshLog();
    await fill(log, 4);
    await log.record(event(5, { anchor: true }));
    await fill(log, 0);
    const kept = await readRaw(container, 3);
    await container.item(entryId(5), AUDIT_CHAIN).delete();
    await container.item(entryId(4), AUDIT_CHAIN).delete();
    const head = strip((await container.item('head', AUDIT_CHAIN).read<Raw>()).resource!);
    await container.item('head', AUDIT_CHAIN).replace({ ...head, seq: 3, hash: kept.hash });
    const result = await log.verify();
    expect(result).toMatchObject({ valid: false, firstBad: { kind: 'truncated', seq: 4 } });
    if (!result.valid) expect(result.firstBad.message).toMatch(/anchor/);
  });

  it('the tail cut off with the head left alone', async () => {
    const { log, container } = await freshLog();
    await fill(log, 5);
    await container.item(entryId(5), AUDIT_CHAIN).delete();
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'truncated', seq: 5 } });
  });

  it('the chain rewritten from an anchored entry on, every hash recomputed', async () => {
    const { log, container } = await freshLog();
    await fill(log, 3);
    await log.anchor();
    await fill(log, 0);
    // Rewrite entries 2 and 3 consistently (new data, new hashes, new prevHashes) and the head.
    const one = strip(await readRaw(container, 1));
    let prev = one.hash;
    for (const seq of [2, 3]) {
      const doc = strip(await readRaw(container, seq));
      const forged = { ...doc, data: { rewritten: true }, prevHash: prev };
      const hash = hashEntry(forged);
      await container.item(doc.id, AUDIT_CHAIN).replace({ ...forged, hash });
      prev = hash;
    }
    const head = strip((await container.item('head', AUDIT_CHAIN).read<Raw>()).resource!);
    await container.item('head', AUDIT_CHAIN).replace({ ...head, hash: prev });
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'truncated', seq: 3 } });
  });
});

describe('every hashed field is covered: an edit to any one of them alone is named at that entry', () => {
  // Each field changed in place (the stored hash left as it was). A field the hash forgot would let
  // that edit verify; prevHash and seq have walker checks of their own, so only the hash names
  // them `edited` at the entry itself.
  const edits: [string, (d: Raw) => Raw][] = [
    ['at', (d) => ({ ...d, at: '2020-01-01T00:00:00.000Z' })],
    ['kind', (d) => ({ ...d, kind: 'pipeline.changed' })],
    ['actor', (d) => ({ ...d, actor: 'mallory@example.com' })],
    ['subject', (d) => ({ ...d, subject: 'model/other/1' })],
    ['data (nested member)', (d) => ({ ...d, data: { ...d.data, to: 99 } })],
    ['data (member added)', (d) => ({ ...d, data: { ...d.data, note: 'added later' } })],
    ['prevHash', (d) => ({ ...d, prevHash: 'f'.repeat(64) })],
  ];
  it.each(edits)('%s', async (_field, edit) => {
    const { log, container } = await freshLog();
    await fill(log, 4);
    const doc = strip(await readRaw(container, 3));
    await container.item(doc.id, AUDIT_CHAIN).replace(edit(doc));
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'edited', seq: 3 } });
  });

  it('an entry appended around the log (chained correctly, head left alone) is named', async () => {
    const { log, container } = await freshLog();
    const entries = await fill(log, 3);
    const last = entries[2]!;
    const body = {
      seq: 4,
      at: last.at,
      kind: 'alias.moved',
      actor: 'mallory@example.com',
      subject: 'model/churn/9',
      data: { to: 9 },
      prevHash: last.hash,
    };
    await container.items.create({
      id: entryId(4),
      chain: AUDIT_CHAIN,
      type: 'entry',
      ...body,
      hash: hashEntry(body),
    });
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'edited', seq: 4 } });
  });

  it('a head whose hash was rewritten (same seq) does not verify', async () => {
    const { log, container } = await freshLog();
    await fill(log, 3);
    const head = strip((await container.item('head', AUDIT_CHAIN).read<Raw>()).resource!);
    await container.item('head', AUDIT_CHAIN).replace({ ...head, hash: 'e'.repeat(64) });
    expect(await log.verify()).toMatchObject({ valid: false, firstBad: { kind: 'edited', seq: 3 } });
  });

  it('an entry put back a second time under another id (a duplicate seq) is named', () => {
    const entries: AuditEntry[] = [];
    let prev = '0'.repeat(64);
    for (let seq = 1; seq <= 3; seq++) {
      const body = {
        seq,
        at: '2026-01-01T00:00:00.000Z',
        kind: 'k',
        actor: 'a',
        subject: 's',
        data: { seq },
        prevHash: prev,
      };
      const entry = { ...body, hash: hashEntry(body) };
      entries.push(entry);
      prev = entry.hash;
    }
    const result = verifyChain([...entries, entries[1]!], { seq: 3, hash: prev }, []);
    expect(result).toMatchObject({ valid: false, firstBad: { kind: 'reordered', seq: 2 } });
  });
});

describe('verifyChain (in memory)', () => {
  it('an empty chain with no head is valid', () => {
    expect(verifyChain([], undefined, [])).toMatchObject({ valid: true, entries: 0 });
  });
});
