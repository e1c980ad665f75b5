import { approvalMessage } from '../../../lib/approval/messages';
import { escalateRecord } from '../../../lib/approval/record';
import { sampleRecord } from '../../support/approvalSample';

describe('approval messages', () => {
  const record = sampleRecord();
  const link = 'http://localhost:7071/api/approvals/abc.def';

  it('asks for a decision with the link, the candidate, the metric and the deadline, in text and HTML', () => {
    const m = approvalMessage({ record, kind: 'request', to: 'alice@example.com', link });
    expect(m.subject).toBe('Approval needed: deploy churn v7 (churn)');
    expect(m.text).toContain(link);
    expect(m.text).toContain('roc_auc: 0.8712 (production 0.8503)');
    expect(m.text).toContain('2026-03-04 09:01:14 UTC');
    expect(m.html).toContain(`href="${link}"`);
    expect(m.text).toContain('Opening the link changes nothing');
  });

  it('keys each message by approval, kind, stage and recipient', () => {
    const a = approvalMessage({ record, kind: 'request', to: 'alice@example.com', link });
    const b = approvalMessage({ record, kind: 'reminder', to: 'alice@example.com', link });
    const c = approvalMessage({
      record: escalateRecord(record, new Date(record.deadline)),
      kind: 'escalation',
      to: 'erin@example.com',
      link,
    });
    expect(new Set([a.key, b.key, c.key]).size).toBe(3);
    expect(c.key).toContain(':escalated:');
    expect(c.subject).toContain('Escalated to you');
  });

  it('escapes hostile names in the HTML body', () => {
    const evil = sampleRecord(undefined, { requestedBy: '<img src=x onerror=alert(1)>' });
    const m = approvalMessage({ record: evil, kind: 'request', to: 'alice@example.com', link });
    expect(m.html).not.toContain('<img');
    expect(m.html).toContain('&lt;img');
  });

  it('reports the outcome with its reasons', () => {
    const m = approvalMessage({
      record,
      kind: 'outcome',
      to: 'alice@example.com',
      outcome: { status: 'rejected', reasons: ['Rejected by bob: no.'] },
    });
    expect(m.subject).toBe('Approval rejected: churn v7 (churn)');
    expect(m.text).toContain('Rejected by bob: no.');
    expect(m.link).toBeUndefined();
  });
});
