/**
 * The push path through devhost: the real trainingMonitor, checkTraining and trainingEvents
 * (test/fixtures/training-events, from dist/) watch a "slow job" whose files the test writes in the
 * embedded Azurite, the way a backend's job would. The monitor's next poll is an hour away, so it
 * can only finish within the test because the Event Grid event woke it. Needs `dist/` (npm test
 * builds it; alone: `npx tsc -p .`).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { BlobServiceClient } from '@azure/storage-blob';
import { trainingMonitorInstanceId } from '../../../lib/contracts/training';
import { trainingJobId } from '../../../lib/training/jobId';
import type { TrainingMonitorOutput } from '../../../lib/contracts/training';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../../devhost/services/wellKnown';
import type { RunningDevhost } from '../../support/devhost';
import { startDevhost } from '../../support/devhost';
import { freePort } from '../../support/emulators';
import { fakeJobRequest, fakeJobStatus } from '../../support/fakeTrainingJob';

jest.setTimeout(120_000);

const MASTER = 'e2e-master-key';
const FUNCTION_KEY = 'e2e-function-key';
const HOUR_S = 3_600;

interface InstanceStatus {
  runtimeStatus: string;
  createdTime: string;
  lastUpdatedTime: string;
  output: TrainingMonitorOutput | null;
  customStatus: { state?: string; polls?: number } | null;
}

let host: RunningDevhost;
let jobs: ContainerClient;

beforeAll(async () => {
  const blobPort = await freePort();
  host = await startDevhost({
    app: 'test/fixtures/training-events',
    port: await freePort(),
    args: ['--blob-port', String(blobPort), '--keys', `master=${MASTER},default=${FUNCTION_KEY}`],
    env: { TRAINING_HEARTBEAT_STALE_SECONDS: '600' },
  });
  const conn = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT};`;
  jobs = BlobServiceClient.fromConnectionString(conn).getContainerClient('jobs');
  await jobs.createIfNotExists();
});

afterAll(async () => {
  await host?.stop();
});

const hook = () => `${host.url}/runtime/webhooks/durabletask`;

async function putJson(path: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value);
  await jobs.getBlockBlobClient(path).upload(text, Buffer.byteLength(text), {
    blobHTTPHeaders: { blobContentType: 'application/json' },
  });
}

/** The files a backend's job leaves under jobs/<jobId>/: the request at submit, then its status. */
async function writeJob(runId: string, jobId: string): Promise<void> {
  await putJson(`${jobId}/request.json`, fakeJobRequest(jobId, runId));
}

async function writeStatus(jobId: string, state: 'running' | 'completed'): Promise<void> {
  await putJson(`${jobId}/status.json`, fakeJobStatus(jobId, state));
}

async function status(instanceId: string): Promise<InstanceStatus> {
  const res = await fetch(`${hook()}/instances/${encodeURIComponent(instanceId)}?code=${MASTER}`);
  if (res.status === 404) return { runtimeStatus: 'NotFound' } as InstanceStatus;
  return (await res.json()) as InstanceStatus;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 45_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${host.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const afterPolls = (instanceId: string, polls: number) =>
  until(`${instanceId} after ${polls} polls`, async () => {
    const s = await status(instanceId);
    return s.customStatus?.polls === polls ? s : undefined;
  });

/** Azure ML's RunStatusChanged as Event Grid delivers it (Event Grid schema, a batch of one). */
function postEvent(jobId: string, runStatus: string, key: string | null = FUNCTION_KEY): Promise<Response> {
  return fetch(`${host.url}/api/events/training${key ? `?code=${key}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'aeg-event-type': 'Notification' },
    body: JSON.stringify([
      {
        topic:
          '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw',
        subject: `experiments/5b7e4f1c-0000-4000-8000-000000000001/runs/${jobId}`,
        eventType: 'Microsoft.MachineLearningServices.RunStatusChanged',
        eventTime: new Date().toISOString(),
        id: `evt-${jobId}-${runStatus}-${Date.now()}`,
        data: {
          experimentName: 'sluice',
          runId: jobId,
          runType: null,
          runTags: {},
          runProperties: {},
          runStatus,
        },
        dataVersion: '',
        metadataVersion: '1',
      },
    ]),
  });
}

it('an Event Grid job event wakes trainingMonitor at once; an early (forged) one cannot end it', async () => {
  const runId = `run-push-${Date.now()}`;
  const jobId = trainingJobId(runId);
  const instanceId = trainingMonitorInstanceId(runId);
  await writeJob(runId, jobId);
  await writeStatus(jobId, 'running');

  const start = await fetch(
    `${hook()}/orchestrators/trainingMonitor/${encodeURIComponent(instanceId)}?code=${MASTER}`,
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        jobId,
        backend: 'local',
        runId,
        deadline: new Date(Date.now() + 2 * HOUR_S * 1000).toISOString(),
        // The first poll happens at once; the next one only after an hour.
        firstPollSeconds: HOUR_S,
        maxPollSeconds: HOUR_S,
      }),
    },
  );
  expect(start.status).toBe(202);
  const first = await afterPolls(instanceId, 1);
  expect(first.customStatus?.state).toBe('running');

  // The endpoint's auth level is function: no key, no wake-up.
  expect((await postEvent(jobId, 'Completed', null)).status).toBe(401);

  // An event that claims completion while the job still runs: the monitor looks, and keeps waiting.
  const early = await postEvent(jobId, 'Completed');
  expect(early.status).toBe(200);
  expect(await early.json()).toMatchObject({ woken: [{ jobId, runId, instanceId }] });
  const second = await afterPolls(instanceId, 2);
  expect(second.runtimeStatus).toBe('Running');
  expect(second.customStatus?.state).toBe('running');

  // The job finishes; its event wakes the monitor, which reads the result from the job's files.
  await writeStatus(jobId, 'completed');
  expect((await postEvent(jobId, 'Completed')).status).toBe(200);
  const done = await until('the monitor to complete', async () => {
    const s = await status(instanceId);
    return s.runtimeStatus === 'Completed' ? s : undefined;
  });
  expect(done.output).toMatchObject({
    jobId,
    state: 'completed',
    polls: 3,
    result: { modelDigest: 'a'.repeat(64) },
  });
  // It ended long before its hour-long timer would have fired.
  expect(Date.parse(done.lastUpdatedTime)).toBeLessThan(Date.parse(second.lastUpdatedTime) + HOUR_S * 1000);

  // A late duplicate after the monitor ended is accepted (the Durable client takes the 410 of a
  // finished instance as delivered) and changes nothing.
  const late = await postEvent(jobId, 'Completed');
  expect(late.ok).toBe(true);
  expect((await status(instanceId)).output).toEqual(done.output);
});

it('an event for a job Sluice did not start is accepted and ignored', async () => {
  const res = await postEvent('automl_5f1e-not-ours', 'Completed');
  expect(res.status).toBe(202);
  expect(await res.json()).toMatchObject({ woken: [], ignored: [{ reason: 'not a Sluice training job' }] });
});
