/**
 * The approval gate end to end through devhost: the real Durable engine runs approvalGate, the
 * activities write to the embedded Cosmos emulator and the Blob outbox, and reviewers act over
 * HTTP exactly as a browser would. Needs `dist/` (npm test builds it; alone: `npx tsc -p .`).
 */
import type { ApprovalGateInput } from '../../../lib/contracts/approval';
import type { GateHarness } from './harness';
import { startGateHarness } from './harness';

jest.setTimeout(180_000);

describe('approvalGate through devhost', () => {
  let h: GateHarness;
  beforeAll(async () => {
    h = await startGateHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });
  const hook = () => `${h.host.url}/runtime/webhooks/durabletask`;
  const startGate = (i: ApprovalGateInput) => h.startGate(i);
  const status = (id: string) => h.status(id);
  const finished = (id: string) => h.finished(id);
  const messages = (runId: string) => h.messages(runId);
  const linkFor = (runId: string, to: string, kind?: string) => h.linkFor(runId, to, kind);
  const newInput = (over: Partial<ApprovalGateInput> = {}) => h.newInput(over);
  const until = <T>(what: string, probe: () => Promise<T | undefined>) => h.until(what, probe);

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
    expect(alice.startsWith(`${h.host.url}/api/approvals/`)).toBe(true);
    expect(h.host.output()).toContain(alice);

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
