/**
 * Security review: one person counts once toward the quorum, in the policy itself (the gate's
 * verdict), not only in the decision endpoint's pre-check, which two simultaneous POSTs can pass.
 */
import { decide } from '../../../lib/approval/policy';
import { toSnapshot } from '../../../lib/approval/snapshot';
import { newApprovalRecord } from '../../../lib/approval/record';
import { approvalSnapshotSchema } from '../../../lib/contracts/approval';
import type { ApprovalDecision, NewApprovalInput } from '../../../lib/contracts/approvalRecord';

const model = 'a'.repeat(64);
const data = 'b'.repeat(64);
const t0 = new Date('2026-03-01T00:00:00.000Z');
const later = (m: number) => new Date(t0.getTime() + m * 60_000);

function record(reviewers: string[], requiredApprovals: number, requestedBy = 'carol@example.com') {
  const input: NewApprovalInput = {
    runId: 'run-1',
    pipeline: 'churn',
    requestedBy,
    candidate: { modelName: 'churn', modelVersion: 3, modelDigest: model, datasetDigest: data },
    policy: { reviewers, requiredApprovals, timeout: '72h', onTimeout: { action: 'reject' } },
    evidence: {},
  };
  return newApprovalRecord('run-1:approval', input, t0);
}

function vote(reviewer: string, when: Date, delegate?: string, d: 'approve' | 'reject' = 'approve') {
  return {
    id: `run-1:approval:${reviewer}`,
    type: 'decision',
    runId: 'run-1',
    approvalId: 'run-1:approval',
    reviewer,
    ...(delegate ? { delegate } : {}),
    decision: d,
    comment: d === 'reject' ? 'no' : '',
    decidedAt: when.toISOString(),
    stage: 'primary',
    modelDigest: model,
    datasetDigest: data,
    tokenId: 'x',
    kid: 'k1',
  } satisfies ApprovalDecision;
}

describe('one person, one vote (decide)', () => {
  const bob = 'bob@example.com';
  const dan = 'dan@example.com';

  it('bob as himself and bob for dan on a 2-of-2 policy is not approved', () => {
    const r = record([bob, dan], 2);
    const v = decide(r, [vote(bob, later(1)), vote(dan, later(1), bob)], later(2));
    expect(v.outcome).not.toBe('approved');
    expect(v.approvedBy).toEqual([bob]);
    expect(v.ignored).toEqual([{ reviewer: dan, reason: expect.stringMatching(/one person counts once/) }]);
  });

  it('counts one person once whichever of the two was stored first', () => {
    const r = record([bob, dan], 2);
    const v = decide(r, [vote(bob, later(2)), vote(dan, later(1), bob)], later(3));
    expect(v.outcome).not.toBe('approved');
    expect(v.approvedBy).toEqual([dan]);
  });

  it('a delegate acting for two reviewers counts once', () => {
    const erin = 'erin@example.com';
    const r = record([bob, dan, 'alice@example.com'], 2);
    const v = decide(r, [vote(dan, later(1), erin), vote(bob, later(1), erin)], later(2));
    expect(v.approvedBy).toHaveLength(1);
    expect(v.outcome).toBe('pending');
  });

  it('ignores an approval by the requester acting as a delegate', () => {
    const r = record([bob, dan], 1, 'carol@example.com');
    const v = decide(r, [vote(dan, later(1), 'carol@example.com')], later(2));
    expect(v.outcome).not.toBe('approved');
    expect(v.approvedBy).toEqual([]);
    expect(v.ignored[0]?.reason).toMatch(/requester/);
  });

  it('the gate sees the delegate: the snapshot it reads keeps it', () => {
    const r = record([bob, dan], 2);
    const snap = approvalSnapshotSchema.parse(
      toSnapshot({ record: r, decisions: [vote(bob, later(1)), vote(dan, later(1), bob)] }),
    );
    expect(snap.decisions.map((d) => d.delegate)).toEqual([undefined, bob]);
    expect(decide(r, snap.decisions, later(2)).outcome).not.toBe('approved');
  });

  it('two different people still make a 2-of-2 quorum', () => {
    const r = record([bob, dan], 2);
    expect(decide(r, [vote(bob, later(1)), vote(dan, later(1))], later(2)).outcome).toBe('approved');
  });
});
