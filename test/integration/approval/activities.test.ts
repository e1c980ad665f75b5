import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';
import resources from '../../../lib/resources.json';
import { ApprovalStore } from '../../../lib/approval/store';
import { verifyApprovalToken } from '../../../lib/approval/token';
import { parseKeyring } from '../../../lib/keyring';
import { OutboxNotifier, readOutbox } from '../../../lib/notify/outbox';
import { createApproval } from '../../../activities/createApproval';
import { createApprovalActivity } from '../../../lib/contracts/approval';
import { readApproval } from '../../../activities/readApproval';
import { updateApproval } from '../../../activities/updateApproval';
import { notifyReviewers } from '../../../activities/notifyReviewers';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startAzuriteBlob, startCosmos } from '../../support/emulators';
import { sampleApprovalInput, sampleDecision } from '../../support/approvalSample';

/** Activities run at least once: each one, run twice with the same input, leaves the same state. */
describe('approval activities run twice leave the same state', () => {
  let cosmos: CosmosEmulator;
  let azurite: BlobEmulator;
  let store: ApprovalStore;
  let outbox: ContainerClient;
  const keyring = parseKeyring(JSON.stringify({ k1: randomBytes(32).toString('base64') }), 'k1');
  const createdAt = '2026-03-01T09:00:00.000Z';

  beforeAll(async () => {
    [cosmos, azurite] = await Promise.all([startCosmos(), startAzuriteBlob()]);
    store = new ApprovalStore(await cosmosContainer(cosmos, 'approvals'));
    outbox = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      resources.blobContainers.outbox,
    );
    await outbox.createIfNotExists();
  });
  afterAll(async () => {
    await Promise.all([cosmos.stop(), azurite.stop()]);
  });

  const snapshotOf = async (runId: string, approvalId: string) =>
    readApproval({ store })({ runId, approvalId });

  it('createApproval: the second run finds the record and keeps its deadline', async () => {
    const input = createApprovalActivity.input.parse({
      ...sampleApprovalInput({ runId: 'run-act-1' }),
      approvalId: 'run-act-1:approval',
      createdAt,
    });
    const first = await createApproval({ store })(input);
    const again = await createApproval({ store })({
      ...input,
      createdAt: '2026-03-05T00:00:00.000Z',
    });
    expect(first).toMatchObject({ created: true, deadline: '2026-03-04T09:00:00.000Z' });
    expect(again).toEqual({ ...first, created: false });
  });

  it('notifyReviewers: a retry stores no second message, and each link verifies for its reviewer only', async () => {
    const input = createApprovalActivity.input.parse({
      ...sampleApprovalInput({ runId: 'run-act-2' }),
      approvalId: 'run-act-2:approval',
      createdAt,
    });
    await createApproval({ store })(input);
    const logged: string[] = [];
    const notify = notifyReviewers({
      store,
      keyring,
      notifier: new OutboxNotifier(outbox),
      publicBaseUrl: 'http://localhost:7071',
    });
    const args = {
      runId: 'run-act-2',
      approvalId: 'run-act-2:approval',
      kind: 'request' as const,
      recipients: ['alice@example.com', 'Bob@Example.com'],
    };
    expect(await notify(args, (l) => logged.push(l))).toEqual({ sent: 2, skipped: 0, channel: 'outbox' });
    expect(await notify(args, (l) => logged.push(l))).toEqual({ sent: 0, skipped: 2, channel: 'outbox' });
    const stored = await readOutbox(outbox, 'run-act-2/');
    expect(stored.map((m) => m.to).sort()).toEqual(['alice@example.com', 'bob@example.com']);
    expect(logged).toHaveLength(2);
    const now = new Date('2026-03-01T10:00:00.000Z');
    for (const m of stored) {
      const token = m.link!.split('/api/approvals/')[1]!;
      const claims = verifyApprovalToken(keyring, token, now);
      expect(claims).toMatchObject({ runId: 'run-act-2', approvalId: 'run-act-2:approval', reviewer: m.to });
      expect(claims.expiresAt.toISOString()).toBe('2026-03-04T09:00:00.000Z');
    }
  });

  it('updateApproval: escalate, reminded and close are no-ops the second time', async () => {
    const input = createApprovalActivity.input.parse({
      ...sampleApprovalInput({ runId: 'run-act-3' }),
      approvalId: 'run-act-3:approval',
      createdAt,
    });
    await createApproval({ store })(input);
    const ref = { runId: 'run-act-3', approvalId: 'run-act-3:approval' };
    const update = updateApproval({ store });
    const at = '2026-03-04T09:00:00.000Z';
    const e1 = await update({ ...ref, at, change: { action: 'escalate' } });
    const e2 = await update({ ...ref, at: '2026-03-04T10:00:00.000Z', change: { action: 'escalate' } });
    expect(e1).toEqual(e2);
    expect(e1).toMatchObject({ stage: 'escalated', deadline: '2026-03-05T09:00:00.000Z' });
    const r1 = await update({ ...ref, at, change: { action: 'reminded' } });
    expect(await update({ ...ref, at, change: { action: 'reminded' } })).toEqual(r1);
    expect(r1.remindedStages).toEqual(['escalated']);
    await store.createDecision(
      sampleDecision(
        (await store.getRecord(ref.runId, ref.approvalId))!,
        'erin@example.com',
        'approve',
        '2026-03-04T11:00:00.000Z',
      ),
    );
    const c1 = await update({
      ...ref,
      at: '2026-03-04T11:00:01.000Z',
      change: { action: 'close', status: 'approved', reasons: ['Approved by erin.'] },
    });
    const c2 = await update({
      ...ref,
      at: '2026-03-04T12:00:00.000Z',
      change: { action: 'close', status: 'rejected', reasons: ['late'] },
    });
    expect(c2).toEqual(c1);
    expect(c1).toMatchObject({ status: 'approved', reasons: ['Approved by erin.'] });
    expect(await snapshotOf(ref.runId, ref.approvalId)).toEqual(c1);
    expect(c1.decisions.map((d) => d.reviewer)).toEqual(['erin@example.com']);
  });

  it('readApproval keeps its output small: long comments are cut, the full text stays in Cosmos', async () => {
    const input = createApprovalActivity.input.parse({
      ...sampleApprovalInput({ runId: 'run-act-4' }),
      approvalId: 'run-act-4:approval',
      createdAt,
    });
    await createApproval({ store })(input);
    const rec = (await store.getRecord('run-act-4', 'run-act-4:approval'))!;
    await store.createDecision(
      sampleDecision(rec, 'bob@example.com', 'reject', '2026-03-01T10:00:00.000Z', 'x'.repeat(2000)),
    );
    const snap = await snapshotOf('run-act-4', 'run-act-4:approval');
    expect(snap.decisions[0]!.comment.length).toBe(300);
    expect(Buffer.byteLength(JSON.stringify(snap))).toBeLessThan(16 * 1024);
    expect((await store.readState('run-act-4', 'run-act-4:approval'))!.decisions[0]!.comment.length).toBe(
      2000,
    );
  });
});
