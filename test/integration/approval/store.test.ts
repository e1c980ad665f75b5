import type { Container } from '@azure/cosmos';
import { ApprovalStore, DecisionExistsError, cosmosStatus } from '../../../lib/approval/store';
import { closeRecord, escalateRecord, markReminded } from '../../../lib/approval/record';
import { decide } from '../../../lib/approval/policy';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startCosmos } from '../../support/emulators';
import { sampleDecision, sampleRecord } from '../../support/approvalSample';

describe('approval store on the Cosmos emulator', () => {
  let cosmos: CosmosEmulator;
  let container: Container;
  let store: ApprovalStore;

  beforeAll(async () => {
    cosmos = await startCosmos();
    container = await cosmosContainer(cosmos, 'approvals');
    store = new ApprovalStore(container);
  });
  afterAll(() => cosmos.stop());

  it('the emulator really answers 409 to a second create with the same id, and 412 to a stale If-Match', async () => {
    await container.items.create({ id: 'probe', runId: 'p' });
    let status: number | undefined;
    try {
      await container.items.create({ id: 'probe', runId: 'p' });
    } catch (e) {
      status = cosmosStatus(e);
    }
    expect(status).toBe(409);
    const { resource } = await container.item('probe', 'p').read<{ _etag: string }>();
    await container.item('probe', 'p').replace({ id: 'probe', runId: 'p', n: 1 });
    const stale = await container
      .item('probe', 'p')
      .replace(
        { id: 'probe', runId: 'p', n: 2 },
        { accessCondition: { type: 'IfMatch', condition: resource?._etag ?? '' } },
      )
      .then(() => 200)
      .catch((e: unknown) => cosmosStatus(e));
    expect(stale).toBe(412);
  });

  it('creates the record once; a retried create returns the stored one', async () => {
    const rec = sampleRecord(undefined, { runId: 'run-create' });
    expect((await store.createRecord(rec)).created).toBe(true);
    const again = await store.createRecord({ ...rec, deadline: new Date(0).toISOString() });
    expect(again.created).toBe(false);
    expect(again.record.deadline).toBe(rec.deadline);
  });

  it('keeps the first decision per reviewer: a replay gets 409 with the decision that stands', async () => {
    const rec = (await store.createRecord(sampleRecord(undefined, { runId: 'run-replay' }))).record;
    const first = sampleDecision(rec, 'alice@example.com', 'approve', '2026-03-01T10:00:00.000Z');
    await store.createDecision(first);
    const err = await store
      .createDecision({ ...first, decision: 'reject', decidedAt: '2026-03-01T10:00:01.000Z' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DecisionExistsError);
    expect((err as DecisionExistsError).status).toBe(409);
    expect((err as DecisionExistsError).existing?.decision).toBe('approve');
    const state = await store.readState(rec.runId, rec.id);
    expect(state?.decisions).toHaveLength(1);
    expect(state?.decisions[0]?.decision).toBe('approve');
  });

  it('100 concurrent conflicting decisions by one reviewer end with exactly one recorded', async () => {
    const rec = (await store.createRecord(sampleRecord(undefined, { runId: 'run-race' }))).record;
    const attempts = Array.from({ length: 100 }, (_, i) =>
      store.createDecision(
        sampleDecision(
          rec,
          'bob@example.com',
          i % 2 ? 'approve' : 'reject',
          `2026-03-01T10:00:${String(i % 60).padStart(2, '0')}.000Z`,
          `attempt ${i}`,
        ),
      ),
    );
    const results = await Promise.allSettled(attempts);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(99);
    for (const l of lost) expect((l as PromiseRejectedResult).reason).toBeInstanceOf(DecisionExistsError);
    const state = await store.readState(rec.runId, rec.id);
    expect(state?.decisions).toHaveLength(1);
    expect(state?.decisions[0]?.comment).toBe(
      (won[0] as PromiseFulfilledResult<{ comment: string }>).value.comment,
    );
  });

  it('reads a record with only its own decisions (another approval of the same run is separate)', async () => {
    const a = (await store.createRecord(sampleRecord(undefined, { runId: 'run-two' }))).record;
    const b = (await store.createRecord({ ...a, id: 'run-two:approval2' })).record;
    await store.createDecision(sampleDecision(a, 'alice@example.com', 'approve', '2026-03-01T10:00:00.000Z'));
    await store.createDecision(
      sampleDecision(b, 'alice@example.com', 'reject', '2026-03-01T10:00:00.000Z', 'no'),
    );
    expect((await store.readState('run-two', a.id))?.decisions.map((d) => d.decision)).toEqual(['approve']);
    expect((await store.readState('run-two', b.id))?.decisions.map((d) => d.decision)).toEqual(['reject']);
    expect(await store.readState('run-two', 'nope')).toBeUndefined();
  });

  it('applies concurrent record changes under ETag conditions without losing one', async () => {
    const rec = (await store.createRecord(sampleRecord(undefined, { runId: 'run-etag' }))).record;
    const at = new Date(rec.deadline);
    await Promise.all([
      store.updateRecord(rec.runId, rec.id, (r) => markReminded(r)),
      store.updateRecord(rec.runId, rec.id, (r) => escalateRecord(r, at)),
      store.updateRecord(rec.runId, rec.id, (r) => escalateRecord(r, at)),
    ]);
    const after = await store.getRecord(rec.runId, rec.id);
    expect(after?.stage).toBe('escalated');
    expect(after?.remindedStages).toEqual(['primary']);
    const closed = await store.updateRecord(rec.runId, rec.id, (r) => closeRecord(r, 'approved', ['ok'], at));
    expect(closed.status).toBe('approved');
    expect(decide(closed, [], at).outcome).toBe('approved');
  });
});
