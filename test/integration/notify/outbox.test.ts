import { BlobServiceClient } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';
import resources from '../../../lib/resources.json';
import { OutboxNotifier, readOutbox } from '../../../lib/notify/outbox';
import { approvalMessage } from '../../../lib/approval/messages';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';
import { sampleRecord } from '../../support/approvalSample';

describe('outbox notifier on Azurite', () => {
  let azurite: BlobEmulator;
  let container: ContainerClient;

  beforeAll(async () => {
    azurite = await startAzuriteBlob();
    container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      resources.blobContainers.outbox,
    );
    await container.createIfNotExists();
  });
  afterAll(() => azurite.stop());

  it('stores each message once (a retried activity finds it sent) and logs the link', async () => {
    const lines: string[] = [];
    const outbox = new OutboxNotifier(container, (line) => lines.push(line));
    const record = sampleRecord();
    const link = 'http://localhost:7071/api/approvals/abc.def';
    const m = approvalMessage({ record, kind: 'request', to: 'alice@example.com', link });
    const first = await outbox.send(m);
    const second = await outbox.send(m);
    expect(first.sent).toBe(true);
    expect(second).toEqual({ sent: false, ref: first.ref });
    await outbox.send(approvalMessage({ record, kind: 'request', to: 'bob@example.com', link }));

    const stored = await readOutbox(container, `${record.runId}/`);
    expect(stored.map((s) => s.to).sort()).toEqual(['alice@example.com', 'bob@example.com']);
    expect(stored[0]?.link).toBe(link);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(link);
  });
});
