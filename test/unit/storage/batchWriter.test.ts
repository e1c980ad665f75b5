/**
 * The shared batching writer of predict's traffic stats and monitoring samples
 * (lib/storage/batchWriter.ts): it flushes on size, on time and on shutdown, one flush at a time,
 * keeps what a write could not store for the next flush (bounded), and loses nothing appended
 * while writes are in flight.
 */
import { BatchWriter } from '../../../lib/storage/batchWriter';

/** An owner with a list batch, and a store that records every write. */
function owner(
  options: { flushEvery?: number; flushEveryMs?: number; maxUnwritten?: number } = {},
  write: (items: number[], seq: number) => Promise<number[] | void> = async () => undefined,
) {
  let batch: number[] = [];
  const writes: { seq: number; items: number[] }[] = [];
  const writer = new BatchWriter<number>({
    take: () => {
      const taken = batch;
      batch = [];
      return taken;
    },
    write: async (items, seq) => {
      writes.push({ seq, items: [...items] });
      return write(items, seq);
    },
    flushEvery: options.flushEvery ?? 1_000,
    flushEveryMs: options.flushEveryMs ?? 60_000,
    ...(options.maxUnwritten !== undefined ? { maxUnwritten: options.maxUnwritten } : {}),
  });
  const append = (n: number) => {
    batch.push(n);
    writer.added(1);
  };
  return { writer, writes, append };
}

const settle = () => new Promise((r) => setImmediate(r));

/** A seeded generator (tests must not depend on Math.random). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('BatchWriter', () => {
  it('flushes on size: the append that reaches flushEvery starts one write of the whole batch', async () => {
    const { writer, writes, append } = owner({ flushEvery: 3 });
    append(1);
    append(2);
    await settle();
    expect(writes).toEqual([]);
    append(3);
    await settle();
    expect(writes).toEqual([{ seq: 0, items: [1, 2, 3] }]);
    expect(writer.buffered).toBe(0);
    await writer.close();
  });

  it('flushes on time: a batch below the size is written after flushEveryMs, with no further append', async () => {
    const { writer, writes, append } = owner({ flushEvery: 100, flushEveryMs: 20 });
    append(1);
    append(2);
    expect(writes).toEqual([]);
    while (writes.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(writes).toEqual([{ seq: 0, items: [1, 2] }]);
    await writer.close();
  });

  it('flushes on shutdown: close waits for the write in flight and writes what is left', async () => {
    let release: () => void = () => undefined;
    const { writer, writes, append } = owner({ flushEvery: 2 }, async (_items, seq) => {
      if (seq === 0) await new Promise<void>((r) => (release = r));
    });
    append(1);
    append(2); // flush 0 starts and waits
    append(3); // during the write
    const closed = writer.close();
    await settle();
    expect(writes.map((w) => w.items)).toEqual([[1, 2]]);
    release();
    await closed;
    expect(writes.map((w) => w.items)).toEqual([[1, 2], [3]]);
  });

  it('keeps what a write could not store for the next flush, unchanged, and bounds it', async () => {
    let failing = true;
    const { writer, writes, append } = owner({ maxUnwritten: 3 }, async (items) => {
      if (failing) return items.filter((n) => n % 2 === 0); // the even ones were not stored
      return undefined;
    });
    for (let i = 1; i <= 4; i++) append(i);
    await writer.flush();
    append(5);
    await writer.flush();
    expect(writes.map((w) => w.items)).toEqual([
      [1, 2, 3, 4],
      [2, 4, 5],
    ]);
    // A write that throws keeps everything; beyond maxUnwritten the oldest go, counted.
    const {
      writer: w2,
      writes: writes2,
      append: a2,
    } = owner({ maxUnwritten: 3 }, async () => {
      throw new Error('storage down');
    });
    for (let i = 1; i <= 5; i++) a2(i);
    await w2.flush();
    await w2.flush();
    expect(writes2.map((w) => w.items)).toEqual([
      [1, 2, 3, 4, 5],
      [3, 4, 5],
    ]);
    expect(w2.dropped).toBe(2);
    failing = false;
    await writer.close();
  });

  it('loses nothing and writes nothing twice under concurrent appends, slow writes and failures', async () => {
    const random = prng(7);
    const stored: number[] = [];
    const { writer, writes, append } = owner({ flushEvery: 7, flushEveryMs: 2 }, async (items) => {
      await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
      // Each write stores a random part and reports the rest as not stored.
      const left: number[] = [];
      for (const n of items) (random() < 0.3 ? left : stored).push(n);
      return left;
    });
    const producers = Array.from({ length: 8 }, async (_, p) => {
      for (let i = 0; i < 125; i++) {
        append(p * 1000 + i);
        if (random() < 0.2) await new Promise((r) => setTimeout(r, Math.floor(random() * 3)));
      }
    });
    await Promise.all(producers);
    while (stored.length < 1000) await writer.close();
    expect(stored).toHaveLength(1000);
    expect(new Set(stored).size).toBe(1000);
    expect(writes.length).toBeGreaterThan(1);
    expect(writer.dropped).toBe(0);
  });
});
