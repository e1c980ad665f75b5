import { decide } from '../../../lib/approval/policy';
import { approvalPolicySchema, durationMs } from '../../../lib/contracts/approvalPolicy';
import type { ApprovalDecision, NewApprovalInput } from '../../../lib/contracts/approvalRecord';
import {
  closeRecord,
  decisionId,
  escalateRecord,
  markReminded,
  newApprovalRecord,
} from '../../../lib/approval/record';

const model = 'a'.repeat(64);
const data = 'b'.repeat(64);
const t0 = new Date('2026-03-01T00:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const H = 3_600_000;

function input(policy: NewApprovalInput['policy'], requestedBy = 'carol@example.com'): NewApprovalInput {
  return {
    runId: 'run-1',
    pipeline: 'churn',
    requestedBy,
    candidate: { modelName: 'churn', modelVersion: 3, modelDigest: model, datasetDigest: data },
    policy,
    evidence: {},
  };
}

function decision(
  reviewer: string,
  d: 'approve' | 'reject',
  when: Date,
  over: Partial<ApprovalDecision> = {},
): ApprovalDecision {
  return {
    id: decisionId('run-1:approval', reviewer),
    type: 'decision',
    runId: 'run-1',
    approvalId: 'run-1:approval',
    reviewer,
    decision: d,
    comment: d === 'reject' ? 'holdout AUC dropped on the EU slice' : '',
    decidedAt: when.toISOString(),
    stage: 'primary',
    modelDigest: model,
    datasetDigest: data,
    tokenId: 'x',
    kid: 'k1',
    ...over,
  };
}

describe('approval policy schema', () => {
  it('applies defaults: one approval, 72h, reject on timeout', () => {
    const p = approvalPolicySchema.parse({ reviewers: ['Alice@Example.com'] });
    expect(p).toEqual({
      reviewers: ['alice@example.com'],
      requiredApprovals: 1,
      timeout: '72h',
      onTimeout: { action: 'reject' },
    });
  });

  it('refuses N > M, duplicate reviewers, bad durations and unreachable escalation quorums, naming the field', () => {
    const bad = [
      [{ reviewers: ['a@x.io'], requiredApprovals: 2 }, 'requiredApprovals'],
      [{ reviewers: ['a@x.io', 'A@x.io'] }, 'reviewers'],
      [{ reviewers: ['a@x.io'], timeout: '3 days' }, 'timeout'],
      [{ reviewers: ['a@x.io'], timeout: '31d' }, 'timeout'],
      [{ reviewers: ['a@x.io'], reminderAt: 1 }, 'reminderAt'],
      [{ reviewers: ['a/b@x.io'] }, 'reviewers'],
      [
        {
          reviewers: ['a@x.io'],
          onTimeout: { action: 'escalate', reviewers: ['b@x.io'], requiredApprovals: 3, timeout: '1h' },
        },
        'onTimeout',
      ],
    ] as const;
    for (const [policy, field] of bad) {
      const r = approvalPolicySchema.safeParse(policy);
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.path[0]).toBe(field);
    }
  });

  it('reads durations', () => {
    expect(durationMs('90s')).toBe(90_000);
    expect(durationMs('72h')).toBe(72 * H);
    expect(durationMs('7d')).toBe(7 * 24 * H);
  });
});

describe('decide', () => {
  const twoOfThree = {
    reviewers: ['alice@example.com', 'bob@example.com', 'dan@example.com'],
    requiredApprovals: 2,
    timeout: '10h',
  };

  it('stays pending until N of M approve, then approves', () => {
    const rec = newApprovalRecord('run-1:approval', input(twoOfThree), t0);
    expect(rec.deadline).toBe(at(10 * H).toISOString());
    const one = decide(rec, [decision('alice@example.com', 'approve', at(H))], at(2 * H));
    expect(one.outcome).toBe('pending');
    expect(one.waitingFor).toEqual(['bob@example.com', 'dan@example.com']);
    const two = decide(
      rec,
      [decision('alice@example.com', 'approve', at(H)), decision('dan@example.com', 'approve', at(3 * H))],
      at(3 * H),
    );
    expect(two.outcome).toBe('approved');
    expect(two.approvedBy).toEqual(['alice@example.com', 'dan@example.com']);
  });

  it('rejects on any single rejection, even after approvals, with the comment as reason', () => {
    const rec = newApprovalRecord('run-1:approval', input(twoOfThree), t0);
    const v = decide(
      rec,
      [decision('alice@example.com', 'approve', at(H)), decision('bob@example.com', 'reject', at(2 * H))],
      at(2 * H),
    );
    expect(v.outcome).toBe('rejected');
    expect(v.reasons[0]).toContain('bob@example.com');
    expect(v.reasons[0]).toContain('EU slice');
  });

  it("does not count the requester's approval, and lets the requester reject", () => {
    const rec = newApprovalRecord(
      'run-1:approval',
      input({ reviewers: ['carol@example.com', 'alice@example.com'] }),
      t0,
    );
    const self = decide(rec, [decision('carol@example.com', 'approve', at(H))], at(H));
    expect(self.outcome).toBe('pending');
    expect(self.ignored).toEqual([
      { reviewer: 'carol@example.com', reason: 'the requester may not approve their own run' },
    ]);
    expect(decide(rec, [decision('carol@example.com', 'reject', at(H))], at(H)).outcome).toBe('rejected');
  });

  it('rejects early when the quorum can no longer be reached (requester among the reviewers)', () => {
    const rec = newApprovalRecord(
      'run-1:approval',
      input({ reviewers: ['carol@example.com', 'alice@example.com'], requiredApprovals: 2 }),
      t0,
    );
    const v = decide(rec, [], at(H));
    expect(v.outcome).toBe('rejected');
    expect(v.reasons[0]).toMatch(/Quorum cannot be reached.*requester/);
  });

  it('ignores decisions by non-reviewers, for another candidate, or after the deadline', () => {
    const rec = newApprovalRecord(
      'run-1:approval',
      input({ reviewers: ['alice@example.com', 'bob@example.com'], timeout: '1h' }),
      t0,
    );
    const v = decide(
      rec,
      [
        decision('mallory@example.com', 'reject', at(1000)),
        decision('alice@example.com', 'approve', at(2 * H), { modelDigest: 'c'.repeat(64) }),
      ],
      at(1000),
    );
    expect(v.outcome).toBe('pending');
    expect(v.ignored.map((i) => i.reason)).toEqual([
      'not a reviewer of this approval',
      'decided on a different candidate (model or dataset digest changed)',
    ]);
    const late = decide(rec, [decision('alice@example.com', 'approve', at(2 * H))], at(2 * H));
    expect(late.outcome).toBe('expired');
    expect(late.ignored[0]?.reason).toBe('decided after the deadline');
  });

  it('gives the same verdict whatever order the decisions come in (first decision per reviewer wins)', () => {
    const rec = newApprovalRecord('run-1:approval', input(twoOfThree), t0);
    const ds = [
      decision('alice@example.com', 'approve', at(H)),
      decision('dan@example.com', 'approve', at(2 * H)),
      decision('alice@example.com', 'reject', at(3 * H)),
    ];
    const a = decide(rec, ds, at(4 * H));
    const b = decide(rec, [...ds].reverse(), at(4 * H));
    expect(a).toEqual(b);
    expect(a.outcome).toBe('approved');
  });

  it('expires at the deadline when the policy says reject', () => {
    const rec = newApprovalRecord('run-1:approval', input(twoOfThree), t0);
    const v = decide(rec, [decision('alice@example.com', 'approve', at(H))], at(10 * H));
    expect(v.outcome).toBe('expired');
    expect(v.reasons[0]).toContain('1 of 2');
  });

  it('escalates at the deadline, then counts earlier approvals towards the escalated quorum', () => {
    const policy = {
      ...twoOfThree,
      reminderAt: 0.5,
      onTimeout: { action: 'escalate' as const, reviewers: ['erin@example.com'], timeout: '4h' },
    };
    const rec = newApprovalRecord('run-1:approval', input(policy), t0);
    expect(decide(rec, [], at(H)).remindAt).toBe(at(5 * H).toISOString());
    expect(decide(markReminded(rec), [], at(H)).remindAt).toBeUndefined();
    const ds = [decision('alice@example.com', 'approve', at(H))];
    const v = decide(rec, ds, at(10 * H));
    expect(v.outcome).toBe('escalate');
    const esc = escalateRecord(markReminded(rec), at(10 * H));
    expect(esc.deadline).toBe(at(14 * H).toISOString());
    const pending = decide(esc, ds, at(10 * H));
    expect(pending.outcome).toBe('pending');
    expect(pending.waitingFor).toContain('erin@example.com');
    expect(pending.remindAt).toBe(at(12 * H).toISOString());
    const done = decide(
      esc,
      [...ds, decision('erin@example.com', 'approve', at(11 * H), { stage: 'escalated' })],
      at(11 * H),
    );
    expect(done.outcome).toBe('approved');
    expect(decide(esc, ds, at(14 * H)).outcome).toBe('expired');
  });

  it('reports a closed record as it was closed', () => {
    const rec = closeRecord(
      newApprovalRecord('run-1:approval', input(twoOfThree), t0),
      'rejected',
      ['Rejected by bob.'],
      at(H),
    );
    const v = decide(
      rec,
      [decision('alice@example.com', 'approve', at(H)), decision('dan@example.com', 'approve', at(H))],
      at(H),
    );
    expect(v.outcome).toBe('rejected');
    expect(v.reasons).toEqual(['Rejected by bob.']);
    expect(closeRecord(rec, 'approved', [], at(2 * H))).toBe(rec);
  });
});
