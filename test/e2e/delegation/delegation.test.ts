/**
 * Delegation end to end through devhost: an operator (function key) delegates alice's approvals to
 * zoe, the approval gate's request reaches zoe with her own link, zoe's decision counts toward the
 * quorum as alice's, and the page reads "zoe on behalf of alice". Needs `dist/` (`npm run build`).
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { readOutbox } from '../../../lib/notify/outbox';
import type { ApprovalGateInput, ApprovalGateOutput } from '../../../lib/contracts/approval';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../../devhost/services/wellKnown';
import type { RunningDevhost } from '../../support/devhost';
import { startDevhost } from '../../support/devhost';
import { freePort } from '../../support/emulators';
import { sampleApprovalInput } from '../../support/approvalSample';

jest.setTimeout(180_000);

const MASTER = `m-${randomBytes(8).toString('hex')}`;

describe('delegation through devhost', () => {
  let host: RunningDevhost;
  let blobPort: number;
  beforeAll(async () => {
    const port = await freePort();
    blobPort = await freePort();
    host = await startDevhost({
      app: 'test/fixtures/delegation',
      port,
      args: ['--blob-port', String(blobPort), '--keys', `master=${MASTER}`],
      env: {
        APPROVAL_SIGNING_KEYS: JSON.stringify({ e2e: randomBytes(32).toString('base64') }),
        APPROVAL_ACTIVE_KEY_ID: 'e2e',
        NOTIFIER: 'outbox',
        PUBLIC_BASE_URL: `http://localhost:${port}`,
      },
    });
  });
  afterAll(async () => {
    await host?.stop();
  });

  const keyed = { 'x-functions-key': MASTER };
  const delegationUrl = (id: string) => `${host.url}/api/reviewers/${encodeURIComponent(id)}/delegation`;
  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${host.output().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const outbox = () =>
    BlobServiceClient.fromConnectionString(
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT};`,
    ).getContainerClient('outbox');
  const linkFor = (runId: string, to: string, match: (key: string) => boolean = () => true) =>
    until(`request link for ${to}`, async () => {
      const c = outbox();
      const messages = (await c.exists()) ? await readOutbox(c, `${runId}/`) : [];
      return messages.find((m) => m.to === to && m.kind === 'request' && match(m.key))?.link;
    });
  const post = (link: string, body: Record<string, unknown>) =>
    fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it("zoe decides for alice: the gate counts alice toward the quorum and the page reads 'on behalf of'", async () => {
    // Without the function key the operator route is closed.
    const noKey = await fetch(delegationUrl('alice@example.com'));
    expect(noKey.status).toBe(401);

    const until1d = new Date(Date.now() + 86_400_000).toISOString();
    const set = await fetch(delegationUrl('alice@example.com'), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...keyed },
      body: JSON.stringify({ to: 'zoe@example.com', until: until1d, reason: 'parental leave' }),
    });
    expect(set.status).toBe(201);
    const overlap = await fetch(delegationUrl('alice@example.com'), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...keyed },
      body: JSON.stringify({ to: 'dan@example.com', until: until1d, reason: 'also' }),
    });
    expect(overlap.status).toBe(409);
    expect(((await overlap.json()) as { code: string }).code).toBe('delegation_overlaps');

    const input = sampleApprovalInput({ runId: `run-dlg-e2e-${Date.now()}` }) as ApprovalGateInput;
    const id = `${input.runId}:approval`;
    const hook = `${host.url}/runtime/webhooks/durabletask`;
    const started = await fetch(`${hook}/orchestrators/approvalGate/${encodeURIComponent(id)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...keyed },
      body: JSON.stringify(input),
    });
    expect(started.status).toBe(202);

    const zoe = await linkFor(input.runId, 'zoe@example.com', (k) => k.endsWith(':for:alice@example.com'));
    const bob = await linkFor(input.runId, 'bob@example.com');
    const facts = { modelDigest: input.candidate.modelDigest, datasetDigest: input.candidate.datasetDigest };

    const byZoe = await post(zoe, { decision: 'approve', comment: 'covering for alice', ...facts });
    expect(byZoe.status).toBe(201);
    expect(await byZoe.json()).toMatchObject({ reviewer: 'alice@example.com' });
    expect((await post(bob, { decision: 'approve', ...facts })).status).toBe(201);

    const done = await until('the gate to finish', async () => {
      const s = (await (
        await fetch(`${hook}/instances/${encodeURIComponent(id)}`, { headers: keyed })
      ).json()) as { runtimeStatus: string; output: ApprovalGateOutput | null };
      return ['Completed', 'Failed', 'Terminated'].includes(s.runtimeStatus) ? s : undefined;
    });
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toMatchObject({
      outcome: 'approved',
      approvedBy: ['alice@example.com', 'bob@example.com'],
    });

    const page = await (await fetch(zoe)).text();
    expect(page).toMatch(
      /<strong>zoe@example\.com<\/strong> on behalf of <strong>alice@example\.com<\/strong>/,
    );

    const ended = await fetch(delegationUrl('alice@example.com'), { method: 'DELETE', headers: keyed });
    expect(ended.status).toBe(200);
    const shown = (await (await fetch(delegationUrl('alice@example.com'), { headers: keyed })).json()) as {
      active: unknown;
    };
    expect(shown.active).toBeNull();
  });
});
