/**
 * TrafficRecorder when a flush fails part-way: the records of the failed flush are written again
 * with the same ids (a record the failed write did store answers 409, counted as written), so the
 * stored counts equal the requests recorded, never more.
 */
import type { TrafficRecord } from '../../../lib/rollout/traffic';
import { TrafficRecorder, sumRecords } from '../../../lib/rollout/traffic';

/** Stores records by id like the traffic container (409 on an id already there: skipped). */
function container(failures: (records: TrafficRecord[], call: number) => number | undefined) {
  const stored = new Map<string, TrafficRecord>();
  const calls: string[][] = [];
  return {
    stored,
    calls,
    write: async (records: TrafficRecord[]) => {
      calls.push(records.map((r) => r.id));
      // Store the first `ok` records, then fail (a partly failed Promise.all of creates).
      const ok = failures(records, calls.length) ?? records.length;
      for (const r of records.slice(0, ok)) if (!stored.has(r.id)) stored.set(r.id, r);
      if (ok < records.length) throw new Error('503 from Cosmos');
    },
  };
}

const sample = (variant: 'candidate' | 'production', version: number) => ({
  modelName: 'wages',
  version,
  variant,
  rolloutId: 'run-1:rollout',
  step: 0,
  rows: 1,
  latencyMs: 4,
});

describe('TrafficRecorder after a partly failed flush', () => {
  it('re-writes exactly the failed flush records (same ids) and counts each request once', async () => {
    // The first flush stores its first record (candidate) and fails on the second (production).
    const c = container((_r, call) => (call === 1 ? 1 : undefined));
    const recorder = new TrafficRecorder({ write: c.write, flushEveryMs: 60_000, flushEveryRequests: 1_000 });
    for (let i = 0; i < 30; i++) recorder.record(sample('candidate', 2));
    for (let i = 0; i < 10; i++) recorder.record(sample('production', 1));
    await recorder.flush();
    expect(c.stored.size).toBe(1);

    for (let i = 0; i < 5; i++) recorder.record(sample('candidate', 2));
    await recorder.close();

    // The second write carried both records of the failed flush under their ids, then the new one.
    expect(c.calls[1]!.slice(0, 2)).toEqual(c.calls[0]);
    expect(c.calls[1]).toHaveLength(3);
    const all = [...c.stored.values()];
    expect(sumRecords(all.filter((r) => r.variant === 'candidate')).requests).toBe(35);
    expect(sumRecords(all.filter((r) => r.variant === 'production')).requests).toBe(10);
  });

  it('a flush that fails again keeps the records for the one after, still under the same ids', async () => {
    const c = container((_r, call) => (call <= 2 ? 0 : undefined));
    const recorder = new TrafficRecorder({ write: c.write, flushEveryMs: 60_000, flushEveryRequests: 1_000 });
    for (let i = 0; i < 7; i++) recorder.record(sample('candidate', 2));
    await recorder.flush();
    await recorder.flush();
    await recorder.flush();
    expect(c.calls).toHaveLength(3);
    expect(new Set(c.calls.flat())).toEqual(new Set(c.calls[0]));
    expect(sumRecords([...c.stored.values()]).requests).toBe(7);
    // Nothing left: a further flush writes nothing.
    await recorder.close();
    expect(c.calls).toHaveLength(3);
  });
});

describe('TrafficRecorder keys', () => {
  it('sums per key across more keys than it keeps at hand, and starts afresh after each flush', async () => {
    const c = container(() => undefined);
    const recorder = new TrafficRecorder({ write: c.write, flushEveryMs: 60_000, flushEveryRequests: 1_000 });
    // Seven keys (more than the few compared field by field), interleaved; a rollout id of '' and
    // none, and a step of undefined and none, are the same key as before.
    const keys = [
      { modelName: 'a', version: 1, variant: 'production' as const },
      { modelName: 'a', version: 2, variant: 'candidate' as const, rolloutId: 'r', step: 0 },
      { modelName: 'a', version: 2, variant: 'candidate' as const, rolloutId: 'r', step: 1 },
      { modelName: 'a', version: 1, variant: 'production' as const, rolloutId: 'r', step: 1 },
      { modelName: 'b', version: 1, variant: 'production' as const },
      { modelName: 'b', version: 1, variant: 'shadow' as const, rolloutId: 'q', step: 0 },
      { modelName: 'a', version: 3, variant: 'candidate' as const, rolloutId: 'r', step: 1 },
    ];
    for (let round = 0; round < 3; round++) {
      keys.forEach((k, i) => {
        for (let j = 0; j <= i; j++) recorder.record({ ...k, rows: 2 });
      });
      recorder.record({
        modelName: 'a',
        version: 1,
        variant: 'production',
        rolloutId: '',
        step: undefined,
        rows: 1,
      });
      if (round === 1) await recorder.flush();
    }
    await recorder.close();
    const all = [...c.stored.values()];
    expect(c.calls).toHaveLength(2);
    expect(c.calls[0]).toHaveLength(7);
    expect(c.calls[1]).toHaveLength(7);
    keys.forEach((k, i) => {
      const mine = all.filter(
        (r) =>
          r.modelName === k.modelName &&
          r.version === k.version &&
          r.variant === k.variant &&
          r.rolloutId === k.rolloutId &&
          r.step === k.step,
      );
      expect(mine).toHaveLength(2);
      const extra = i === 0 ? 3 : 0;
      expect(sumRecords(mine).requests).toBe(3 * (i + 1) + extra);
      expect(sumRecords(mine).rows).toBe(6 * (i + 1) + extra);
    });
  });
});
