import { tee } from '../../../lib/data/reading/tee';

async function* chunks(n: number, pulled: { count: number }): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < n; i++) {
    pulled.count++;
    yield Uint8Array.of(i);
  }
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const c of it) out.push(c[0]!);
  return out;
}

describe('tee: one pass over a stream feeds two consumers', () => {
  it('both branches see every chunk in order', async () => {
    const pulled = { count: 0 };
    const { branches } = tee(chunks(50, pulled), { highWater: 4 });
    const [a, b] = await Promise.all([drain(branches[0]), drain(branches[1])]);
    expect(a).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(b).toEqual(a);
    expect(pulled.count).toBe(50);
  });

  it('a branch that runs ahead waits once the other is highWater chunks behind', async () => {
    const pulled = { count: 0 };
    const { branches } = tee(chunks(100, pulled), { highWater: 3 });
    const fast = branches[0][Symbol.asyncIterator]();
    const reads = [fast.next(), fast.next(), fast.next(), fast.next(), fast.next()];
    await new Promise((r) => setTimeout(r, 20));
    expect(pulled.count).toBeLessThanOrEqual(4); // the slow branch has not read anything yet
    const slow = drain(branches[1]);
    await Promise.all(reads);
    for (let r = await fast.next(); !r.done; r = await fast.next());
    expect(await slow).toHaveLength(100);
  });

  it('holds the first branch at the end until told, and fails both on abort', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pulled = { count: 0 };
    const t = tee(chunks(3, pulled), { holdFirstEnd: gate });
    let ended = false;
    const first = drain(t.branches[0]).then((v) => {
      ended = true;
      return v;
    });
    await drain(t.branches[1]);
    await new Promise((r) => setTimeout(r, 10));
    expect(ended).toBe(false);
    release();
    expect(await first).toEqual([0, 1, 2]);

    const t2 = tee(chunks(1000, { count: 0 }));
    const a = drain(t2.branches[0]);
    const b = drain(t2.branches[1]);
    t2.abort(new Error('refused'));
    await expect(a).rejects.toThrow('refused');
    await expect(b).rejects.toThrow('refused');
  });
});
