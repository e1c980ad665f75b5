/**
 * Reports open through the API, never through storage (issue 18): the approval page and the run
 * document link `GET /api/runs/{id}/reports/{kind}`.
 */
import { renderApprovalPage } from '../../../lib/approval/page';
import { decide } from '../../../lib/approval/policy';
import { runLinks } from '../../../lib/runs/document';
import { sampleApprovalInput, sampleRecord } from '../../support/approvalSample';
import { sampleRunDocument } from '../../support/runSample';

describe('report links', () => {
  it('the approval page links the reports API, not the stored blob', () => {
    const now = new Date('2026-03-01T10:00:00.000Z');
    const record = sampleRecord(undefined, {
      evidence: {
        ...sampleApprovalInput().evidence,
        reports: {
          evaluation: 'http://127.0.0.1:10000/devstoreaccount1/reports/r/evaluation.json',
          validation: 'http://127.0.0.1:10000/devstoreaccount1/reports/r/validation.json',
        },
      },
    });
    const { body } = renderApprovalPage({
      record,
      decisions: [],
      verdict: decide(record, [], now),
      reviewer: 'bob@example.com',
      linkExpiresAt: new Date(record.deadline),
      now,
      actionPath: '/api/approvals/abc.def',
      requireSignin: false,
    });
    const id = encodeURIComponent(record.runId);
    expect(body).toContain(`href="/api/runs/${id}/reports/evaluation"`);
    expect(body).toContain(`href="/api/runs/${id}/reports/validation"`);
    expect(body).not.toContain('devstoreaccount1/reports');
  });

  it('the run document links its reports and its console page', () => {
    const run = sampleRunDocument('run 1', 'wages', '2026-01-01T00:00:00.000Z', 'ana');
    expect(runLinks(run)).toEqual({ console: '/runs/wages/run%201', reports: {} });
    const validated = {
      ...run,
      steps: run.steps.map((s) =>
        s.name === 'validate' ? { ...s, outputs: { reportUri: 'http://127.0.0.1/r/validation.json' } } : s,
      ),
    };
    expect(runLinks(validated).reports).toEqual({ validation: '/api/runs/run%201/reports/validation' });
  });
});
