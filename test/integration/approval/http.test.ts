import { HttpRequest, InvocationContext } from '@azure/functions';
import type { HttpResponseInit } from '@azure/functions';
import { randomBytes } from 'node:crypto';
import type { ApprovalDeps } from '../../../lib/services';
import { ApprovalStore } from '../../../lib/approval/store';
import type { Keyring } from '../../../lib/keyring';
import { signApprovalToken } from '../../../lib/approval/token';
import { parseKeyring } from '../../../lib/keyring';
import type { ApprovalRecord } from '../../../lib/contracts/approvalRecord';
import type { Notifier } from '../../../lib/notify';
import { createApprovalPageHandler } from '../../../functions/approvalPage';
import { createApprovalDecisionHandler } from '../../../functions/approvalDecision';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startCosmos } from '../../support/emulators';
import { sampleRecord } from '../../support/approvalSample';

const T0 = new Date('2026-03-01T09:01:14.000Z');
const base = 'http://localhost:7071';

describe('approval page and decision over HTTP handlers (Cosmos emulator)', () => {
  let cosmos: CosmosEmulator;
  let store: ApprovalStore;
  let keyring: Keyring;
  let clock = new Date(T0.getTime() + 3_600_000);
  const woken: { approvalId: string; reviewer: string }[] = [];
  const notifier: Notifier = { channel: 'outbox', send: async () => ({ sent: true, ref: 'x' }) };
  let requireSignin = false;
  let platformAuth = true;
  let counter = 0;

  const deps = async (): Promise<ApprovalDeps> => ({
    store,
    keyring,
    notifier,
    publicBaseUrl: base,
    requireSignin,
    platformAuth,
    now: () => clock,
  });
  const page = createApprovalPageHandler(deps);
  const decide = createApprovalDecisionHandler(deps, async (approvalId, data) => {
    woken.push({ approvalId, reviewer: data.reviewer });
  });

  beforeAll(async () => {
    cosmos = await startCosmos();
    store = new ApprovalStore(await cosmosContainer(cosmos, 'approvals'));
    keyring = parseKeyring(JSON.stringify({ k1: randomBytes(32).toString('base64') }), 'k1');
  });
  afterAll(() => cosmos.stop());
  beforeEach(() => {
    clock = new Date(T0.getTime() + 3_600_000);
    requireSignin = false;
    platformAuth = true;
    woken.length = 0;
  });

  async function newApproval(): Promise<ApprovalRecord> {
    counter++;
    return (await store.createRecord(sampleRecord(T0, { runId: `run-http-${counter}` }))).record;
  }
  const tokenFor = (r: ApprovalRecord, reviewer: string, expiresAt = new Date(r.deadline)) =>
    signApprovalToken(keyring, { runId: r.runId, approvalId: r.id, reviewer, expiresAt });
  const ctx = () => new InvocationContext({ invocationId: `inv-${counter}`, functionName: 'approval' });

  function request(
    method: string,
    token: string,
    init: { body?: string; headers?: Record<string, string> } = {},
  ) {
    return new HttpRequest({
      method,
      url: `${base}/api/approvals/${token}`,
      headers: init.headers ?? {},
      params: { token },
      ...(init.body !== undefined ? { body: { string: init.body } } : {}),
    });
  }
  const json = (token: string, body: unknown, headers: Record<string, string> = {}) =>
    decide(
      request('POST', token, {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json', ...headers },
      }),
      ctx(),
    );
  const form = (token: string, fields: Record<string, string>) =>
    decide(
      request('POST', token, {
        body: new URLSearchParams(fields).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      ctx(),
    );
  const approve = (r: ApprovalRecord, comment = '') => ({
    decision: 'approve',
    comment,
    modelDigest: r.candidate.modelDigest,
    datasetDigest: r.candidate.datasetDigest,
  });
  const reject = (r: ApprovalRecord, comment = 'EU slice regressed') => ({
    ...approve(r, comment),
    decision: 'reject',
  });
  const code = (res: HttpResponseInit) => (res.jsonBody as { code?: string } | undefined)?.code;

  it('scanner traffic (HEAD, GET three times, JSON GET) changes nothing', async () => {
    const r = await newApproval();
    const t = tokenFor(r, 'alice@example.com');
    const before = await store.readState(r.runId, r.id);
    const head = await page(request('HEAD', t), ctx());
    expect(head.status).toBe(200);
    expect(head.body).toBeUndefined();
    for (let i = 0; i < 3; i++) {
      const get = await page(
        request('GET', t, { headers: { 'user-agent': 'Mozilla/5.0 (compatible; SafeLinks)' } }),
        ctx(),
      );
      expect(get.status).toBe(200);
      expect(String(get.body)).toContain('Deploy <code>churn</code> version 7 to production?');
      expect((get.headers as Record<string, string>)['referrer-policy']).toBe('no-referrer');
    }
    const asJson = await page(request('GET', t, { headers: { accept: 'application/json' } }), ctx());
    expect((asJson.jsonBody as { status: string }).status).toBe('pending');
    expect(await store.readState(r.runId, r.id)).toEqual(before);
    expect(woken).toHaveLength(0);
  });

  it('records a JSON decision in Cosmos, then wakes the gate; a replay gets 409 and changes nothing', async () => {
    const r = await newApproval();
    const t = tokenFor(r, 'alice@example.com');
    const ok = await json(t, approve(r, 'fine'));
    expect(ok.status).toBe(201);
    expect(ok.jsonBody).toMatchObject({
      reviewer: 'alice@example.com',
      decision: 'approve',
      outcome: 'pending',
      approvedBy: ['alice@example.com'],
      required: 2,
    });
    expect(woken).toEqual([{ approvalId: r.id, reviewer: 'alice@example.com' }]);
    const replay = await json(t, approve(r, 'fine'));
    expect(replay.status).toBe(409);
    expect(code(replay)).toBe('decision_exists');
    const second = await json(t, reject(r));
    expect(second.status).toBe(409);
    const state = await store.readState(r.runId, r.id);
    expect(state?.decisions.map((d) => d.decision)).toEqual(['approve']);
    expect(woken).toHaveLength(1);
  });

  it('answers 401 to a tampered or unknown-key token and 410 to an expired one, on GET and POST', async () => {
    const r = await newApproval();
    const t = tokenFor(r, 'alice@example.com');
    const tampered = t.slice(0, -3) + (t.endsWith('AAA') ? 'BBB' : 'AAA');
    expect((await page(request('GET', tampered), ctx())).status).toBe(401);
    const bad = await json(tampered, approve(r));
    expect(bad.status).toBe(401);
    expect(code(bad)).toBe('token_bad_signature');
    const foreign = signApprovalToken(
      parseKeyring(JSON.stringify({ k9: randomBytes(32).toString('base64') }), 'k9'),
      {
        runId: r.runId,
        approvalId: r.id,
        reviewer: 'alice@example.com',
        expiresAt: new Date(r.deadline),
      },
    );
    expect(code(await json(foreign, approve(r)))).toBe('token_unknown_key');
    const short = tokenFor(r, 'alice@example.com', new Date(clock.getTime() + 1000));
    clock = new Date(clock.getTime() + 2000);
    const expiredPage = await page(request('GET', short), ctx());
    expect(expiredPage.status).toBe(410);
    expect(String(expiredPage.body)).toContain('This link has expired');
    expect((await json(short, approve(r))).status).toBe(410);
    expect((await store.readState(r.runId, r.id))?.decisions).toHaveLength(0);
  });

  it('answers 410 after the approval deadline even with a longer-lived link', async () => {
    const r = await newApproval();
    const t = tokenFor(r, 'alice@example.com', new Date(Date.parse(r.deadline) + 86_400_000));
    clock = new Date(Date.parse(r.deadline) + 1000);
    const res = await json(t, approve(r));
    expect(res.status).toBe(410);
    expect(code(res)).toBe('approval_expired');
  });

  it('answers 403 to a reviewer not on the list and to the requester approving, but lets the requester reject', async () => {
    const r = await newApproval();
    const stranger = await json(tokenFor(r, 'mallory@example.com'), approve(r));
    expect(stranger.status).toBe(403);
    expect(code(stranger)).toBe('not_a_reviewer');
    // Make the requester a reviewer to test separation of duties.
    const r2 = (
      await store.createRecord(
        sampleRecord(T0, { runId: `run-http-self-${counter}`, requestedBy: 'alice@example.com' }),
      )
    ).record;
    const self = await json(tokenFor(r2, 'alice@example.com'), approve(r2));
    expect(self.status).toBe(403);
    expect(code(self)).toBe('requester_cannot_approve');
    expect((await json(tokenFor(r2, 'alice@example.com'), reject(r2, 'not ready'))).status).toBe(201);
  });

  it('answers 409 when the candidate changed since the page was shown', async () => {
    const r = await newApproval();
    const res = await json(tokenFor(r, 'bob@example.com'), { ...approve(r), modelDigest: 'e'.repeat(64) });
    expect(res.status).toBe(409);
    expect(code(res)).toBe('candidate_changed');
    expect((res.jsonBody as { field?: string }).field).toBe('modelDigest');
  });

  it('needs a comment to reject and a well-formed body, naming the field', async () => {
    const r = await newApproval();
    const t = tokenFor(r, 'bob@example.com');
    const noComment = await json(t, reject(r, '  '));
    expect(noComment.status).toBe(400);
    expect((noComment.jsonBody as { field?: string }).field).toBe('comment');
    const bad = await json(t, {
      decision: 'maybe',
      modelDigest: r.candidate.modelDigest,
      datasetDigest: r.candidate.datasetDigest,
    });
    expect(bad.status).toBe(400);
    expect((bad.jsonBody as { field?: string }).field).toBe('decision');
    const text = await decide(
      request('POST', t, { body: 'decision=approve', headers: { 'content-type': 'text/plain' } }),
      ctx(),
    );
    expect(text.status).toBe(415);
  });

  it('answers 409 to a decision after the approval closed', async () => {
    const r = await newApproval();
    await json(tokenFor(r, 'bob@example.com'), reject(r));
    await store.updateRecord(r.runId, r.id, (x) => ({
      ...x,
      status: 'rejected',
      reasons: ['Rejected by bob'],
      closedAt: clock.toISOString(),
    }));
    const late = await json(tokenFor(r, 'alice@example.com'), approve(r));
    expect(late.status).toBe(409);
    expect(code(late)).toBe('approval_closed');
  });

  it('renders the page with a banner for browser form posts, success and refusal', async () => {
    const r = await newApproval();
    const t = tokenFor(r, 'dan@example.com');
    const fields = {
      decision: 'approve',
      comment: 'ok',
      modelDigest: r.candidate.modelDigest,
      datasetDigest: r.candidate.datasetDigest,
    };
    const ok = await form(t, fields);
    expect(ok.status).toBe(200);
    expect(String(ok.body)).toContain('Your approval is recorded.');
    expect(String(ok.body)).toContain('You <strong>approved</strong>');
    const again = await form(t, fields);
    expect(again.status).toBe(409);
    expect(String(again.body)).toContain('Your decision was not recorded.');
  });

  it('with APPROVAL_REQUIRE_SIGNIN, needs the App Service principal to be the reviewer', async () => {
    requireSignin = true;
    const r = await newApproval();
    const t = tokenFor(r, 'alice@example.com');
    const anonymous = await json(t, approve(r));
    expect(anonymous.status).toBe(401);
    expect(code(anonymous)).toBe('signin_required');
    const principal = (name: string) =>
      Buffer.from(
        JSON.stringify({
          auth_typ: 'aad',
          name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
          claims: [
            { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', val: name },
            {
              typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
              val: '00000000-0000-0000-0000-0000000000a1',
            },
          ],
        }),
      ).toString('base64');
    const wrong = await json(t, approve(r), { 'x-ms-client-principal': principal('mallory@example.com') });
    expect(wrong.status).toBe(403);
    expect(code(wrong)).toBe('principal_mismatch');
    const right = await json(t, approve(r), { 'x-ms-client-principal': principal('Alice@Example.com') });
    expect(right.status).toBe(201);
    const stored = (await store.readState(r.runId, r.id))?.decisions[0];
    expect(stored?.principal).toEqual({
      id: '00000000-0000-0000-0000-0000000000a1',
      name: 'Alice@Example.com',
      idp: 'aad',
    });
  });

  it('with APPROVAL_REQUIRE_SIGNIN but App Service Authentication off, a forged principal records nothing', async () => {
    requireSignin = true;
    platformAuth = false;
    const r = await newApproval();
    const t = tokenFor(r, 'alice@example.com');
    const forged = Buffer.from(
      JSON.stringify({
        auth_typ: 'aad',
        name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
        claims: [
          { typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name', val: 'alice@example.com' },
        ],
      }),
    ).toString('base64');
    const res = await json(t, approve(r), { 'x-ms-client-principal': forged });
    expect(res.status).toBe(403);
    expect(code(res)).toBe('signin_unavailable');
    expect((await store.readState(r.runId, r.id))?.decisions).toEqual([]);
  });

  it('100 concurrent conflicting POSTs by one reviewer: exactly one stored, the rest 409', async () => {
    const r = await newApproval();
    const t = tokenFor(r, 'alice@example.com');
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => json(t, i % 2 ? approve(r) : reject(r, `no ${i}`))),
    );
    const statuses = results.map((x) => x.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(99);
    expect((await store.readState(r.runId, r.id))?.decisions).toHaveLength(1);
  });
});
