/**
 * `npm run bench:pipeline`: wall time of the demo pipeline (examples/pipelines/wages.json on the
 * CPS 1985 data) on devhost, with the approval answered at once through the real page, broken into
 * time inside activities, the training job, the reviewer, and orchestration overhead (the rest).
 *
 * Activity time comes from the Durable history of the run and its sub-orchestrations
 * (`showHistory=true`: each TaskCompleted carries the ScheduledTime of its TaskScheduled). The
 * training job runs in its own process between two activities; its time comes from the job's
 * status file. The reviewer's share runs from the notifyReviewers activity's end to the decision
 * event. Everything else (episodes, replay, persistence, queueing, timer and poll latency) is
 * overhead. Goal: overhead under 10 % of the wall time and under 1 s.
 *
 * Bookkeeping round trips: activity calls of the run's own orchestration that only write the run
 * document (beginRun, recordRunStep, finishRun) against all its activity calls, counted from its
 * history. The last run is started as revision 2 (the frozen pre-ledger body, which runs that were
 * in flight at the upgrade still take): its run document is created in the Cosmos emulator and its
 * orchestration started through the Durable HTTP API, as startRun would have before revision 3, so
 * the two bodies are measured side by side on the same data.
 *
 * Options: --runs N (default 4; the first is reported as cold and left out of the summary).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startLocalSluice, repoRoot, type LocalSluice } from '../../cli/localSluice';
import { decideThroughPage, localBlobService, localOutbox, waitForMessage } from '../../cli/reviewer';
import { COSMOS_EMULATOR_KEY, LOOPBACK } from '../../devhost/services/wellKnown';
import {
  approvalGateOrchestration,
  runChildInstanceIds,
  trainingMonitorOrchestration,
} from '../../lib/contracts/orchestrations';
import {
  BOOKKEEPING_ACTIVITIES,
  PIPELINE_ORCHESTRATOR,
  PIPELINE_REVISION,
  type PipelineRunInput,
} from '../../lib/contracts/pipeline';
import type { RunSource } from '../../lib/contracts/runDocument';
import { newRunDocument } from '../../lib/runs/document';
import { RunStore } from '../../lib/runs/store';
import { CosmosStore, createCosmosClient } from '../../lib/storage';

interface HistoryEvent {
  EventType: string;
  Timestamp: string;
  ScheduledTime?: string;
  FunctionName?: string;
  Name?: string;
}

interface Interval {
  start: number;
  end: number;
}

/** Total length of the union of intervals. */
function unionMs(intervals: Interval[]): number {
  const sorted = intervals.filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  let total = 0;
  let cur: Interval | undefined;
  for (const i of sorted) {
    if (!cur || i.start > cur.end) {
      if (cur) total += cur.end - cur.start;
      cur = { ...i };
    } else cur.end = Math.max(cur.end, i.end);
  }
  if (cur) total += cur.end - cur.start;
  return total;
}

/** Length of `a` not covered by any of `cover`. */
function uncoveredMs(a: Interval, cover: Interval[]): number {
  const clipped = cover
    .map((c) => ({ start: Math.max(a.start, c.start), end: Math.min(a.end, c.end) }))
    .filter((c) => c.end > c.start);
  return a.end - a.start - unionMs(clipped);
}

async function history(url: string, instanceId: string): Promise<HistoryEvent[]> {
  const res = await fetch(
    `${url}/runtime/webhooks/durabletask/instances/${encodeURIComponent(instanceId)}?showHistory=true&showInput=false`,
  );
  if (res.status !== 200) return [];
  return ((await res.json()) as { historyEvents?: HistoryEvent[] }).historyEvents ?? [];
}

interface RunFigures {
  runId: string;
  wallMs: number;
  activityMs: number;
  activityCount: number;
  trainingJobMs: number;
  reviewerMs: number;
  overheadMs: number;
  pollLatencyMs: number;
  functionMs: number;
  revision: number;
  /** Activity calls of the run's own orchestration, and those that only wrote the run document. */
  calls: number;
  bookkeeping: number;
}

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;

interface Started {
  runId: string;
  source: RunSource;
  revision: number;
}

/** Starts a run as a user does: the CSV uploaded through the API (the current revision). */
async function startThroughApi(host: LocalSluice, pipeline: string, csv: Buffer): Promise<Started> {
  const res = await fetch(`${host.url}/api/pipelines/${pipeline}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'text/csv' },
    body: csv,
  });
  const started = (await res.json()) as { runId: string; source: RunSource };
  if (res.status !== 202) throw new Error(`start answered ${res.status}: ${JSON.stringify(started)}`);
  return { ...started, revision: PIPELINE_REVISION };
}

/**
 * Starts a run as revision 2 on an already uploaded source: the run document written to Cosmos and
 * the orchestration started through the Durable HTTP API, with the input startRun used to send.
 */
async function startAsRevision2(
  host: LocalSluice,
  runs: RunStore,
  pipeline: string,
  source: RunSource,
): Promise<Started> {
  const runId = `${pipeline}-revision2`;
  const at = new Date().toISOString();
  await runs.create(
    newRunDocument({
      id: runId,
      pipeline,
      pipelineVersion: 1,
      instanceId: runId,
      trigger: { kind: 'cli', by: 'bench' },
      source,
      at,
    }),
  );
  const input: PipelineRunInput = {
    runId,
    pipeline,
    pipelineVersion: 1,
    source,
    requestedBy: 'bench',
    revision: 2,
  };
  const res = await fetch(
    `${host.url}/runtime/webhooks/durabletask/orchestrators/${PIPELINE_ORCHESTRATOR}/${encodeURIComponent(runId)}`,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) },
  );
  if (res.status !== 202) throw new Error(`Durable start answered ${res.status}: ${await res.text()}`);
  return { runId, source, revision: 2 };
}

async function oneRun(
  host: LocalSluice,
  start: () => Promise<Started>,
): Promise<RunFigures & { source: RunSource }> {
  const logBefore = host.tail(200_000).length;
  const started = await start();
  const runId = started.runId;
  const outbox = localOutbox(started.source.uri);

  // The reviewer answers as soon as the request arrives.
  const message = await waitForMessage(outbox, runId, (m) => m.kind === 'request', {
    timeoutMs: 120_000,
    intervalMs: 20,
  });
  const decision = await decideThroughPage(message.link!, 'approve', 'bench: approved at once');
  if (decision.status !== 200) throw new Error(`decision answered ${decision.status}`);

  let run: { status: string; createdAt: string; steps: { name: string; outputs?: { jobId?: string } }[] };
  for (;;) {
    run = (await (await fetch(`${host.url}/api/runs/${runId}`)).json()) as typeof run;
    if (['succeeded', 'stopped', 'failed', 'canceled'].includes(run.status)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (run.status !== 'succeeded') throw new Error(`run ${runId} ended ${run.status}`);

  const parent = await history(host.url, runId);
  const children = runChildInstanceIds(runId);
  const all = [parent, ...(await Promise.all(children.map((c) => history(host.url, c))))];
  const called = parent.filter((e) => e.EventType === 'TaskCompleted' || e.EventType === 'TaskFailed');
  const t = (s: string) => Date.parse(s);
  const startedAt = t(parent.find((e) => e.EventType === 'ExecutionStarted')!.Timestamp);
  const endedAt = t(parent.find((e) => e.EventType === 'ExecutionCompleted')!.Timestamp);
  const activities: Interval[] = all
    .flat()
    .filter((e) => (e.EventType === 'TaskCompleted' || e.EventType === 'TaskFailed') && e.ScheduledTime)
    .map((e) => ({ start: t(e.ScheduledTime!), end: t(e.Timestamp) }));

  // The training job: from submitTraining's end to the job's own finish time.
  const submit = parent.find((e) => e.EventType === 'TaskCompleted' && e.FunctionName === 'submitTraining')!;
  const jobId = run.steps.find((s) => s.name === 'train')?.outputs?.jobId;
  const jobs = localBlobService(started.source.uri).getContainerClient('jobs');
  const status = JSON.parse(
    (await jobs.getBlobClient(`${jobId}/status.json`).downloadToBuffer()).toString('utf8'),
  ) as { finishedAt: string };
  const job: Interval = { start: t(submit.Timestamp), end: t(status.finishedAt) };
  // The monitor's first checkTraining after the job finished: what polling cost.
  const monitor = all[1 + children.indexOf(trainingMonitorOrchestration.instanceId(runId))] ?? [];
  const noticed = monitor
    .filter((e) => e.EventType === 'TaskCompleted' && e.FunctionName === 'checkTraining')
    .map((e) => t(e.Timestamp))
    .find((ts) => ts >= job.end);

  // The reviewer: from the request's notifyReviewers completing to the decision event.
  const gate = all[1 + children.indexOf(approvalGateOrchestration.instanceId(runId))] ?? [];
  const notified = gate.find((e) => e.EventType === 'TaskCompleted' && e.FunctionName === 'notifyReviewers');
  const decided = gate.find((e) => e.EventType === 'EventRaised');
  const reviewer: Interval = {
    start: notified ? t(notified.Timestamp) : 0,
    end: decided ? t(decided.Timestamp) : 0,
  };

  const wall: Interval = { start: startedAt, end: endedAt };
  const activityMs = unionMs(activities);
  const trainingJobMs = uncoveredMs(job, activities);
  const reviewerMs = uncoveredMs(reviewer, [...activities, job]);
  const work = unionMs([...activities, job, reviewer]);

  // What the functions themselves took (devhost's "Executed ... Duration=" lines for activities).
  const names = new Set(
    all
      .flat()
      .map((e) => e.FunctionName)
      .filter(Boolean),
  );
  let functionMs = 0;
  for (const m of host
    .tail(200_000)
    .slice(logBefore)
    .matchAll(/Executed 'Functions\.(\w+)' \(\w+, Id=[^,]+, Duration=(\d+)ms\)/g)) {
    if (names.has(m[1]!) && !['trainingPipeline', 'trainingMonitor', 'approvalGate'].includes(m[1]!))
      functionMs += Number(m[2]);
  }

  return {
    runId,
    wallMs: wall.end - wall.start,
    activityMs,
    activityCount: activities.length,
    trainingJobMs,
    reviewerMs,
    overheadMs: wall.end - wall.start - work,
    pollLatencyMs: noticed !== undefined ? noticed - job.end : 0,
    functionMs,
    revision: started.revision,
    calls: called.length,
    bookkeeping: called.filter((e) => BOOKKEEPING_ACTIVITIES.has(e.FunctionName ?? '')).length,
    source: started.source,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '4' } } });
  const runs = Math.max(2, Number(values.runs));
  const root = repoRoot();
  const definition = JSON.parse(
    await readFile(path.join(root, 'examples', 'pipelines', 'wages.json'), 'utf8'),
  ) as Record<string, unknown>;
  const csv = await readFile(path.join(root, 'data', 'cps-wages-1985.csv'));
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'sluice-bench-pipeline-'));
  const cosmosPort = await freePort();
  const host = await startLocalSluice({ dataDir, args: ['--cosmos-port', String(cosmosPort)] });
  const cosmos = new CosmosStore(
    createCosmosClient({
      COSMOS_ENDPOINT: `http://${LOOPBACK}:${cosmosPort}/`,
      COSMOS_KEY: COSMOS_EMULATOR_KEY,
      AZURE_CLIENT_ID: undefined,
    }),
  );
  try {
    console.log(
      `bench:pipeline on ${host.url}: ${runs} runs of examples/pipelines/wages.json (534 rows), approved at once`,
    );
    const figures: (RunFigures & { source: RunSource })[] = [];
    for (let i = 0; i < runs; i++) {
      // A new pipeline (and model) per run, so every run trains, evaluates and deploys a first model.
      const name = `bench-${i + 1}`;
      const put = await fetch(`${host.url}/api/pipelines/${name}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...definition, name, modelName: name }),
      });
      if (put.status !== 201) throw new Error(`PUT ${name} answered ${put.status}`);
      const f = await oneRun(host, () => startThroughApi(host, name, csv));
      figures.push(f);
      console.log(
        `  run ${i + 1}${i === 0 ? ' (cold)' : ''}: wall ${fmt(f.wallMs)} = activities ${fmt(f.activityMs)} (${f.activityCount}) + training job ${fmt(f.trainingJobMs)} + reviewer ${fmt(f.reviewerMs)} + overhead ${fmt(f.overheadMs)} (${pct(f.overheadMs, f.wallMs)}); poll latency ${fmt(f.pollLatencyMs)}; activity functions ran ${fmt(f.functionMs)}; revision ${f.revision}: ${f.bookkeeping} of ${f.calls} activity calls only wrote the run document`,
      );
    }

    // The same run through the frozen revision-2 body, for the bookkeeping figures side by side.
    const legacyName = `bench-${runs + 1}`;
    const putLegacy = await fetch(`${host.url}/api/pipelines/${legacyName}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...definition, name: legacyName, modelName: legacyName }),
    });
    if (putLegacy.status !== 201) throw new Error(`PUT ${legacyName} answered ${putLegacy.status}`);
    const legacy = await oneRun(host, () =>
      startAsRevision2(host, new RunStore(cosmos), legacyName, figures.at(-1)!.source),
    );
    console.log(
      `  run ${runs + 1} (revision 2): wall ${fmt(legacy.wallMs)} = activities ${fmt(legacy.activityMs)} (${legacy.activityCount}) + training job ${fmt(legacy.trainingJobMs)} + reviewer ${fmt(legacy.reviewerMs)} + overhead ${fmt(legacy.overheadMs)} (${pct(legacy.overheadMs, legacy.wallMs)}); revision 2: ${legacy.bookkeeping} of ${legacy.calls} activity calls only wrote the run document`,
    );
    // The median warm run by wall time, shown whole so its parts add up.
    const warm = figures.slice(1).sort((a, b) => a.wallMs - b.wallMs);
    const f = warm[Math.floor((warm.length - 1) / 2)]!;
    const wall = f.wallMs;
    const overhead = f.overheadMs;
    console.log(`\nmedian of ${warm.length} warm runs (${f.runId})`);
    console.log(`  wall time                                    ${fmt(wall)}`);
    console.log(
      `  inside activities (TaskScheduled→Completed)  ${fmt(f.activityMs)}   ${pct(f.activityMs, wall)}`,
    );
    console.log(`    of which the activity functions ran      ${fmt(f.functionMs)}`);
    console.log(
      `  training job (its own process)               ${fmt(f.trainingJobMs)}   ${pct(f.trainingJobMs, wall)}`,
    );
    console.log(
      `  reviewer (answered at once)                  ${fmt(f.reviewerMs)}   ${pct(f.reviewerMs, wall)}`,
    );
    console.log(`  orchestration overhead (everything else)     ${fmt(overhead)}   ${pct(overhead, wall)}`);
    console.log(`  training poll latency (job end → check done) ${fmt(f.pollLatencyMs)}`);
    const strict = overhead + f.activityMs - f.functionMs;
    console.log(
      `  stricter: overhead + the scheduling inside activity intervals (episode replay, persistence, queue) = ${fmt(strict)}   ${pct(strict, wall)}`,
    );
    const ok = overhead < 1000 && overhead / wall < 0.1;
    console.log(`goal (overhead < 10 % and < 1 s): ${ok ? 'met' : 'NOT met'}`);
    console.log(`\nbookkeeping round trips per run (the run's own orchestration, happy path to deploy)`);
    console.log(
      `  before (revision 2)   ${legacy.bookkeeping} of ${legacy.calls} activity calls only wrote the run document`,
    );
    console.log(
      `  after  (revision ${f.revision})   ${f.bookkeeping} of ${f.calls} activity calls only wrote the run document`,
    );
  } finally {
    cosmos.client.dispose();
    await host.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
