import type { ConsoleAccess } from '../../../lib/console';
import { renderApprovalsPage } from '../../../lib/console/pages/approvals';
import { overrideReviewRunId } from '../../../lib/contracts/overrideReview';
import { sampleRecord } from '../../support/approvalSample';

// An override's post-hoc review has no run (its approval lives under a pseudo run id), so the
// Approvals page links the model's page for it, and real runs keep their run page link.

const local: ConsoleAccess = { who: 'local', canView: true, canOperate: true, local: true };
const now = new Date('2026-03-01T12:00:00.000Z');

it('links a post-hoc override review to the model page, a run’s approval to its run page', () => {
  const review = sampleRecord(new Date('2026-03-01T10:00:00.000Z'), {
    runId: overrideReviewRunId('churn', 7, 3),
  });
  const ordinary = sampleRecord(new Date('2026-03-01T09:00:00.000Z'), { runId: 'run-20260301-0002' });
  const pending = [review, ordinary].map((record) => ({
    record,
    decisions: [],
    waitingFor: [],
    links: [],
    mine: true,
    onBehalfOf: [],
  }));
  const html = renderApprovalsPage(
    { pending, recent: [], closed: [], linksAvailable: true },
    local,
    now,
    {},
  ).body;
  expect(html).toContain(
    `<a href="/models/churn" data-override-review="override-churn-7-3">post-hoc review of the override of churn v7</a>`,
  );
  expect(html).not.toContain('href="/runs/churn/override-churn-7-3"');
  expect(html).toContain('href="/runs/churn/run-20260301-0002"');
});
