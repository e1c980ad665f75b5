import { createHash } from 'node:crypto';
import { escapeHtml, markup, raw } from '../../../lib/approval/html';
import { renderApprovalPage, renderMessagePage } from '../../../lib/approval/page';
import type { ApprovalPageView } from '../../../lib/approval/page';
import { decide } from '../../../lib/approval/policy';
import { closeRecord, withdrawRecord } from '../../../lib/approval/record';
import { withdrawalMessage } from '../../../lib/runs/ending';
import { sampleApprovalInput, sampleDecision, sampleRecord } from '../../support/approvalSample';

const now = new Date('2026-03-01T11:00:00.000Z');

function view(over: Partial<ApprovalPageView> = {}): ApprovalPageView {
  const record = over.record ?? sampleRecord();
  const decisions = over.decisions ?? [];
  return {
    record,
    decisions,
    verdict: decide(record, decisions, now),
    reviewer: 'bob@example.com',
    linkExpiresAt: new Date(record.deadline),
    now,
    actionPath: '/api/approvals/abc.def',
    requireSignin: false,
    ...over,
  };
}

describe('escaping', () => {
  it('escapes every interpolated value unless it is already html', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&\``)).toBe(
      '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;',
    );
    expect(markup`<p>${'<b>'}${markup`<i>ok</i>`}${['<', raw('<br>')]}</p>`.value).toBe(
      '<p>&lt;b&gt;<i>ok</i>&lt;<br></p>',
    );
  });

  it('renders hostile evidence, comments and names as text, never as markup', () => {
    const evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
    const record = sampleRecord(undefined, {
      pipeline: evil.slice(0, 60),
      requestedBy: evil,
      evidence: {
        ...sampleApprovalInput().evidence,
        metrics: [{ name: evil.slice(0, 64), candidate: 1, production: 0.5, ci: [0.1, 0.2] }],
        reports: { [evil.slice(0, 60)]: `javascript:${evil}` },
      },
    });
    const d = sampleDecision(record, 'alice@example.com', 'reject', '2026-03-01T10:00:00.000Z', evil);
    const { body } = renderApprovalPage(view({ record, decisions: [d] }));
    expect(body).not.toMatch(/<script/i);
    expect(body).not.toMatch(/<img/i);
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(body).not.toContain('href="javascript:');
  });
});

describe('approval page', () => {
  it('shows the evidence: metrics with CI, slices, validation, drift, schema diff, digests, timeline, decisions', () => {
    const record = sampleRecord();
    const d = sampleDecision(
      record,
      'alice@example.com',
      'approve',
      '2026-03-01T10:12:00.000Z',
      'Looks right.',
    );
    const { body } = renderApprovalPage(view({ record, decisions: [d] }));
    for (const text of [
      'roc_auc',
      '0.8712',
      '0.8503',
      '[+0.012, +0.03]',
      'region',
      'APAC',
      '55,030 rows',
      'monthly_charges',
      'support_calls_90d',
      record.candidate.modelDigest,
      record.candidate.datasetDigest,
      'Run timeline',
      'alice@example.com',
      'Looks right.',
      'waiting for bob@example.com, dan@example.com',
    ]) {
      expect(body).toContain(text);
    }
  });

  it('posts Approve/Reject with the digests the reviewer saw, to its own URL, without JavaScript', () => {
    const { body } = renderApprovalPage(view());
    expect(body).toContain('<form class="decide" method="post" action="/api/approvals/abc.def">');
    expect(body).toMatch(/name="modelDigest" value="3f3f/);
    expect(body).toMatch(/name="datasetDigest" value="a7a7/);
    expect(body).toMatch(/<button class="approve" type="submit" name="decision" value="approve">/);
    expect(body).toMatch(/<button class="reject" type="submit" name="decision" value="reject">/);
    expect(body).not.toMatch(/<script|\sstyle="|\son\w+=/i);
  });

  it('shows the training code digest when the model came from user code, and no such line otherwise', () => {
    const code = 'c0de'.repeat(16);
    const base = sampleRecord();
    const withCode = renderApprovalPage(
      view({ record: { ...base, candidate: { ...base.candidate, codeDigest: code } } }),
    ).body;
    expect(withCode).toMatch(new RegExp(`<dt>Training code SHA-256</dt>\\s*<dd class="mono">${code}</dd>`));
    expect(renderApprovalPage(view()).body).not.toContain('Training code SHA-256');
  });

  it('allows exactly its own <style> element by hash in the CSP, and sends no-referrer (the token is in the URL)', () => {
    const { body, headers } = renderApprovalPage(view());
    const css = /<style>([\s\S]*?)<\/style>/.exec(body)?.[1] ?? '';
    const hash = createHash('sha256').update(css).digest('base64');
    expect(headers['content-security-policy']).toContain(`style-src 'sha256-${hash}'`);
    expect(headers['content-security-policy']).toContain("default-src 'none'");
    expect(headers['referrer-policy']).toBe('no-referrer');
    expect(headers['cache-control']).toBe('no-store');
  });

  it('disables Approve for the requester, and replaces the form once the reviewer decided or the approval closed', () => {
    const requesterView = renderApprovalPage(view({ reviewer: 'carol@example.com' })).body;
    expect(requesterView).toMatch(/value="approve" disabled/);
    expect(requesterView).toContain('you may reject it but not approve it');

    const record = sampleRecord();
    const mine = sampleDecision(record, 'bob@example.com', 'reject', '2026-03-01T10:00:00.000Z', 'no');
    const decided = renderApprovalPage(view({ record, decisions: [mine] })).body;
    expect(decided).not.toContain('<form');
    expect(decided).toContain('You <strong>rejected</strong>');

    const closed = closeRecord(record, 'approved', ['Approved by alice, dan.'], now);
    const closedBody = renderApprovalPage(view({ record: closed })).body;
    expect(closedBody).not.toContain('<form');
    expect(closedBody).toContain('This approval is closed');
  });

  it('issue 13 item 5: a withdrawn approval says why its run ended instead of offering the form', () => {
    const withdrawn = withdrawRecord(sampleRecord(), {
      reason: 'canceled',
      message: withdrawalMessage('canceled', '2026-03-01T10:30:00.000Z', { by: 'ops@example.com' }),
      by: 'ops@example.com',
      at: '2026-03-01T10:30:00.000Z',
    });
    expect(withdrawn.status).toBe('withdrawn');
    const body = renderApprovalPage(view({ record: withdrawn })).body;
    expect(body).not.toContain('<form');
    expect(body).toContain(
      'This run was canceled on 2026-03-01 10:30:00 UTC by ops@example.com; no decision can be recorded.',
    );
    expect(body).toMatch(/<span class="chip withdrawn">withdrawn<\/span>/);
    // Withdrawing a closed approval changes nothing.
    const approved = closeRecord(sampleRecord(), 'approved', ['ok'], now);
    expect(withdrawRecord(approved, withdrawn.withdrawn!)).toBe(approved);
  });

  it('renders a message page for bad links', () => {
    const { body, headers } = renderMessagePage('Link expired', 'Ask for <a new> link.');
    expect(body).toContain('Ask for &lt;a new&gt; link.');
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
  });
});
