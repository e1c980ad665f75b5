import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServices, type RunningServices } from '../../devhost/services';
import { loadConfig } from '../../lib/config';
import { ArtifactStore, CosmosStore, containerNames } from '../../lib/storage';
import resources from '../../lib/resources.json';
import { memoryLog } from '../devhost/servicesLog';

interface Run {
  id: string;
  pipeline: string;
  status: string;
  dataset?: { uri: string; sha256: string };
}

const storesOf = (services: RunningServices) => {
  const config = loadConfig(services.env);
  return { artifacts: ArtifactStore.fromConfig(config), cosmos: CosmosStore.fromConfig(config) };
};

// Each test starts and stops the services (Azurite takes seconds to load) up to twice.
jest.setTimeout(180_000);

describe('Sluice storage across a devhost restart', () => {
  let dataDir: string;
  const log = memoryLog();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sluice-restart-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('reads back blobs, containers with their partition keys, documents and their ETags', async () => {
    let services = await startServices({ dataDir, log });
    let stores = storesOf(services);
    let dataset: { uri: string; sha256: string };
    let summaryUri: string;
    let runEtag: string;
    try {
      await stores.artifacts.ensureContainers();
      await stores.cosmos.ensure();
      const stored = await stores.artifacts.putContentAddressed(
        resources.blobContainers.datasets,
        'x,y\n1,2\n3,4\n',
        {
          prefix: 'iris',
          contentType: 'text/csv',
        },
      );
      dataset = { uri: stored.uri, sha256: stored.sha256 };
      const summary = await stores.artifacts.putJson(
        { container: resources.blobContainers.reports, path: 'runs/run-1/summary.json' },
        { rows: 2 },
      );
      if (!summary.ok) throw new Error('summary not written');
      summaryUri = summary.uri;
      const created = await stores.cosmos.create<Run>('runs', {
        id: 'run-1',
        pipeline: 'iris',
        status: 'pending',
      });
      if (!created.ok) throw created.conflict;
      const replaced = await stores.cosmos.replace<Run>(
        'runs',
        { ...created.doc, status: 'running', dataset },
        created.etag,
      );
      if (!replaced.ok) throw replaced.conflict;
      runEtag = replaced.etag;
      const approval = await stores.cosmos.create('approvals', {
        id: 'run-1:alice',
        runId: 'run-1',
        decision: 'approve',
      });
      expect(approval.ok).toBe(true);
    } finally {
      stores.cosmos.client.dispose();
      await services.stop();
    }

    services = await startServices({ dataDir, log });
    stores = storesOf(services);
    try {
      // Containers and their partition keys come back without ensure().
      const { resources: containers } = await stores.cosmos.database.containers.readAll().fetchAll();
      const byId = Object.fromEntries(containers.map((c) => [c.id, c.partitionKey?.paths]));
      for (const name of containerNames) {
        expect(byId[resources.cosmos.containers[name].name]).toEqual([
          resources.cosmos.containers[name].partitionKey,
        ]);
      }

      const run = await stores.cosmos.read<Run>('runs', 'run-1', 'iris');
      expect(run).toMatchObject({ status: 'running', dataset });
      expect(run?._etag).toBe(runEtag);
      // First write still wins after the restart.
      const again = await stores.cosmos.create('approvals', {
        id: 'run-1:alice',
        runId: 'run-1',
        decision: 'reject',
      });
      expect(again.ok).toBe(false);
      // The ETag read before the restart still guards the next write.
      const next = await stores.cosmos.replace<Run>('runs', { ...run!, status: 'succeeded' }, runEtag);
      expect(next.ok).toBe(true);

      // URIs written before the restart still resolve (even if the emulator moved to another port).
      const { data } = await stores.artifacts.getBuffer(dataset.uri);
      expect(data.toString()).toBe('x,y\n1,2\n3,4\n');
      expect((await stores.artifacts.getJson(summaryUri)).value).toEqual({ rows: 2 });
      const rerun = await stores.artifacts.putContentAddressed(
        resources.blobContainers.datasets,
        'x,y\n1,2\n3,4\n',
        {
          prefix: 'iris',
        },
      );
      expect(rerun).toMatchObject({ sha256: dataset.sha256, created: false });
    } finally {
      stores.cosmos.client.dispose();
      await services.stop();
    }
  });
});
