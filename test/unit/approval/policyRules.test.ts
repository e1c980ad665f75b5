import { decide } from '../../../lib/approval/policy';
import { escalateRecord, newApprovalRecord } from '../../../lib/approval/record';
import type { DecisionFacts } from '../../../lib/approval/policy';
import type { NewApprovalInput } from '../../../lib/contracts/approvalRecord';

/**
 * Rules of `decide` that no other test pinned (each could be dropped with every test passing): an
 * escalation reviewer has no vote before the escalation, the escalated stage has its own quorum,
 * and a rejection rejects even when enough approvals are already in.
 */

const model = 'a'.repeat(64);
const data = 'b'.repeat(64);
const t0 = new Date('2026-03-01T00:00:00.000Z');
const H = 3_600_000;
const at = (hours: number) => new Date(t0.getTime() + hours * H);

function record(policy: NewApprovalInput['policy']) {
  return newApprovalRecord(
    'run-1:approval',
    {
      runId: 'run-1',
      pipeline: 'churn',
      requestedBy: 'carol@example.com',
      candidate: { modelName: 'churn', modelVersion: 3, modelDigest: model, datasetDigest: data },
      policy,
      evidence: {},
    },
    t0,
  );
}

const vote = (reviewer: string, decision: 'approve' | 'reject', hours: number): DecisionFacts => ({
  reviewer,
  decision,
  comment: decision === 'reject' ? 'EU slice regressed' : '',
  decidedAt: at(hours).toISOString(),
  modelDigest: model,
  datasetDigest: data,
});

const escalating = (requiredAtEscalation?: number): NewApprovalInput['policy'] => ({
  reviewers: ['alice@example.com', 'bob@example.com', 'dan@example.com'],
  requiredApprovals: 2,
  timeout: '8h',
  onTimeout: {
    action: 'escalate',
    reviewers: ['erin@example.com'],
    timeout: '4h',
    ...(requiredAtEscalation !== undefined ? { requiredApprovals: requiredAtEscalation } : {}),
  },
});

describe('decide: who counts, at which stage, and what a rejection does', () => {
  it('an escalation reviewer has no vote before the escalation', () => {
    const rec = record(escalating());
    const v = decide(
      rec,
      [vote('alice@example.com', 'approve', 1), vote('erin@example.com', 'approve', 2)],
      at(3),
    );
    expect(v.outcome).toBe('pending');
    expect(v.approvedBy).toEqual(['alice@example.com']);
    expect(v.ignored).toEqual([{ reviewer: 'erin@example.com', reason: 'not a reviewer of this approval' }]);
    expect(v.waitingFor).not.toContain('erin@example.com');
  });

  it("the escalated stage counts toward the escalation's own quorum", () => {
    const esc = escalateRecord(record(escalating(1)), at(8));
    expect(esc.stage).toBe('escalated');
    const v = decide(esc, [vote('erin@example.com', 'approve', 9)], at(9));
    expect(v).toMatchObject({ outcome: 'approved', required: 1, approvedBy: ['erin@example.com'] });
    // Without its own quorum the escalated stage keeps the primary one (2).
    const same = escalateRecord(record(escalating()), at(8));
    expect(decide(same, [vote('erin@example.com', 'approve', 9)], at(9))).toMatchObject({
      outcome: 'pending',
      required: 2,
    });
  });

  it('any rejection rejects, even after the quorum of approvals is in', () => {
    const rec = record(escalating());
    const v = decide(
      rec,
      [
        vote('alice@example.com', 'approve', 1),
        vote('bob@example.com', 'approve', 2),
        vote('dan@example.com', 'reject', 3),
      ],
      at(4),
    );
    expect(v.outcome).toBe('rejected');
    expect(v.reasons).toEqual(['Rejected by dan@example.com: EU slice regressed']);
  });
});
