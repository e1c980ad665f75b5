/**
 * The approval gate end to end through devhost: the real Durable engine runs approvalGate, the
 * activities write to the embedded Cosmos emulator and the Blob outbox, and reviewers act over
 * HTTP exactly as a browser would. Needs `dist/` (npm test builds it; alone: `npx tsc -p .`).
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';
import { readOutbox } from '../../../lib/notify/outbox';
import type { ApprovalGateInput, ApprovalGateOutput } from '../../../lib/contracts/approval';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../../devhost/services/wellKnown';
import type { RunningDevhost } from '../../helpers/devhost';
import { startDevhost } from '../../helpers/devhost';
import { freePort } from '../../support/emulators';
import { sampleApprovalInput } from '../../support/approvalSample';

jest.setTimeout(180_000);

interface Status {
  runtimeStatus: string;
  output: ApprovalGateOutput | null;
  customStatus: { outcome?: string; waitingFor?: string[]; stage?: string } | null;
}

describe('approvalGate through devhost', () => {
  let host: RunningDevhost;
  let outbox: ContainerClient;
  let n = 0;

  beforeAll(async () => {
    const port = await freePort();
    const blobPort = await freePort();
    host = await startDevhost({
      app: 'test/fixtures/approval-gate',
      port,
      args: ['--blob-port', String(blobPort)],
      env: {
        APPROVAL_SIGNING_KEYS: JSON.stringify({ e2e: randomBytes(32).toString('base64') }),
        APPROVAL_ACTIVE_KEY_ID: 'e2e',
        NOTIFIER: 'outbox',
        PUBLIC_BASE_URL: `http://localhost:${port}`,
      },
    });
    const conn = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT};`;
    outbox = BlobServiceClient.fromConnectionString(conn).getContainerClient('outbox');
  });
  afterAll(async () => {
    await host?.stop();
  });

  const hook = () => `${host.url}/runtime/webhooks/durabletask`;

  async function startGate(input: ApprovalGateInput): Promise<string> {
    const id = `${input.runId}:approval`;
    const res = await fetch(`${hook()}/orchestrators/approvalGate/${encodeURIComponent(id)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input),
    });
    expect(res.status).toBe(202);
    return id;
  }
  async function status(id: string): Promise<Status> {
    const res = await fetch(`${hook()}/instances/${encodeURIComponent(id)}`);
    return (await res.json()) as Status;
  }
  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${host.output().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const finished = (id: string) =>
    until(`${id} to finish`, async () => {
      const s = await status(id);
      return ['Completed', 'Failed', 'Terminated'].includes(s.runtimeStatus) ? s : undefined;
    });
  async function messages(runId: string) {
    return (await outbox.exists()) ? readOutbox(outbox, `${runId}/`) : [];
  }
  async function linkFor(runId: string, to: string, kind = 'request'): Promise<string> {
    return until(
      `${kind} link for ${to}`,
      async () => (await messages(runId)).find((m) => m.to === to && m.kind === kind)?.link,
    );
  }
  const newInput = (over: Partial<ApprovalGateInput> = {}): ApprovalGateInput => {
    n++;
    return sampleApprovalInput({ runId: `run-e2e-${n}-${Date.now()}`, ...over }) as ApprovalGateInput;
  };
  async function post(link: string, body: Record<string, unknown>): Promise<Response> {
    return fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }
  const facts = (i: ApprovalGateInput) => ({
    modelDigest: i.candidate.modelDigest,
    datasetDigest: i.candidate.datasetDigest,
  });

  it('sends each reviewer a personal link; scanner traffic changes nothing; two of three approve', async () => {
    const input = newInput();
    const id = await startGate(input);
    const alice = await linkFor(input.runId, 'alice@example.com');
    const bob = await linkFor(input.runId, 'bob@example.com');
    expect(alice).not.toBe(bob);
    expect(alice.startsWith(`${host.url}/api/approvals/`)).toBe(true);
    expect(host.output()).toContain(alice);

    // Safe Links style prefetch: HEAD, then GET three times.
    expect((await fetch(alice, { method: 'HEAD' })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await fetch(alice)).status).toBe(200);
    expect((await status(id)).customStatus?.waitingFor).toEqual([
      'alice@example.com',
      'bob@example.com',
      'dan@example.com',
    ]);

    expect(
      (await post(alice, { decision: 'approve', comment: 'checked slices', ...facts(input) })).status,
    ).toBe(201);
    const one = await until('one approval seen by the gate', async () => {
      const s = await status(id);
      return s.customStatus?.waitingFor?.length === 2 ? s : undefined;
    });
    expect(one.runtimeStatus).toBe('Running');
    expect(
      (await post(alice, { decision: 'reject', comment: 'changed my mind', ...facts(input) })).status,
    ).toBe(409);
    expect((await post(bob, { decision: 'approve', ...facts(input) })).status).toBe(201);

    const done = await finished(id);
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toMatchObject({
      approvalId: id,
      outcome: 'approved',
      approvedBy: ['alice@example.com', 'bob@example.com'],
      escalated: false,
    });
    expect(done.output?.candidate).toEqual(input.candidate);
    const outcomes = (await messages(input.runId)).filter((m) => m.kind === 'outcome').map((m) => m.to);
    expect(outcomes.sort()).toEqual([
      'alice@example.com',
      'bob@example.com',
      'carol@example.com',
      'dan@example.com',
    ]);
    // After the gate closed, a late decision is refused and the page says closed.
    const dan = await linkFor(input.runId, 'dan@example.com');
    expect((await post(dan, { decision: 'approve', ...facts(input) })).status).toBe(409);
    expect(await (await fetch(dan)).text()).toContain('This approval is closed');
  });

  it('an early or duplicate wake-up event changes nothing; one rejection rejects', async () => {
    const input = newInput();
    const id = await startGate(input);
    const dan = await linkFor(input.runId, 'dan@example.com');
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${hook()}/instances/${encodeURIComponent(id)}/raiseEvent/ApprovalDecision`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ reviewer: 'dan@example.com', decision: 'approve' }),
      });
      expect(res.status).toBe(202);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const s = await status(id);
    expect(s.runtimeStatus).toBe('Running');
    expect(s.customStatus?.waitingFor).toHaveLength(3);

    expect(
      (await post(dan, { decision: 'reject', comment: 'APAC slice is worse', ...facts(input) })).status,
    ).toBe(201);
    const done = await finished(id);
    expect(done.output).toMatchObject({ outcome: 'rejected', rejectedBy: ['dan@example.com'] });
    expect(done.output?.reasons[0]).toContain('APAC slice is worse');
  });

  it('a timeout reminds, escalates with a new deadline, reminds again, then expires', async () => {
    const input = newInput({
      policy: {
        reviewers: ['alice@example.com'],
        requiredApprovals: 1,
        timeout: '4s',
        reminderAt: 0.5,
        onTimeout: { action: 'escalate', reviewers: ['erin@example.com'], timeout: '4s' },
      },
    });
    const id = await startGate(input);
    const done = await finished(id);
    expect(done.output).toMatchObject({ outcome: 'expired', escalated: true, approvedBy: [] });
    const log = (await messages(input.runId)).map((m) => `${m.kind}:${m.to}`);
    expect(log).toEqual(
      expect.arrayContaining([
        'request:alice@example.com',
        'reminder:alice@example.com',
        'escalation:erin@example.com',
        'reminder:erin@example.com',
        'outcome:erin@example.com',
      ]),
    );
    expect(log.indexOf('escalation:erin@example.com')).toBeGreaterThan(
      log.indexOf('reminder:alice@example.com'),
    );
    // The first reviewer's link died with the first deadline.
    const alice = await linkFor(input.runId, 'alice@example.com');
    expect((await post(alice, { decision: 'approve', ...facts(input) })).status).toBe(410);
  });

  it('escalation reviewers can approve after the first reviewers let the deadline pass', async () => {
    const input = newInput({
      policy: {
        reviewers: ['alice@example.com'],
        requiredApprovals: 1,
        timeout: '2s',
        onTimeout: { action: 'escalate', reviewers: ['erin@example.com'], timeout: '60s' },
      },
    });
    const id = await startGate(input);
    const erin = await linkFor(input.runId, 'erin@example.com', 'escalation');
    expect(
      (await post(erin, { decision: 'approve', comment: 'on call, looks fine', ...facts(input) })).status,
    ).toBe(201);
    const done = await finished(id);
    expect(done.output).toMatchObject({
      outcome: 'approved',
      approvedBy: ['erin@example.com'],
      escalated: true,
    });
  });
});
