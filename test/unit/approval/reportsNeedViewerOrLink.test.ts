/**
 * Security review: a run's reports and a model's evidence pack (reviewer e-mails, lineage, audit
 * entries) are under /api/*, which App Service Authentication lets through without a sign-in, so
 * the handlers themselves answer 401/403 unless the caller is a console viewer or holds a valid
 * approval link for that run or model version (which the approval page hands over as a cookie).
 */
import { randomBytes } from 'node:crypto';
import { HttpRequest, type HttpResponseInit } from '@azure/functions';
import { createApprovalPageHandler } from '../../../functions/approvalPage';
import { createEvidenceHandler } from '../../../functions/evidence';
import { getRunReport } from '../../../functions/getRunReport';
import { reviewCookie, reviewTokens } from '../../../lib/approval/readAccess';
import { signApprovalToken } from '../../../lib/approval/token';
import { CONSOLE_ROLES } from '../../../lib/console';
import { parseKeyring } from '../../../lib/keyring';
import type { ApprovalDeps, Services } from '../../../lib/services';
import { InvocationContext } from '@azure/functions';
import { sampleRecord } from '../../support/approvalSample';

const now = new Date('2026-03-01T10:00:00.000Z');
const keyring = parseKeyring(JSON.stringify({ k1: randomBytes(32).toString('base64') }), 'k1');
const record = sampleRecord(new Date('2026-03-01T09:00:00.000Z'));
const state = { record, decisions: [] };
const approvalDeps = {
  keyring,
  store: {
    readState: async (runId: string, id: string) =>
      runId === record.runId && id === record.id ? state : undefined,
  },
  now: () => now,
  requireSignin: false,
} as unknown as ApprovalDeps;
const token = signApprovalToken(keyring, {
  runId: record.runId,
  approvalId: record.id,
  reviewer: 'bob@example.com',
  expiresAt: new Date(record.deadline),
});
const otherRunToken = signApprovalToken(keyring, {
  runId: 'some-other-run',
  approvalId: 'some-other-run:approval',
  reviewer: 'bob@example.com',
  expiresAt: new Date(record.deadline),
});

const azure = { CONSOLE_OPEN: false, WEBSITE_AUTH_ENABLED: true };
function services(config: { CONSOLE_OPEN: boolean; WEBSITE_AUTH_ENABLED: boolean } = azure) {
  return {
    config,
    approval: async () => approvalDeps,
    runs: { find: async () => ({ id: record.runId, steps: [], reports: {} }) },
    artifacts: {},
    registry: { getModel: async () => undefined },
    pipelines: { get: async () => undefined },
    approvals: { findByCandidate: async () => [], readState: approvalDeps.store.readState },
    audit: { bySubject: async () => [], head: async () => undefined },
    now: () => now,
  } as unknown as Services;
}

function principal(name: string, roles: string[]): string {
  return Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'preferred_username',
      role_typ: 'roles',
      claims: [{ typ: 'preferred_username', val: name }, ...roles.map((r) => ({ typ: 'roles', val: r }))],
    }),
  ).toString('base64');
}

const reportReq = (headers: Record<string, string> = {}, query = '') =>
  new HttpRequest({
    method: 'GET',
    url: `https://sluice.example.com/api/runs/${encodeURIComponent(record.runId)}/reports/evaluation${query}`,
    params: { id: record.runId, kind: 'evaluation' },
    headers,
  });
const c = record.candidate;
const evidenceReq = (headers: Record<string, string> = {}, query = '') =>
  new HttpRequest({
    method: 'GET',
    url: `https://sluice.example.com/api/models/${c.modelName}/versions/${c.modelVersion}/evidence${query}`,
    params: { name: c.modelName, version: String(c.modelVersion) },
    headers,
  });
const code = (r: HttpResponseInit) => (r.jsonBody as { code?: string } | undefined)?.code;

describe('reports and evidence need a console viewer or an approval link', () => {
  const report = getRunReport(services());
  const evidence = createEvidenceHandler(services());

  it('an anonymous caller gets 401 on both, before anything is said about the run or model', async () => {
    for (const res of [await report(reportReq()), await evidence(evidenceReq())]) {
      expect([res.status, code(res)]).toEqual([401, 'signin_required']);
    }
  });

  it('a forged principal is not trusted when App Service Authentication is off', async () => {
    const off = getRunReport(services({ CONSOLE_OPEN: false, WEBSITE_AUTH_ENABLED: false }));
    const res = await off(
      reportReq({ 'x-ms-client-principal': principal('ana@x.com', [CONSOLE_ROLES.viewer]) }),
    );
    expect(res.status).toBe(401);
  });

  it('a signed-in user without a console role gets 403', async () => {
    const res = await report(reportReq({ 'x-ms-client-principal': principal('eve@x.com', []) }));
    expect([res.status, code(res)]).toEqual([403, 'viewer_role_required']);
  });

  it('a Sluice.Viewer reads (here: past the gate to the 404 of a missing report / version)', async () => {
    const h = { 'x-ms-client-principal': principal('ana@x.com', [CONSOLE_ROLES.viewer]) };
    expect(code(await report(reportReq(h)))).toBe('report_not_found');
    expect(code(await evidence(evidenceReq(h)))).toBe('version_not_found');
  });

  it('the open local console reads', async () => {
    const local = getRunReport(services({ CONSOLE_OPEN: true, WEBSITE_AUTH_ENABLED: false }));
    expect(code(await local(reportReq()))).toBe('report_not_found');
  });

  it('a valid approval link for this run opens its report and its candidate evidence, as cookie or ?approval=', async () => {
    const cookie = reviewCookie(record.id, token, new Date(record.deadline), now, true).split(';')[0]!;
    expect(code(await report(reportReq({ cookie })))).toBe('report_not_found');
    expect(code(await evidence(evidenceReq({ cookie })))).toBe('version_not_found');
    expect(code(await report(reportReq({}, `?approval=${token}`)))).toBe('report_not_found');
  });

  it('a link for another run, a tampered link or an expired one opens nothing', async () => {
    const other = reviewCookie('x', otherRunToken, new Date(record.deadline), now, true).split(';')[0]!;
    expect((await report(reportReq({ cookie: other }))).status).toBe(401);
    expect((await evidence(evidenceReq({ cookie: other }))).status).toBe(401);
    expect((await report(reportReq({}, `?approval=${token.slice(0, -2)}xx`))).status).toBe(401);
    const late = { ...approvalDeps, now: () => new Date(Date.parse(record.deadline) + 1000) };
    const expired = getRunReport({ ...services(), approval: async () => late } as unknown as Services);
    expect((await expired(reportReq({}, `?approval=${token}`))).status).toBe(401);
  });

  it('the approval page hands its link over as an HttpOnly, /api/-scoped cookie the report routes read', async () => {
    const page = createApprovalPageHandler(async () => approvalDeps);
    const res = await page(
      new HttpRequest({
        method: 'GET',
        url: `https://sluice.example.com/api/approvals/${token}`,
        params: { token },
        headers: { accept: 'text/html' },
      }),
      new InvocationContext({ functionName: 'approvalPage' }),
    );
    expect(res.status).toBe(200);
    const set = String((res.headers as Record<string, string>)['set-cookie']);
    expect(set).toMatch(/; Path=\/api\/; Max-Age=\d+; HttpOnly; SameSite=Lax; Secure$/);
    expect(reviewTokens('https://x/api/runs/r/reports/evaluation', set.split(';')[0]!)).toEqual([token]);
  });
});
