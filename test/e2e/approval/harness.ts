/**
 * Shared set-up of the approval e2e tests: devhost running only the approval gate
 * (test/fixtures/approval-gate), its outbox in the embedded Azurite, and small clients for the
 * Durable HTTP API. Needs `dist/` (npm test builds it; alone: `npx tsc -p .`).
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';
import { readOutbox } from '../../../lib/notify/outbox';
import type { ApprovalGateInput, ApprovalGateOutput } from '../../../lib/contracts/approval';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../../devhost/services/wellKnown';
import type { RunningDevhost } from '../../support/devhost';
import { startDevhost } from '../../support/devhost';
import { freePort } from '../../support/emulators';
import { sampleApprovalInput } from '../../support/approvalSample';

export interface GateStatus {
  runtimeStatus: string;
  output: ApprovalGateOutput | null;
  customStatus: { outcome?: string; waitingFor?: string[]; stage?: string } | null;
}

export interface GateHarness {
  host: RunningDevhost;
  outbox: ContainerClient;
  startGate(input: ApprovalGateInput): Promise<string>;
  status(id: string): Promise<GateStatus>;
  until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  finished(id: string): Promise<GateStatus>;
  messages(runId: string): ReturnType<typeof readOutbox>;
  linkFor(runId: string, to: string, kind?: string): Promise<string>;
  newInput(over?: Partial<ApprovalGateInput>): ApprovalGateInput;
  stop(): Promise<void>;
}

let counter = 0;

/** `dataDir`: keep devhost's state on disk (golden capture reads the task hub from there); default in memory. */
export async function startGateHarness(options: { dataDir?: string } = {}): Promise<GateHarness> {
  const port = await freePort();
  const blobPort = await freePort();
  const host = await startDevhost({
    app: 'test/fixtures/approval-gate',
    port,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    args: ['--blob-port', String(blobPort)],
    env: {
      APPROVAL_SIGNING_KEYS: JSON.stringify({ e2e: randomBytes(32).toString('base64') }),
      APPROVAL_ACTIVE_KEY_ID: 'e2e',
      NOTIFIER: 'outbox',
      PUBLIC_BASE_URL: `http://localhost:${port}`,
    },
  });
  const conn = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT};`;
  const outbox = BlobServiceClient.fromConnectionString(conn).getContainerClient('outbox');
  const hook = `${host.url}/runtime/webhooks/durabletask`;

  const h: GateHarness = {
    host,
    outbox,
    async startGate(input) {
      const id = `${input.runId}:approval`;
      const res = await fetch(`${hook}/orchestrators/approvalGate/${encodeURIComponent(id)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      if (res.status !== 202) throw new Error(`start answered ${res.status}: ${await res.text()}`);
      return id;
    },
    async status(id) {
      const res = await fetch(`${hook}/instances/${encodeURIComponent(id)}`);
      return (await res.json()) as GateStatus;
    },
    async until(what, probe, timeoutMs = 60_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const v = await probe();
        if (v !== undefined) return v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${host.output().slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    finished(id) {
      return h.until(`${id} to finish`, async () => {
        const s = await h.status(id);
        return ['Completed', 'Failed', 'Terminated'].includes(s.runtimeStatus) ? s : undefined;
      });
    },
    async messages(runId) {
      return (await outbox.exists()) ? readOutbox(outbox, `${runId}/`) : [];
    },
    linkFor(runId, to, kind = 'request') {
      return h.until(
        `${kind} link for ${to}`,
        async () => (await h.messages(runId)).find((m) => m.to === to && m.kind === kind)?.link,
      );
    },
    newInput(over = {}) {
      counter++;
      return sampleApprovalInput({ runId: `run-e2e-${counter}-${Date.now()}`, ...over }) as ApprovalGateInput;
    },
    async stop() {
      await host.stop();
    },
  };
  return h;
}
