import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { outboxLinks, type RunRef } from '../../../cli/approvalLinks';
import { approvalMessage } from '../../../lib/approval/messages';
import { OutboxNotifier } from '../../../lib/notify/outbox';
import resources from '../../../lib/resources.json';
import { sampleRecord } from '../../support/approvalSample';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';

/** `sluice run --wait` finds the links reviewers were sent where devhost's notifier puts them. */
describe('run --wait reads the approval links from the local outbox', () => {
  let azurite: BlobEmulator;
  let container: ContainerClient;

  beforeAll(async () => {
    azurite = await startAzuriteBlob();
    container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      resources.blobContainers.outbox,
    );
  });
  afterAll(() => azurite.stop());

  it("finds each reviewer's link from the run's source URI in the same Azurite", async () => {
    const record = sampleRecord();
    const blobEndpoint = /BlobEndpoint=([^;]+);/.exec(azurite.connectionString)![1]!;
    const run = {
      id: record.runId,
      source: { uri: `${blobEndpoint}/datasets/wages.csv` },
    } satisfies RunRef;
    const links = outboxLinks(undefined);
    expect(await links(run)).toEqual([]); // no outbox container yet: nothing sent

    await container.createIfNotExists();
    const outbox = new OutboxNotifier(container);
    const link = 'http://localhost:7071/api/approvals/abc.def';
    await outbox.send(approvalMessage({ record, kind: 'request', to: 'alice@example.com', link }));
    await outbox.send(approvalMessage({ record, kind: 'request', to: 'bob@example.com', link: `${link}2` }));
    expect((await links(run)).sort((a, b) => a.to.localeCompare(b.to))).toEqual([
      { to: 'alice@example.com', kind: 'request', link },
      { to: 'bob@example.com', kind: 'request', link: `${link}2` },
    ]);
  });

  it('says where the links went when the run lives outside a local Azurite', async () => {
    const run = {
      id: 'r1',
      source: { kind: 'upload', uri: 'https://acct.blob.core.windows.net/datasets/x.csv' },
    };
    await expect(outboxLinks(undefined)(run)).rejects.toThrow(/configured notifier/);
  });
});
