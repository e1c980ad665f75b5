import { HttpRequest, InvocationContext } from '@azure/functions';
import type { HttpResponseInit } from '@azure/functions';
import { randomBytes } from 'node:crypto';
import { DelegationStore } from '../../../lib/approval/delegation';
import { ApprovalStore } from '../../../lib/approval/store';
import { submitDecision, loadApproval } from '../../../lib/approval/service';
import { renderLoadedApproval } from '../../../lib/approval/page';
import { AuditLog } from '../../../lib/audit/log';
import type { Keyring } from '../../../lib/keyring';
import { parseKeyring } from '../../../lib/keyring';
import type { ApprovalRecord } from '../../../lib/contracts/approvalRecord';
import type { Notification, Notifier } from '../../../lib/notify';
import { notifyReviewers } from '../../../activities/notifyReviewers';
import { createDelegationHandler, createMyDelegationHandler } from '../../../functions/delegation';
import { withProblems } from '../../../functions/support/http';
import { useEmulators } from '../../support/emulatorSuite';
import { sampleRecord } from '../../support/approvalSample';

// Delegation on the Cosmos emulator: the rules (self, expired, overlapping, concurrent), the audit
// entries, the delegate's notification and link, and a delegate's decision that counts as the
// delegator's while separation of duties still holds.

const T0 = new Date('2026-03-01T09:01:14.000Z');
const base = 'http://localhost:7071';

const suite = useEmulators();
let audit: AuditLog;
let approvals: ApprovalStore;
let delegations: DelegationStore;
let keyring: Keyring;
let clock = new Date(T0.getTime() + 3_600_000);
let counter = 0;

beforeAll(async () => {
  const { cosmos } = suite;
  audit = new AuditLog(cosmos.container('audit'));
  approvals = new ApprovalStore(cosmos.container('approvals'), audit);
  delegations = new DelegationStore(cosmos.container('approvals'), audit);
  keyring = parseKeyring(JSON.stringify({ k1: randomBytes(32).toString('base64') }), 'k1');
});
beforeEach(() => {
  clock = new Date(T0.getTime() + 3_600_000);
});

const at = (hours: number) => new Date(T0.getTime() + hours * 3_600_000).toISOString();
const call = (method: string, id: string, body?: unknown, headers: Record<string, string> = {}) =>
  new HttpRequest({
    method,
    url: `${base}/api/reviewers/${encodeURIComponent(id)}/delegation`,
    params: { id },
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body: { string: JSON.stringify(body) } } : {}),
  });
// The handler reads `delegations` lazily through this object, so it works after beforeAll.
const deps = {
  get delegations() {
    return delegations;
  },
  now: () => clock,
};
/** The handler as the app registers it: errors become problem responses. */
const served =
  (h: (r: HttpRequest) => Promise<HttpResponseInit>) =>
  (r: HttpRequest): Promise<HttpResponseInit> =>
    withProblems(h)(r, new InvocationContext({ functionName: 'delegation' }));
const http = served(createDelegationHandler(deps));
const code = (res: HttpResponseInit) => (res.jsonBody as { code?: string } | undefined)?.code;
const unique = (who: string) => `${who}${++counter}@example.com`;

describe('delegation rules over the HTTP handler', () => {
  it('sets, shows, refuses overlap / self / expired with named errors, ends, and audits set and end', async () => {
    const alice = unique('alice');
    const put = await http(call('PUT', alice, { to: 'bob@example.com', until: at(49), reason: 'on leave' }));
    expect(put.status).toBe(201);
    expect(put.jsonBody).toMatchObject({
      reviewer: alice,
      to: 'bob@example.com',
      setBy: 'operator',
      until: at(49),
    });

    const shown = await http(call('GET', alice));
    expect(shown.jsonBody).toMatchObject({
      reviewer: alice,
      active: { to: 'bob@example.com' },
      scheduled: [],
    });

    const overlap = await http(
      call('PUT', alice, { to: 'dan@example.com', from: at(30), until: at(60), reason: 'longer leave' }),
    );
    expect(overlap.status).toBe(409);
    expect(code(overlap)).toBe('delegation_overlaps');

    const self = await http(call('PUT', alice, { to: alice.toUpperCase(), until: at(60), reason: 'oops' }));
    expect(self.status).toBe(400);
    expect(code(self)).toBe('delegation_to_self');

    const expired = await http(
      call('PUT', alice, { to: 'dan@example.com', from: at(-5), until: at(0), reason: 'late' }),
    );
    expect(code(expired)).toBe('delegation_expired');

    const backwards = await http(
      call('PUT', alice, { to: 'dan@example.com', from: at(80), until: at(70), reason: 'typo' }),
    );
    expect(code(backwards)).toBe('delegation_window_invalid');

    // A later, non-overlapping one is scheduled.
    const later = await http(
      call('PUT', alice, { to: 'dan@example.com', from: at(49), until: at(70), reason: 'next week' }),
    );
    expect(later.status).toBe(201);

    const ended = await http(call('DELETE', alice, undefined, {}));
    expect(ended.status).toBe(200);
    expect(ended.jsonBody).toMatchObject({
      to: 'bob@example.com',
      endedAt: clock.toISOString(),
      endedBy: 'operator',
    });
    const after = await http(call('GET', alice));
    expect(after.jsonBody).toMatchObject({ active: null, scheduled: [{ to: 'dan@example.com' }] });

    const { entries } = await audit.page({ subject: `reviewer/${alice}` });
    expect(entries.map((e) => e.kind).sort()).toEqual([
      'delegation.ended',
      'delegation.set',
      'delegation.set',
    ]);
    const setEntry = entries.find((e) => e.kind === 'delegation.set' && e.data.to === 'bob@example.com');
    expect(setEntry).toMatchObject({ actor: 'operator', data: { reviewer: alice, reason: 'on leave' } });
    expect((await audit.verify()).valid).toBe(true);
  });

  it('of two concurrent overlapping delegations exactly one is stored', async () => {
    const alice = unique('alice');
    const results = await Promise.all(
      ['bob@example.com', 'dan@example.com', 'erin@example.com'].map((to) =>
        http(call('PUT', alice, { to, until: at(24), reason: 'race' })),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    expect((await delegations.list(alice)).length).toBe(1);
  });

  it('DELETE without a delegation is 404 no_delegation; a bad id is 400', async () => {
    expect(code(await http(call('DELETE', unique('nobody'))))).toBe('no_delegation');
    expect(code(await http(call('GET', 'x')))).toBe('invalid_reviewer');
  });

  it('the reviewer route takes only the platform principal, and only with sign-in on', async () => {
    const principal = (name: string) =>
      Buffer.from(
        JSON.stringify({
          auth_typ: 'aad',
          name_typ: 'preferred_username',
          claims: [{ typ: 'preferred_username', val: name }],
        }),
      ).toString('base64');
    const me = unique('frank');
    const off = served(createMyDelegationHandler({ ...deps, requireSignin: false }));
    const refused = await off(call('GET', me, undefined, { 'x-ms-client-principal': principal(me) }));
    expect([refused.status, code(refused)]).toEqual([403, 'signin_not_enabled']);
    const on = served(createMyDelegationHandler({ ...deps, requireSignin: true, platformAuth: true }));
    const anonymous = await on(call('GET', me));
    expect([anonymous.status, code(anonymous)]).toEqual([401, 'signin_required']);
    const put = await on(
      call(
        'PUT',
        me,
        { to: 'bob@example.com', until: at(5), reason: 'dentist' },
        { 'x-ms-client-principal': principal(me) },
      ),
    );
    expect(put.status).toBe(201);
    expect(put.jsonBody).toMatchObject({ reviewer: me, setBy: me });
  });

  it('refuses a forged principal when App Service Authentication is off, even with sign-in required', async () => {
    const victim = unique('victim');
    const forged = Buffer.from(
      JSON.stringify({
        auth_typ: 'aad',
        name_typ: 'preferred_username',
        claims: [{ typ: 'preferred_username', val: victim }],
      }),
    ).toString('base64');
    const noPlatform = served(
      createMyDelegationHandler({ ...deps, requireSignin: true, platformAuth: false }),
    );
    const put = await noPlatform(
      call(
        'PUT',
        victim,
        { to: 'mallory@example.com', until: at(5), reason: 'forged' },
        { 'x-ms-client-principal': forged },
      ),
    );
    expect([put.status, code(put)]).toEqual([403, 'signin_not_enabled']);
    expect(String((put.jsonBody as { detail?: string }).detail)).toMatch(/WEBSITE_AUTH_ENABLED/);
    expect(await deps.delegations.list(victim)).toEqual([]);
    // The operator route does not take a forged name as the actor either.
    const who = unique('gail');
    const set = await http(
      call(
        'PUT',
        who,
        { to: 'bob@example.com', until: at(5), reason: 'leave' },
        { 'x-ms-client-principal': forged },
      ),
    );
    expect(set.status).toBe(201);
    expect(set.jsonBody).toMatchObject({ setBy: 'operator' });
  });
});

describe('whose delegation a caller may change', () => {
  const principalOf = (...names: string[]) =>
    Buffer.from(
      JSON.stringify({
        auth_typ: 'aad',
        name_typ: 'preferred_username',
        claims: names.map((val) => ({ typ: 'preferred_username', val })),
      }),
    ).toString('base64');
  const mine = (as: string | undefined, principal: string, body?: unknown) =>
    new HttpRequest({
      method: body === undefined ? 'GET' : 'PUT',
      url: `${base}/api/me/delegation${as ? `?as=${encodeURIComponent(as)}` : ''}`,
      headers: { 'content-type': 'application/json', 'x-ms-client-principal': principal },
      ...(body !== undefined ? { body: { string: JSON.stringify(body) } } : {}),
    });

  it("?as= picks one of the signed-in caller's own identities, never someone else's", async () => {
    const me = unique('hana');
    const alias = unique('hana.alias');
    const victim = unique('ivan');
    const on = served(createMyDelegationHandler({ ...deps, requireSignin: true, platformAuth: true }));
    const body = { to: 'mallory@example.com', until: at(5), reason: 'take over' };

    const refused = await on(mine(victim, principalOf(me, alias), body));
    expect([refused.status, code(refused)]).toEqual([403, 'principal_mismatch']);
    expect(await delegations.list(victim)).toEqual([]);

    const own = await on(mine(alias, principalOf(me, alias), { ...body, reason: 'my other account' }));
    expect(own.status).toBe(201);
    expect(own.jsonBody).toMatchObject({ reviewer: alias, to: 'mallory@example.com' });
    expect(await delegations.list(me)).toEqual([]);
  });

  it('two concurrent overlapping PUTs on a reviewer who already has a delegation document: one is stored', async () => {
    const alice = unique('alice');
    // A first delegation, ended: the reviewer's document exists, so the next writes replace it.
    expect(
      (await http(call('PUT', alice, { to: 'bob@example.com', until: at(3), reason: 'old' }))).status,
    ).toBe(201);
    expect((await http(call('DELETE', alice))).status).toBe(200);
    const results = await Promise.all(
      ['dan@example.com', 'erin@example.com'].map((to) =>
        http(call('PUT', alice, { to, until: at(24), reason: 'race' })),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    const live = (await delegations.list(alice)).filter((d) => !d.endedAt);
    expect(live).toHaveLength(1);
    const winner = results.find((r) => r.status === 201)!.jsonBody as { to: string };
    expect(live[0]!.to).toBe(winner.to);
  });
});

describe("a delegate decides on the reviewer's behalf", () => {
  const sent: Notification[] = [];
  const notifier: Notifier = {
    channel: 'outbox',
    send: async (m) => {
      sent.push(m);
      return { sent: true, ref: m.key };
    },
  };
  const svc = (requireSignin = false) => ({
    store: approvals,
    keyring,
    now: () => clock,
    requireSignin,
    platformAuth: true,
    delegations,
  });
  const approveBody = (r: ApprovalRecord) => ({
    decision: 'approve',
    comment: 'covering for a colleague',
    modelDigest: r.candidate.modelDigest,
    datasetDigest: r.candidate.datasetDigest,
  });
  async function approval(): Promise<ApprovalRecord> {
    return (await approvals.createRecord(sampleRecord(T0, { runId: `run-dlg-${++counter}` }))).record;
  }
  /** The link token in the message sent to `to` (the last path segment of its link). */
  const tokenIn = (to: string, onBehalfOf: string) => {
    const m = sent.find((s) => s.to === to && s.key.endsWith(`:for:${onBehalfOf}`));
    if (!m?.link) throw new Error(`no delegate link for ${to}`);
    return decodeURIComponent(m.link.split('/').pop()!);
  };

  it("notifies the delegate with their own link; the decision counts as the delegator's and reads 'on behalf of'", async () => {
    // Reviewers alice, bob, dan (quorum 2); alice delegates to zoe, who is not a reviewer.
    await delegations.end('alice@example.com', { now: clock, by: 'test' });
    await delegations.set(
      'alice@example.com',
      { to: 'zoe@example.com', until: at(24), reason: 'on leave' },
      { now: clock, by: 'operator' },
    );
    const r = await approval();
    sent.length = 0;
    const result = await notifyReviewers({
      store: approvals,
      keyring,
      notifier,
      publicBaseUrl: base,
      delegations,
      now: () => clock,
    })({
      runId: r.runId,
      approvalId: r.id,
      kind: 'request',
      recipients: r.policy.reviewers,
    });
    expect(result.sent).toBe(4);
    expect(sent.map((m) => m.to).sort()).toEqual([
      'alice@example.com',
      'bob@example.com',
      'dan@example.com',
      'zoe@example.com',
    ]);
    expect(sent.find((m) => m.to === 'zoe@example.com')?.text).toContain('on behalf of alice@example.com');

    const token = tokenIn('zoe@example.com', 'alice@example.com');
    // Signed in as zoe (the delegate), not as alice.
    const zoe = { name: 'Zoe', identities: ['zoe@example.com'] };
    const { decision, view } = await submitDecision(svc(true), token, approveBody(r), { principal: zoe });
    expect(decision).toMatchObject({
      reviewer: 'alice@example.com',
      delegate: 'zoe@example.com',
      decision: 'approve',
    });
    expect(view.verdict.approvedBy).toEqual(['alice@example.com']);

    const stored = await approvals.readState(r.runId, r.id);
    expect(stored?.decisions).toEqual([
      expect.objectContaining({ reviewer: 'alice@example.com', delegate: 'zoe@example.com' }),
    ]);
    const html = String(
      renderLoadedApproval(await loadApproval(svc(), token), { actionPath: '/x', requireSignin: false }).body,
    );
    expect(html).toMatch(
      /<strong>zoe@example\.com<\/strong> on behalf of <strong>alice@example\.com<\/strong>/,
    );

    const { entries } = await audit.page({
      subject: `model/${r.candidate.modelName}/${r.candidate.modelVersion}`,
    });
    const decided = entries.find((e) => e.kind === 'approval.decided' && e.data.runId === r.runId);
    expect(decided).toMatchObject({
      actor: 'zoe@example.com on behalf of alice@example.com',
      data: { delegate: 'zoe@example.com', onBehalfOf: 'alice@example.com' },
    });

    // alice herself can no longer decide: her vote was cast by zoe.
    const own = sent.find((m) => m.to === 'alice@example.com')!;
    await expect(
      submitDecision(svc(), decodeURIComponent(own.link!.split('/').pop()!), approveBody(r)),
    ).rejects.toMatchObject({
      code: 'decision_exists',
      message: expect.stringContaining('zoe@example.com already approved on behalf of alice@example.com'),
    });
  });

  it('a delegate who requested the run cannot approve it; an ended delegation stops the link', async () => {
    // carol@example.com requested the sample run.
    await delegations.end('bob@example.com', { now: clock, by: 'test' });
    await delegations.set(
      'bob@example.com',
      { to: 'carol@example.com', until: at(24), reason: 'away' },
      { now: clock, by: 'operator' },
    );
    const r = await approval();
    sent.length = 0;
    await notifyReviewers({
      store: approvals,
      keyring,
      notifier,
      publicBaseUrl: base,
      delegations,
      now: () => clock,
    })({
      runId: r.runId,
      approvalId: r.id,
      kind: 'request',
      recipients: ['bob@example.com'],
    });
    const carolToken = tokenIn('carol@example.com', 'bob@example.com');
    await expect(submitDecision(svc(), carolToken, approveBody(r))).rejects.toMatchObject({
      code: 'requester_cannot_approve',
      status: 403,
    });
    expect((await approvals.readState(r.runId, r.id))?.decisions).toEqual([]);

    await delegations.end('bob@example.com', { now: clock, by: 'operator' });
    await expect(
      submitDecision(svc(), carolToken, { ...approveBody(r), decision: 'reject', comment: 'no' }),
    ).rejects.toMatchObject({ code: 'delegation_not_active', status: 403 });
  });

  it('one person counts once: a reviewer who is also a delegate cannot vote twice', async () => {
    await delegations.end('dan@example.com', { now: clock, by: 'test' });
    await delegations.set(
      'dan@example.com',
      { to: 'bob@example.com', until: at(24), reason: 'away' },
      { now: clock, by: 'operator' },
    );
    const r = await approval();
    sent.length = 0;
    await notifyReviewers({
      store: approvals,
      keyring,
      notifier,
      publicBaseUrl: base,
      delegations,
      now: () => clock,
    })({
      runId: r.runId,
      approvalId: r.id,
      kind: 'request',
      recipients: ['bob@example.com', 'dan@example.com'],
    });
    const own = sent.find((m) => m.to === 'bob@example.com' && !m.key.includes(':for:'))!;
    await submitDecision(svc(), decodeURIComponent(own.link!.split('/').pop()!), approveBody(r));
    await expect(
      submitDecision(svc(), tokenIn('bob@example.com', 'dan@example.com'), approveBody(r)),
    ).rejects.toMatchObject({ code: 'already_decided_as_other', status: 409 });
  });
});
