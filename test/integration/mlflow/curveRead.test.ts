/**
 * Training curves switched on in the running app: the composition root's curve reader on Azurite
 * (a job's metrics.json history, a missing file, a file that is no curve), failing fast against a
 * storage endpoint that never answers, and the mirror with storage down (the run syncs without its
 * curve, one read per sweep) and back (a later sweep logs the curve onto the synced run).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { AnonymousCredential, BlobServiceClient } from '@azure/storage-blob';
import { startCosmosEmulator } from '../../../devhost/services/cosmos';
import { loadConfig } from '../../../lib/config';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { jobCurveReader } from '../../../lib/mlflow/curves';
import { CURVE_RETRY_WINDOW_MS, mirrorPendingRuns, type MirrorDeps } from '../../../lib/mlflow/mirror';
import { applyStepUpdates, newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { memoryLog } from '../../devhost/servicesLog';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';
import { FakeMlflow } from '../../support/fakes/mlflow';

jest.setTimeout(90_000);

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const history = Array.from({ length: 30 }, (_, i) => ({
  iteration: i + 1,
  loss: 1 / (i + 1),
  validationLoss: 1.2 / (i + 1),
  at: at(10 + i),
}));

/** A TCP server that accepts connections and never answers (a storage endpoint that hangs). */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/devstoreaccount1`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('training curves read from storage by the mirror', () => {
  let azurite: BlobEmulator;
  let emulator: { endpoint: string; key: string; stop(): Promise<void> };
  let fake: FakeMlflow;
  let hanging: Awaited<ReturnType<typeof silentServer>>;
  let up: Services;
  let down: Services;
  let clock = T0 + 3_600_000;

  const build = (connection: string) =>
    createServices(
      loadConfig({
        COSMOS_ENDPOINT: emulator.endpoint,
        COSMOS_KEY: emulator.key,
        ARTIFACT_STORAGE_CONNECTION: connection,
        PUBLIC_BASE_URL: 'https://sluice.example.com',
        MLFLOW_TRACKING_URI: fake.url,
      }),
      {
        prepare: false,
        now: () => new Date(clock),
        mlflow: { maxAttempts: 2, sleep: async () => undefined },
      },
    );

  beforeAll(async () => {
    [azurite, emulator, fake, hanging] = await Promise.all([
      startAzuriteBlob(),
      startCosmosEmulator({ location: null, log: memoryLog() }),
      new FakeMlflow().start(),
      silentServer(),
    ]);
    up = await build(azurite.connectionString);
    await up.cosmos.ensure();
    await up.artifacts.ensureContainers();
    // Storage that never answers: the mirror must not wait on it for long.
    down = await build(
      `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${Buffer.from('k').toString('base64')};BlobEndpoint=${hanging.url};`,
    );
  });
  afterAll(async () => {
    up?.cosmos.client.dispose();
    down?.cosmos.client.dispose();
    await Promise.all([fake?.stop(), emulator?.stop(), azurite?.stop(), hanging?.close()]);
  });

  const putJobFile = (jobId: string, body: string) =>
    up.artifacts
      .containerClient('jobs')
      .getBlockBlobClient(`${jobId}/metrics.json`)
      .upload(body, Buffer.byteLength(body));

  async function endedRun(id: string, jobId: string): Promise<RunDocument> {
    const doc = newRunDocument({
      id,
      pipeline: 'churn',
      pipelineVersion: 1,
      instanceId: id,
      trigger: { kind: 'cli', by: 'ana@contoso.com' },
      source: { kind: 'blob', uri: 'https://acct.blob.core.windows.net/datasets/churn.csv' },
      at: at(0),
    });
    const trained = applyStepUpdates(doc, [
      { step: 'train', status: 'running', at: at(5) },
      {
        step: 'train',
        status: 'succeeded',
        at: at(60),
        outputs: { jobId, backend: 'local', iterations: 30 },
      },
    ]);
    await up.runs.create({ ...trained, status: 'canceled', stopReason: 'canceled', endedAt: at(61) });
    return (await up.runs.get('churn', id))!;
  }

  it('reads a job curve from Azurite; a missing file or one with no history gives no points', async () => {
    const read = jobCurveReader(up.artifacts.service);
    await putJobFile('job-read', JSON.stringify({ history }));
    await putJobFile('job-final-only', JSON.stringify({ rmse: 0.3 }));
    await putJobFile('job-garbage', 'not json');
    expect(await read('job-read')).toEqual(history);
    expect(await read('job-missing')).toBeUndefined();
    expect(await read('job-final-only')).toEqual([]);
    expect(await read('job-garbage')).toBeUndefined();
  });

  it('fails fast, with one try, when storage does not answer', async () => {
    const read = jobCurveReader(new BlobServiceClient(hanging.url, new AnonymousCredential()), {
      timeoutMs: 300,
    });
    await expect(read('job-read')).rejects.toMatchObject({
      name: 'TransientError',
      code: 'mlflow_curve_unavailable',
      message: expect.stringContaining('jobs/job-read/metrics.json'),
    });
  });

  it('syncs a run without its curve while storage is down, then logs the curve once storage is back', async () => {
    await putJobFile('job-late', JSON.stringify({ history }));
    await endedRun('run-late', 'job-late');
    await endedRun('run-late-2', 'job-late');
    const reads: string[] = [];
    const downDeps: MirrorDeps = {
      ...down.mlflow!,
      curveOf: (job) => {
        reads.push(job);
        return down.mlflow!.curveOf!(job);
      },
    };
    const outcomes = await mirrorPendingRuns(downDeps);
    expect(outcomes.map((o) => [o.runId, o.status])).toEqual([
      ['run-late', 'synced'],
      ['run-late-2', 'synced'],
    ]);
    // One failed read closed the gate for the rest of the sweep.
    expect(reads).toEqual(['job-late']);
    let d = (await up.runs.get('churn', 'run-late'))!;
    expect(d.mlflow!.status).toBe('synced');
    expect(d.mlflow!.done).not.toContain('curves');
    expect(d.mlflow!.done).toContain('end');
    expect(fake.runByTag('sluice.run_id', 'run-late')!.info.status).toBe('KILLED');
    expect(fake.runByTag('sluice.run_id', 'run-late')!.metrics.some((m) => m.key === 'training.loss')).toBe(
      false,
    );

    // Storage is back: the next sweep logs both curves onto the synced (ended) MLflow runs.
    clock += 60_000;
    await mirrorPendingRuns(up.mlflow!);
    for (const id of ['run-late', 'run-late-2']) {
      d = (await up.runs.get('churn', id))!;
      expect(d.mlflow).toMatchObject({ status: 'synced' });
      expect(d.mlflow!.done).toContain('curves');
      const loss = fake.runByTag('sluice.run_id', id)!.metrics.filter((m) => m.key === 'training.loss');
      expect(loss).toHaveLength(30);
      expect(loss[4]).toEqual({ key: 'training.loss', value: 1 / 5, timestamp: Date.parse(at(14)), step: 5 });
    }
  });

  it('gives a curve up once the run synced longer ago than the retry window', async () => {
    await putJobFile('job-old', JSON.stringify({ history }));
    await endedRun('run-old', 'job-old');
    await mirrorPendingRuns(down.mlflow!);
    expect((await up.runs.get('churn', 'run-old'))!.mlflow!.status).toBe('synced');
    clock += CURVE_RETRY_WINDOW_MS + 60_000;
    await mirrorPendingRuns(up.mlflow!);
    const d = (await up.runs.get('churn', 'run-old'))!;
    expect(d.mlflow!.done).not.toContain('curves');
    expect(fake.runByTag('sluice.run_id', 'run-old')!.metrics.some((m) => m.key === 'training.loss')).toBe(
      false,
    );
  });
});
