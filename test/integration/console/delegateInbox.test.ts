/**
 * The approvals inbox and delegation (lib/approval/delegation.ts) on the Cosmos emulator: a signed-in
 * person who holds a reviewer's approvals as their delegate sees them in their inbox, marked "on
 * behalf of" the reviewer, with a delegate's link the approval page accepts; a delegation that has
 * not started yet gives nothing; the open local console shows the delegate's link beside the
 * reviewer's own.
 */
import { randomBytes } from 'node:crypto';
import { loadApprovals, renderApprovalsPage } from '../../../lib/console/pages/approvals';
import { DelegationStore } from '../../../lib/approval/delegation';
import { ApprovalStore } from '../../../lib/approval/store';
import { verifyApprovalToken } from '../../../lib/approval/token';
import { parseKeyring } from '../../../lib/keyring';
import type { CosmosStore } from '../../../lib/storage';
import { sampleDecision, sampleRecord } from '../../support/approvalSample';
import { localConsole, signedInViewer } from '../../support/consoleAccess';
import { startCosmosStore } from '../../support/emulators';

jest.setTimeout(120_000);

const keyring = parseKeyring(JSON.stringify({ k1: randomBytes(32).toString('base64') }), 'k1');
const now = new Date('2026-03-01T12:00:00.000Z');

const signedIn = signedInViewer;
const local = localConsole;

describe('approvals inbox with delegations', () => {
  let cosmos: CosmosStore;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ cosmos, stop } = await startCosmosStore());
    const approvals = new ApprovalStore(cosmos.container('approvals'));
    const record = sampleRecord(new Date('2026-03-01T09:00:00.000Z'));
    await approvals.createRecord(record);
    await approvals.createDecision(
      sampleDecision(record, 'alice@example.com', 'approve', '2026-03-01T10:00:00.000Z'),
    );
    const delegations = new DelegationStore(cosmos.container('approvals'));
    // dan hands his approvals to erin now; bob hands his to frank only from tomorrow.
    await delegations.set(
      'dan@example.com',
      { to: 'erin@example.com', until: '2026-03-03T00:00:00.000Z', reason: 'on leave' },
      { now: new Date('2026-03-01T08:00:00.000Z'), by: 'dan@example.com' },
    );
    await delegations.set(
      'bob@example.com',
      {
        to: 'frank@example.com',
        from: '2026-03-02T00:00:00.000Z',
        until: '2026-03-04T00:00:00.000Z',
        reason: 'travelling',
      },
      { now: new Date('2026-03-01T08:00:00.000Z'), by: 'bob@example.com' },
    );
  });
  afterAll(async () => stop?.());

  const deps = () => ({ approvals: cosmos.container('approvals'), keyring, now });

  it('lists a reviewer’s pending approval in the delegate’s inbox, on behalf of the reviewer', async () => {
    const erin = signedIn('erin@example.com');
    const view = await loadApprovals(deps(), erin);
    const [pending] = view.pending;
    expect(pending).toMatchObject({ mine: true, onBehalfOf: ['dan@example.com'] });
    expect(pending!.links).toHaveLength(1);
    const link = pending!.links[0]!;
    expect(link).toMatchObject({ reviewer: 'dan@example.com', delegate: 'erin@example.com' });
    const claims = verifyApprovalToken(keyring, link.href.replace('/api/approvals/', ''), now);
    expect(claims).toMatchObject({ reviewer: 'dan@example.com', delegate: 'erin@example.com' });

    const html = renderApprovalsPage(view, erin, now, { csrf: 'x' }).body;
    expect(html).toContain('Waiting for you');
    expect(html).toContain('you, on behalf of dan@example.com');
    expect(html).toContain('Review on behalf of dan@example.com');
    // Only erin's delegate link is on the page: no token for bob, none for dan himself.
    const tokens = [...html.matchAll(/\/api\/approvals\/([A-Za-z0-9_.-]+)/g)].map((m) => m[1]!);
    expect(tokens).toHaveLength(1);
  });

  it('gives nothing for a delegation that has not started', async () => {
    const view = await loadApprovals(deps(), signedIn('frank@example.com'));
    expect(view.pending.map((p) => ({ mine: p.mine, links: p.links, onBehalfOf: p.onBehalfOf }))).toEqual([
      { mine: false, links: [], onBehalfOf: [] },
    ]);
  });

  it('shows the delegate’s link beside the reviewers’ own on the open local console', async () => {
    const view = await loadApprovals(deps(), local);
    const links = view.pending.flatMap((p) => p.links);
    expect(links.map((l) => `${l.delegate ?? '-'}/${l.reviewer}`).sort()).toEqual([
      '-/bob@example.com',
      '-/dan@example.com',
      'erin@example.com/dan@example.com',
    ]);
    expect(renderApprovalsPage(view, local, now, {}).body).toContain(
      'Open as erin@example.com on behalf of dan@example.com',
    );
  });
});
