/**
 * Captures golden histories of approvalGate from real devhost runs (the exact events the Durable
 * engine gave the library) into test/fixtures/approval-golden/<name>.json, for
 * test/unit/approval/gateGolden.test.ts to replay on every change. Re-run after a deliberate change
 * of the gate (a changed gate must not silently break approvals already waiting on Azure):
 *
 *   npx tsc -p . && node dist/test/e2e/approval/captureGolden.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type CapturedRun, writeGoldens } from '../../devhost/durable/support/writeGoldens';
import type { GateHarness } from './harness';
import { startGateHarness } from './harness';

type Scenario = (h: GateHarness) => Promise<string>;

async function post(link: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(link, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`decision answered ${res.status}: ${await res.text()}`);
}

const scenarios: Record<string, Scenario> = {
  // Two of three approve, one at a time (two wake-ups).
  approvedTwoOfThree: async (h) => {
    const input = h.newInput();
    const id = await h.startGate(input);
    const facts = { modelDigest: input.candidate.modelDigest, datasetDigest: input.candidate.datasetDigest };
    await post(await h.linkFor(input.runId, 'alice@example.com'), { decision: 'approve', ...facts });
    await h.until('first approval seen', async () =>
      (await h.status(id)).customStatus?.waitingFor?.length === 2 ? true : undefined,
    );
    await post(await h.linkFor(input.runId, 'bob@example.com'), { decision: 'approve', ...facts });
    return id;
  },
  // A bare wake-up event first (changes nothing), then a rejection.
  rejectedAfterEarlyEvent: async (h) => {
    const input = h.newInput();
    const id = await h.startGate(input);
    const link = await h.linkFor(input.runId, 'dan@example.com');
    await fetch(
      `${h.host.url}/runtime/webhooks/durabletask/instances/${encodeURIComponent(id)}/raiseEvent/ApprovalDecision`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ reviewer: 'nobody' }),
      },
    );
    await new Promise((r) => setTimeout(r, 1000));
    await post(link, {
      decision: 'reject',
      comment: 'APAC slice is worse',
      modelDigest: input.candidate.modelDigest,
      datasetDigest: input.candidate.datasetDigest,
    });
    return id;
  },
  // No one decides: reminder, escalation, reminder, expiry.
  expiredAfterEscalation: async (h) => {
    const input = h.newInput({
      policy: {
        reviewers: ['alice@example.com'],
        requiredApprovals: 1,
        timeout: '3s',
        reminderAt: 0.5,
        onTimeout: { action: 'escalate', reviewers: ['erin@example.com'], timeout: '3s' },
      },
    });
    return h.startGate(input);
  },
};

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'approval-golden-'));
  const h = await startGateHarness({ dataDir });
  try {
    const captured: CapturedRun[] = [];
    for (const [name, run] of Object.entries(scenarios)) {
      const id = await run(h);
      const done = await h.finished(id);
      if (done.runtimeStatus !== 'Completed') throw new Error(`${name}: ${JSON.stringify(done)}`);
      captured.push({ name, orchestrator: 'approvalGate', instanceId: id });
    }
    await writeGoldens({
      dataDir,
      taskHub: 'ApprovalGateE2E',
      folder: 'approval-golden',
      runs: captured,
    });
  } finally {
    await h.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
