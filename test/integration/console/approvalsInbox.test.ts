/**
 * The console's approval inbox on the Cosmos emulator: a signed-in reviewer gets a working link for
 * their own pending decisions and never another reviewer's; a viewer who reviews nothing gets no
 * link at all; the open local console shows each pending reviewer's link; recent decisions name who
 * decided.
 */
import { randomBytes } from 'node:crypto';
import { loadApprovals, renderApprovalsPage } from '../../../lib/console/pages/approvals';
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

describe('approvals inbox', () => {
  let cosmos: CosmosStore;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ cosmos, stop } = await startCosmosStore());
    const store = new ApprovalStore(cosmos.container('approvals'));
    const first = sampleRecord(new Date('2026-03-01T09:00:00.000Z'));
    await store.createRecord(first);
    await store.createDecision(
      sampleDecision(first, 'alice@example.com', 'approve', '2026-03-01T10:00:00.000Z', 'fine by me'),
    );
    const second = sampleRecord(new Date('2026-03-01T11:00:00.000Z'), {
      runId: 'run-20260301-0002',
      policy: {
        reviewers: ['bob@example.com'],
        requiredApprovals: 1,
        timeout: '2h',
        onTimeout: { action: 'reject' },
      },
    });
    await store.createRecord(second);
  });
  afterAll(async () => stop?.());

  const deps = () => ({ approvals: cosmos.container('approvals'), keyring, now });

  it('gives a signed-in reviewer a link for their own undecided approvals only', async () => {
    const view = await loadApprovals(deps(), signedIn('bob@example.com'));
    expect(view.pending.map((p) => p.record.runId).sort()).toEqual([
      'run-20260301-0001',
      'run-20260301-0002',
    ]);
    const links = view.pending.flatMap((p) => p.links);
    expect(links.map((l) => l.reviewer)).toEqual(['bob@example.com', 'bob@example.com']);
    for (const l of links) {
      const claims = verifyApprovalToken(keyring, l.href.replace('/api/approvals/', ''), now);
      expect(claims.reviewer).toBe('bob@example.com');
    }
    // Alice decided already: the first approval waits for bob and dan only, and she gets no link.
    const first = view.pending.find((p) => p.record.runId === 'run-20260301-0001')!;
    expect(first.waitingFor).toEqual(['bob@example.com', 'dan@example.com']);
    const alice = await loadApprovals(deps(), signedIn('alice@example.com'));
    expect(alice.pending.flatMap((p) => p.links)).toEqual([]);

    const html = renderApprovalsPage(view, signedIn('bob@example.com'), now, { csrf: 'x' }).body;
    expect(html).toContain('Waiting for you');
    expect(html).not.toContain(`as dan@example.com`);
    // No token of anyone but bob is on the page.
    const tokens = [...html.matchAll(/\/api\/approvals\/([A-Za-z0-9_.-]+)/g)].map((m) => m[1]!);
    expect(tokens).toHaveLength(2);
    for (const t of tokens) expect(verifyApprovalToken(keyring, t, now).reviewer).toBe('bob@example.com');
  });

  it('shows a viewer who reviews nothing the pending approvals without links', async () => {
    const view = await loadApprovals(deps(), signedIn('zoe@example.com'));
    const html = renderApprovalsPage(view, signedIn('zoe@example.com'), now, {}).body;
    expect(html).toContain('Other pending approvals');
    expect(html).not.toMatch(/\/api\/approvals\//);
  });

  it('shows every pending reviewer’s link on the open local console, and who decided', async () => {
    const view = await loadApprovals(deps(), local);
    const reviewers = view.pending.flatMap((p) => p.links.map((l) => l.reviewer)).sort();
    expect(reviewers).toEqual(['bob@example.com', 'bob@example.com', 'dan@example.com']);
    expect(view.recent).toEqual([
      expect.objectContaining({
        reviewer: 'alice@example.com',
        decision: 'approve',
        pipeline: 'churn',
        modelVersion: 7,
      }),
    ]);
    const html = renderApprovalsPage(view, local, now, { banner: 'Local console' }).body;
    expect(html).toContain('fine by me');
    // Two hours on, the second approval's deadline (13:00) has passed.
    expect(renderApprovalsPage(view, local, new Date('2026-03-01T14:00:00.000Z'), {}).body).toContain(
      'overdue',
    );
  });

  it('makes no links when approvals are not configured', async () => {
    const view = await loadApprovals({ ...deps(), keyring: undefined }, local);
    expect(view.pending.flatMap((p) => p.links)).toEqual([]);
    expect(renderApprovalsPage(view, local, now, {}).body).toContain('APPROVAL_SIGNING_KEYS is not set');
  });
});
