/**
 * The Cosmos lease helper (lib/storage/lease.ts) on its own, on the Cosmos emulator, with a lease
 * kind of the test's own: racing takers (exactly one wins, the rest name it), takeover from a
 * holder that ended, release by someone who does not hold it (refused, nothing changes), a retried
 * take by the holder, and the `turn` hook that lets an earlier waiter go first.
 */
import type { CosmosStore } from '../../lib/storage';
import type { LeaseSpec } from '../../lib/storage/lease';
import { CosmosLease } from '../../lib/storage/lease';
import { useEmulators } from '../support/emulatorSuite';

interface TestLeaseDoc {
  id: 'test-lease';
  kind: 'testLease';
  modelName: string;
  holder: string | null;
  since?: string;
}

const spec: LeaseSpec<TestLeaseDoc, string> = {
  container: 'models',
  id: 'test-lease',
  partition: (key) => key,
  fresh: (key, holder, at) => ({ id: 'test-lease', kind: 'testLease', modelName: key, holder, since: at }),
  hold: ({ id, kind, modelName }, holder, at) => ({
    id,
    kind,
    modelName,
    holder,
    ...(holder !== null && at ? { since: at } : {}),
  }),
  holderOf: (doc) => doc.holder ?? '',
  idOf: (h) => h,
  busyCode: 'test_lease_busy',
  describe: (key) => `test lease of ${key}`,
};

const T0 = Date.parse('2026-05-01T08:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const alive = async () => true;
const ended = async () => false;

const suite = useEmulators();
let cosmos: CosmosStore;
let lease: CosmosLease<TestLeaseDoc, string>;

beforeAll(() => {
  cosmos = suite.cosmos;
  lease = new CosmosLease(cosmos, spec);
});

describe('CosmosLease on the Cosmos emulator', () => {
  it('two racers for a lease never taken: exactly one wins, the other names it', async () => {
    const [a, b] = await Promise.all([
      lease.take('k-two', 'racer-a', at(0), alive),
      lease.take('k-two', 'racer-b', at(0), alive),
    ]);
    const outcomes = [a, b];
    expect(outcomes.filter((o) => o.granted)).toHaveLength(1);
    const winner = a.granted ? 'racer-a' : 'racer-b';
    const loser = outcomes.find((o) => !o.granted)!;
    expect(loser).toMatchObject({ granted: false, holder: winner });
    const stored = await lease.read('k-two');
    expect(stored).toMatchObject({ id: 'test-lease', kind: 'testLease', modelName: 'k-two', holder: winner });
  });

  it('two racers for a freed lease (the ETag-replace path): exactly one wins', async () => {
    expect(await lease.take('k-free', 'first', at(0), alive)).toEqual({ granted: true });
    expect(await lease.release('k-free', 'first')).toBe(true);
    const outcomes = await Promise.all(['x', 'y', 'z'].map((id) => lease.take('k-free', id, at(1), alive)));
    expect(outcomes.filter((o) => o.granted)).toHaveLength(1);
    const holder = (await lease.read('k-free'))!.holder;
    for (const o of outcomes) if (!o.granted) expect(o).toMatchObject({ holder });
  });

  it('the holder taking again (a retried caller) is granted and changes nothing', async () => {
    await lease.take('k-retry', 'me', at(0), alive);
    const before = await lease.read('k-retry');
    expect(await lease.take('k-retry', 'me', at(9), alive)).toEqual({ granted: true });
    expect((await lease.read('k-retry'))?._etag).toBe(before?._etag);
  });

  it('a holder that ended is taken over and named; a live one is not', async () => {
    await lease.take('k-over', 'crashed', at(0), alive);
    const judged: string[] = [];
    const out = await lease.take('k-over', 'next', at(5), async (h) => {
      judged.push(h);
      return false;
    });
    expect(out).toEqual({ granted: true, tookOverFrom: 'crashed' });
    expect(judged).toEqual(['crashed']);
    expect(await lease.read('k-over')).toMatchObject({ holder: 'next', since: at(5) });
    expect(await lease.take('k-over', 'third', at(6), alive)).toMatchObject({
      granted: false,
      holder: 'next',
    });
  });

  it('a release by someone who does not hold it is refused and changes nothing', async () => {
    await lease.take('k-rel', 'holder', at(0), alive);
    const before = await lease.read('k-rel');
    expect(await lease.release('k-rel', 'intruder')).toBe(false);
    const after = await lease.read('k-rel');
    expect(after?._etag).toBe(before?._etag);
    expect(after).toMatchObject({ holder: 'holder', since: at(0) });
    expect(await lease.release('k-never', 'holder')).toBe(false);
    expect(await lease.read('k-never')).toBeUndefined();
    // The holder frees it once; the free document keeps no holder fields.
    expect(await lease.release('k-rel', 'holder')).toBe(true);
    expect(await lease.release('k-rel', 'holder')).toBe(false);
    const freed = await lease.read('k-rel');
    expect(freed).toMatchObject({ holder: null });
    expect(freed).not.toHaveProperty('since');
  });

  it('turn: a free lease goes to the one it names; a live holder is named before turn is asked', async () => {
    const asked: string[] = [];
    const turn = (ahead: string | undefined) => async () => {
      asked.push(ahead ?? '(none)');
      return ahead;
    };
    expect(await lease.take('k-turn', 'late', at(0), alive, turn('early'))).toEqual({
      granted: false,
      ahead: 'early',
    });
    expect(await lease.read('k-turn')).toBeUndefined();
    expect(await lease.take('k-turn', 'early', at(1), alive, turn(undefined))).toEqual({ granted: true });
    // Held by a live run: turn is not asked, the holder is named.
    expect(await lease.take('k-turn', 'late', at(2), alive, turn('whoever'))).toMatchObject({
      granted: false,
      holder: 'early',
    });
    expect(asked).toEqual(['early', '(none)']);
    // Held by an ended run: turn is asked before the takeover, and can stop it.
    expect(await lease.take('k-turn', 'late', at(3), ended, turn('other'))).toEqual({
      granted: false,
      ahead: 'other',
    });
    expect((await lease.read('k-turn'))?.holder).toBe('early');
  });
});
