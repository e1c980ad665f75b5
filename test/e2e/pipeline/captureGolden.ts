/**
 * Records golden histories of trainingPipeline and trainingMonitor from real devhost runs of the
 * whole app (the e2e pipeline harness: real Durable engine, Azurite, the Cosmos emulator, local
 * training workers, approvals decided through the approval page) and writes the raw histories
 * devhost persisted (the exact events the library was given) to test/fixtures/pipeline-golden/ and
 * test/fixtures/monitor-golden/; test/unit/runs/pipelineGolden.test.ts and
 * test/unit/training/monitorGolden.test.ts replay them on every change. About a minute:
 *
 *   npm run build && npx node dist/test/e2e/pipeline/captureGolden.js [--only pipeline|monitor]
 *
 * It records whatever the code does now. Pipeline files are named `r<revision>-<scenario>.json`
 * after the revision the run started with (runs started through the API get the current revision;
 * one scenario starts a run without a revision, as before revision 2), so recording after a new
 * revision is introduced ADDS files next to the old ones: keep the old ones as long as runs of that
 * revision may still be in flight (an approval waits for days). Monitor files are rewritten
 * (trainingMonitor has no revisions; version it the same way before changing its sequence of calls).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as prettier from 'prettier';
import { EventType } from '../../../devhost/durable/history';
import { SqliteTaskHubStore } from '../../../devhost/durable/sqliteStore';
import type { LoadedInstance } from '../../../devhost/durable/store';
import { trainingMonitorInstanceId } from '../../../lib/contracts/training';
import { trainingJobId } from '../../../lib/training/jobId';
import resources from '../../../lib/resources.json';
import type { Golden } from '../../devhost/durable/support/sdkDriver';
import { COSMOS_EMULATOR_KEY } from '../../../devhost/services/wellKnown';
import { newRunDocument } from '../../../lib/runs/document';
import { repoRoot } from '../../support/devhost';
import { cosmosStoreOn } from '../../support/emulators';
import { fakeJobRequest, fakeJobStatus } from '../../support/fakeTrainingJob';
import type { PipelineHarness, Ports } from './harness';
import {
  REQUESTER,
  REVIEWER,
  slowTraining,
  WAGES_CSV,
  freePorts,
  startPipelineHarness,
  testPipeline,
} from './harness';

/** A recorded history plus what a user saw at the end. */
export interface RecordedRun extends Golden {
  /** The custom status the instance showed last (the status API's `customStatus`). */
  customStatus: unknown;
  /**
   * Set on a generation that continued as new: the input the next generation was started with.
   * devhost does not keep the final episode of such a generation (only the next generation's
   * start), so its history ends with the last episode that was persisted: the poll that then
   * ended the generation is scheduled, its result is not in the history.
   */
  continuedAsNew?: { input: unknown };
}

const TASK_HUB = 'PipelineE2E';
const STEP_TIMEOUT_MS = 300_000;
const jobs = resources.blobContainers.jobs;

const fixtures = (folder: string) => path.join(repoRoot, 'test', 'fixtures', folder);

/** Writes one fixture, formatted as the repository's prettier check wants it. */
async function write(folder: string, name: string, run: RecordedRun): Promise<void> {
  const file = path.join(fixtures(folder), `${name}.json`);
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(JSON.stringify(run), { ...options, filepath: file }));
  console.log(`wrote ${path.relative(repoRoot, file)} (${run.history.length} events)`);
}

function recorded(inst: LoadedInstance): RecordedRun {
  const completed = inst.history.find((e) => e.EventType === EventType.ExecutionCompleted);
  return {
    orchestrator: inst.record.name,
    instanceId: inst.record.instanceId,
    input: inst.record.input === null ? null : (JSON.parse(inst.record.input) as unknown),
    output: JSON.parse(completed?.Result ?? 'null') as unknown,
    customStatus: inst.customStatus === null ? null : (JSON.parse(inst.customStatus) as unknown),
    history: inst.history,
  };
}

async function loadInstances(dataDir: string): Promise<LoadedInstance[]> {
  const store = SqliteTaskHubStore.open(dataDir, TASK_HUB);
  try {
    return await store.loadAll();
  } finally {
    store.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- trainingMonitor on jobs this script plays the backend for ------------------------------------

/**
 * A job whose files the script writes under jobs/<jobId>/, as a backend's job would: the request,
 * a status, and a heartbeat kept fresh while it "runs".
 */
class FakeJob {
  readonly runId: string;
  readonly jobId: string;
  readonly instanceId: string;
  private beat: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(
    private readonly h: PipelineHarness,
    name: string,
  ) {
    this.runId = `golden-${name}-${Date.now()}-${randomBytes(2).toString('hex')}`;
    this.jobId = trainingJobId(this.runId);
    this.instanceId = trainingMonitorInstanceId(this.runId);
  }

  private async put(file: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    await this.h.blobs
      .getContainerClient(jobs)
      .getBlockBlobClient(`${this.jobId}/${file}`)
      .upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: 'application/json' } });
  }

  async start(): Promise<void> {
    await this.h.blobs.getContainerClient(jobs).createIfNotExists();
    await this.put('request.json', fakeJobRequest(this.jobId, this.runId));
    await this.status('running');
    const beat = () => this.put('heartbeat.json', { at: new Date().toISOString(), seq: ++this.seq });
    await beat();
    this.beat = setInterval(() => void beat().catch(() => undefined), 1000);
  }

  async status(state: 'running' | 'completed'): Promise<void> {
    await this.put('status.json', fakeJobStatus(this.jobId, state));
    if (state === 'completed') this.stop();
  }

  stop(): void {
    clearInterval(this.beat);
  }

  /** Starts trainingMonitor on this job through the Durable HTTP API. */
  async monitor(options: Record<string, unknown>): Promise<void> {
    const res = await this.h.api(
      'POST',
      `/runtime/webhooks/durabletask/orchestrators/trainingMonitor/${encodeURIComponent(this.instanceId)}`,
      { jobId: this.jobId, backend: 'local', runId: this.runId, ...options },
    );
    if (res.status !== 202) throw new Error(`start monitor answered ${res.status}: ${await res.text()}`);
  }
}

interface DurableStatus {
  runtimeStatus: string;
  customStatus: { polls?: number } | null;
}

async function durableStatus(h: PipelineHarness, instanceId: string): Promise<DurableStatus> {
  const res = await h.api('GET', `/runtime/webhooks/durabletask/instances/${encodeURIComponent(instanceId)}`);
  return (await res.json()) as DurableStatus;
}

function orchestrationDone(h: PipelineHarness, instanceId: string): Promise<DurableStatus> {
  return h.until(
    `${instanceId} to finish`,
    async () => {
      const s = await durableStatus(h, instanceId);
      if (['Failed', 'Terminated'].includes(s.runtimeStatus))
        throw new Error(`${instanceId}: ${s.runtimeStatus}`);
      return s.runtimeStatus === 'Completed' ? s : undefined;
    },
    STEP_TIMEOUT_MS,
  );
}

/** Azure ML's RunStatusChanged as Event Grid delivers it, to the app's own endpoint. */
async function postJobEvent(h: PipelineHarness, jobId: string): Promise<void> {
  const res = await h.api(
    'POST',
    '/api/events/training',
    [
      {
        topic:
          '/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw',
        subject: `experiments/5b7e4f1c-0000-4000-8000-000000000001/runs/${jobId}`,
        eventType: 'Microsoft.MachineLearningServices.RunStatusChanged',
        eventTime: new Date().toISOString(),
        id: `evt-${jobId}-completed`,
        data: {
          experimentName: 'sluice',
          runId: jobId,
          runType: null,
          runTags: {},
          runProperties: {},
          runStatus: 'Completed',
        },
        dataVersion: '',
        metadataVersion: '1',
      },
    ],
    { 'aeg-event-type': 'Notification' },
  );
  if (res.status !== 200) throw new Error(`training event answered ${res.status}: ${await res.text()}`);
}

type MonitorScenario = (h: PipelineHarness, dataDir: string) => Promise<Record<string, RecordedRun>>;

const monitorScenarios: Record<string, MonitorScenario> = {
  // Past its deadline the monitor cancels the job and fails with training_timeout.
  async timedOut(h, dataDir) {
    const job = new FakeJob(h, 'timeout');
    await job.start();
    await job.monitor({
      deadline: new Date(Date.now() + 3_000).toISOString(),
      firstPollSeconds: 1,
      backoff: 1,
    });
    await orchestrationDone(h, job.instanceId);
    job.stop();
    return { timedOut: await one(dataDir, job.instanceId) };
  },

  // The next poll is an hour away; the job's completion event (Event Grid) wakes the monitor.
  async wokenEarly(h, dataDir) {
    const job = new FakeJob(h, 'woken');
    await job.start();
    await job.monitor({
      deadline: new Date(Date.now() + 2 * 3_600_000).toISOString(),
      firstPollSeconds: 3600,
      maxPollSeconds: 3600,
    });
    await h.until('the first poll', async () =>
      (await durableStatus(h, job.instanceId)).customStatus?.polls === 1 ? true : undefined,
    );
    await job.status('completed');
    await postJobEvent(h, job.jobId);
    await orchestrationDone(h, job.instanceId);
    return { wokenEarly: await one(dataDir, job.instanceId) };
  },

  // A job that outlasts one generation (POLLS_PER_GENERATION polls): the monitor continues as new
  // with its poll count carried along; the next generation sees the job complete.
  async continuedAsNew(h, dataDir) {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const job = new FakeJob(h, 'continued');
      await job.start();
      await job.monitor({
        deadline: new Date(Date.now() + 3_600_000).toISOString(),
        firstPollSeconds: 1,
        maxPollSeconds: 1,
        backoff: 1,
      });
      // devhost drops a generation's rows once it continued as new, and never persists the final
      // episode: keep the latest snapshot of the first generation while it runs.
      const store = SqliteTaskHubStore.open(dataDir, TASK_HUB);
      let first: LoadedInstance | undefined;
      let next: LoadedInstance | undefined;
      try {
        const end = Date.now() + STEP_TIMEOUT_MS;
        while (!next && Date.now() < end) {
          const inst = (await store.loadAll()).find((l) => l.record.instanceId === job.instanceId);
          if (inst && (!first || inst.record.gen === first.record.gen)) first = inst;
          else if (inst) next = inst;
          await sleep(10);
        }
      } finally {
        store.close();
      }
      if (!first || !next) throw new Error('the monitor did not continue as new in time');
      await job.status('completed');
      await orchestrationDone(h, job.instanceId);
      const polls = first.history.filter(
        (e) => e.EventType === EventType.TaskScheduled && e.Name === 'checkTraining',
      ).length;
      const last = first.history.at(-2);
      // Complete only if the snapshot caught the generation's last persisted episode: its final
      // poll scheduled (the result of which ended the generation).
      if (last?.EventType !== EventType.TaskScheduled || polls !== pollsOf(next)) {
        console.log(`continuedAsNew: snapshot missed the last episode (${polls} polls), again`);
        continue;
      }
      return {
        continuedAsNew: {
          ...recorded(first),
          continuedAsNew: { input: JSON.parse(next.record.input!) as unknown },
        },
        afterContinueAsNew: await one(dataDir, job.instanceId),
      };
    }
    throw new Error('continuedAsNew: no complete snapshot of the first generation in 3 attempts');
  },
};

const pollsOf = (inst: LoadedInstance) => (JSON.parse(inst.record.input!) as { polls: number }).polls;

async function one(dataDir: string, instanceId: string): Promise<RecordedRun> {
  const inst = (await loadInstances(dataDir)).find((l) => l.record.instanceId === instanceId);
  if (!inst) throw new Error(`${instanceId} not found in the task hub`);
  return recorded(inst);
}

// ---- trainingPipeline through the HTTP API, as users drive it -------------------------------------

/** Rows that break the wages contract: a negative wage and an occupation it does not list. */
function contractBreakingCsv(): string {
  return [
    'education,south,gender,experience,union,wage,age,race,occupation,sector,married',
    ...Array.from({ length: 250 }, (_, i) =>
      i === 7
        ? '12,0,male,10,0,-3,28,white,astronaut,other,1'
        : `${10 + (i % 8)},${i % 2},${i % 3 ? 'male' : 'female'},${i % 30},${i % 2},${(5 + (i % 17)).toFixed(2)},${40 + (i % 20)},white,other,other,${i % 2}`,
    ),
  ].join('\n');
}

interface PipelineScenario {
  definition: Record<string, unknown>;
  csv?: string;
  /** What a person (or the backend) does while the run is in flight. */
  act?: (h: PipelineHarness, runId: string) => Promise<void>;
  /** The run's final status, checked before anything is written. */
  expect: string;
  /** Also record the run's training monitor under this name. */
  monitor?: string;
  /**
   * Start the run as one started before revision 2 was introduced (no `revision` in its input),
   * written under this scenario name: what such a run, still in flight, holds.
   */
  asRevision1?: string;
}

function pipelineScenarios(badCsv: string): Record<string, PipelineScenario> {
  const approval = (h: PipelineHarness, runId: string) =>
    h.waitFor(runId, 'approval', (r) => r.status === 'waiting_for_approval', STEP_TIMEOUT_MS);
  return {
    approvedDeployed: {
      definition: testPipeline('golden-approved'),
      act: async (h, runId) => {
        await approval(h, runId);
        await h.decide(runId, 'approve', 'holdout r2 is fine');
      },
      expect: 'succeeded',
      monitor: 'completed',
    },
    approvedDeployedRevision1: {
      definition: testPipeline('golden-approved-r1'),
      act: async (h, runId) => {
        await approval(h, runId);
        await h.decide(runId, 'approve', 'holdout r2 is fine');
      },
      expect: 'succeeded',
      asRevision1: 'approvedDeployed',
    },
    validationStopped: {
      definition: testPipeline('golden-contract'),
      csv: badCsv,
      expect: 'stopped:validation_failed',
    },
    evaluationStopped: {
      definition: testPipeline('golden-eval', {
        evaluation: { primaryMetric: 'r2', threshold: 0.99, minRows: 50 },
      }),
      expect: 'stopped:evaluation_failed',
    },
    approvalRejected: {
      definition: testPipeline('golden-reject'),
      act: async (h, runId) => {
        await approval(h, runId);
        await h.decide(runId, 'reject', 'r2 of 0.2 is too weak for payroll planning');
      },
      expect: 'stopped:approval_rejected',
    },
    approvalTimedOut: {
      definition: testPipeline('golden-timeout', {
        approval: {
          reviewers: [REVIEWER],
          timeout: '3s',
          onTimeout: { action: 'escalate', reviewers: ['oncall@example.com'], timeout: '3s' },
        },
      }),
      expect: 'stopped:approval_timed_out',
    },
    // The worker stops a job at its time limit: the monitor reports it failed, the run fails.
    trainingFailed: {
      definition: testPipeline('golden-trainfail', { training: slowTraining(2) }),
      expect: 'failed:training_failed',
      monitor: 'failed',
    },
    // The job is canceled on the backend (its cancel marker), not through cancelRun: the monitor
    // sees it canceled and the run ends canceled on its own.
    jobCanceled: {
      definition: testPipeline('golden-jobcancel', { training: slowTraining(600) }),
      act: async (h, runId) => {
        const training = await h.waitFor(
          runId,
          'the training job',
          (r) => {
            const train = r.steps.find((s) => s.name === 'train');
            return train?.status === 'running' && typeof train.outputs?.jobId === 'string';
          },
          STEP_TIMEOUT_MS,
        );
        const jobId = training.steps.find((s) => s.name === 'train')!.outputs!.jobId as string;
        const files = h.blobs.getContainerClient(jobs);
        await h.until(
          'the worker to run',
          async () => {
            const status = JSON.parse(
              (await files.getBlobClient(`${jobId}/status.json`).downloadToBuffer()).toString('utf8'),
            ) as { state: string };
            return status.state === 'running' ? true : undefined;
          },
          STEP_TIMEOUT_MS,
        );
        const marker = JSON.stringify({ at: new Date().toISOString() });
        await files.getBlockBlobClient(`${jobId}/cancel.json`).upload(marker, marker.length);
      },
      expect: 'canceled:canceled',
      monitor: 'canceled',
    },
  };
}

/**
 * Starts a run the way the app did before revision 2: the same run document, and the orchestration
 * started with an input that has no `revision` (today's start endpoint always sets one). The data
 * is the wages CSV as a blob source.
 */
async function startRevision1(
  h: PipelineHarness,
  ports: Ports,
  pipeline: string,
  version: number,
): Promise<string> {
  const runId = `golden-r1-${Date.now()}-${randomBytes(3).toString('hex')}`;
  const datasets = h.blobs.getContainerClient(resources.blobContainers.datasets);
  await datasets.createIfNotExists();
  const csv = readFileSync(WAGES_CSV);
  const blob = datasets.getBlockBlobClient(`golden/${runId}.csv`);
  await blob.upload(csv, csv.length);
  const source = { kind: 'blob' as const, uri: blob.url };
  const cosmos = cosmosStoreOn({ endpoint: `http://127.0.0.1:${ports.cosmos}/`, key: COSMOS_EMULATOR_KEY });
  try {
    const created = await cosmos.create(
      'runs',
      newRunDocument({
        id: runId,
        pipeline,
        pipelineVersion: version,
        instanceId: runId,
        trigger: { kind: 'cli', by: REQUESTER },
        source,
        at: new Date().toISOString(),
      }),
    );
    if (!created.ok) throw created.conflict;
  } finally {
    cosmos.client.dispose();
  }
  const res = await h.api(
    'POST',
    `/runtime/webhooks/durabletask/orchestrators/trainingPipeline/${encodeURIComponent(runId)}`,
    { runId, pipeline, pipelineVersion: version, source, requestedBy: REQUESTER },
  );
  if (res.status !== 202) throw new Error(`start revision-1 run answered ${res.status}: ${await res.text()}`);
  return runId;
}

async function capturePipelines(h: PipelineHarness, ports: Ports, dataDir: string): Promise<void> {
  const badCsv = path.join(dataDir, 'contract-breaking.csv');
  writeFileSync(badCsv, contractBreakingCsv());
  const scenarios = Object.entries(pipelineScenarios(badCsv));
  const versions: number[] = [];
  for (const [, s] of scenarios) versions.push(await h.put(s.definition));
  // One after another: an instance streams only a few uploads at once (INGEST_MAX_CONCURRENT_UPLOADS).
  const runIds: string[] = [];
  for (const [i, [, s]] of scenarios.entries()) {
    const pipeline = String(s.definition.name);
    runIds.push(
      s.asRevision1 ? await startRevision1(h, ports, pipeline, versions[i]!) : await h.start(pipeline, s.csv),
    );
  }
  await Promise.all(
    scenarios.map(async ([name, s], i) => {
      const runId = runIds[i]!;
      await s.act?.(h, runId);
      const done = await h.finished(runId, STEP_TIMEOUT_MS);
      const got = [done.status, done.stopReason].filter(Boolean).join(':');
      if (got !== s.expect)
        throw new Error(`${name}: expected ${s.expect}, the run ended ${got}: ${done.reason}`);
      console.log(`${name}: ${got}`);
      // The run document is final before the orchestration's last episode is: wait for that too.
      await orchestrationDone(h, runId);
    }),
  );
  const loaded = await loadInstances(dataDir);
  const find = (id: string) => {
    const inst = loaded.find((l) => l.record.instanceId === id);
    if (!inst || inst.status !== 'Completed') throw new Error(`${id}: ${inst?.record.status ?? 'missing'}`);
    return recorded(inst);
  };
  for (const [i, [name, s]] of scenarios.entries()) {
    const run = find(runIds[i]!);
    const revision = (run.input as { revision?: number }).revision ?? 1;
    await write('pipeline-golden', `r${revision}-${s.asRevision1 ?? name}`, run);
    if (s.monitor) await write('monitor-golden', s.monitor, find(trainingMonitorInstanceId(runIds[i]!)));
  }
}

async function captureMonitors(h: PipelineHarness, dataDir: string): Promise<void> {
  const results = await Promise.all(Object.values(monitorScenarios).map((run) => run(h, dataDir)));
  for (const runs of results) {
    for (const [name, run] of Object.entries(runs)) await write('monitor-golden', name, run);
  }
}

async function main(): Promise<void> {
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  if (only !== undefined && only !== 'pipeline' && only !== 'monitor')
    throw new Error('--only pipeline|monitor');
  const dataDir = mkdtempSync(path.join(tmpdir(), 'pipeline-golden-'));
  // Many jobs train at once here: a busy machine must not pass for a dead worker (the harness's 5 s).
  // Fixed ports: the revision-1 run is written straight into the Cosmos emulator.
  const ports = await freePorts();
  const h = await startPipelineHarness({ dataDir, ports, env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } });
  try {
    // The monitors first, alone: the continue-as-new snapshot reads the task hub every few ms.
    if (only !== 'pipeline') await captureMonitors(h, dataDir);
    if (only !== 'monitor') await capturePipelines(h, ports, dataDir);
  } finally {
    await h.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
