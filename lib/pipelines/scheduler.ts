import { createHash } from 'node:crypto';
import type { StartOrchestration } from '../runs/launch';
import { launchRun } from '../runs/launch';
import { terminalRunStatuses } from '../runs/document';
import type { RunStore } from '../runs/store';
import type { ArtifactStore, CosmosStore } from '../storage';
import type { PipelineDefinition } from './definition';
import type { PipelineStore, ScheduleState } from './store';
import type { Schedule, SlotDecision } from './schedule';
import { decideSlot, dueSlot, scheduleRunId } from './schedule';

/** One considered schedule slot (container `schedules`, partition `/pipeline`); created once per slot. */
export interface SlotRecord {
  id: string;
  pipeline: string;
  slot: string;
  decidedAt: string;
  started: boolean;
  runId?: string;
  reason?: string;
  detail?: string;
  sourceSha256?: string;
}

export interface SchedulerDeps {
  runs: RunStore;
  pipelines: PipelineStore<PipelineDefinition>;
  artifacts: ArtifactStore;
  cosmos: Pick<CosmosStore, 'create' | 'query'>;
  start: StartOrchestration;
  log: (message: string) => void;
}

/** SHA-256 of the schedule's source blob: from the digest the store recorded, else by reading it. */
async function sourceDigest(
  deps: SchedulerDeps,
  blob: string,
): Promise<{ uri: string; sha256: string } | undefined> {
  const [container, ...rest] = blob.split('/');
  const location = { container: container!, path: rest.join('/') };
  const props = await deps.artifacts.properties(location);
  if (!props) return undefined;
  const uri = deps.artifacts.uri(location);
  if (props.metadata.sha256) return { uri, sha256: props.metadata.sha256 };
  const hash = createHash('sha256');
  const { stream } = await deps.artifacts.getStream(location);
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return { uri, sha256: hash.digest('hex') };
}

/**
 * Evaluates every pipeline's schedule at `now` and starts due runs. Each slot gets a deterministic
 * run id and a slot record created with a conditional create, so two timer firings (or two hosts)
 * never start the same slot twice; every skipped slot records why.
 */
export async function runSchedules(deps: SchedulerDeps, now: Date): Promise<SlotRecord[]> {
  const decided: SlotRecord[] = [];
  const all = await deps.pipelines.list();
  const states = all.some((p) => p.definition.schedule) ? await deps.pipelines.scheduleStates() : new Map();
  for (const p of all) {
    const schedule = p.definition.schedule;
    if (!schedule) continue;
    const state = states.get(p.name);
    try {
      const paused = state?.paused ? state : undefined;
      const record = await considerPipeline(deps, p.name, p.version, schedule, now, paused);
      if (record) decided.push(record);
    } catch (err) {
      deps.log(`schedule of ${p.name}: ${(err as Error).message}`);
    }
  }
  return decided;
}

async function considerPipeline(
  deps: SchedulerDeps,
  pipeline: string,
  version: number,
  schedule: Schedule,
  now: Date,
  paused: ScheduleState | undefined,
): Promise<SlotRecord | undefined> {
  // Every minute, per pipeline: only the latest slot decided (one document, from the index), not
  // the slot history, which grows by one record per slot for as long as the schedule runs.
  const [latest] = await deps.cosmos.query<{ slot: string }>(
    'schedules',
    {
      query: 'SELECT TOP 1 c.slot FROM c WHERE c.pipeline = @p ORDER BY c.slot DESC',
      parameters: [{ name: '@p', value: pipeline }],
    },
    pipeline,
  );
  const slot = dueSlot(schedule, now, latest?.slot);
  if (!slot) return undefined;
  const runId = scheduleRunId(pipeline, slot);
  if (paused) {
    // A paused slot is decided (and recorded) as skipped, so resuming never starts it late.
    const decision = decideSlot({ schedule, paused, activeRunIds: [], scheduledRunsInWindow: 0 });
    return recordSkip(deps, runId, pipeline, slot, now, decision);
  }

  const runs = await deps.runs.list({ pipeline, limit: 500 });
  const active = runs.filter((r) => !terminalRunStatuses.has(r.status)).map((r) => r.id);
  const lastSuccess = runs.find((r) => r.status === 'succeeded');
  const lastDigest = lastSuccess?.steps.find((s) => s.name === 'ingest')?.outputs?.sha256;
  // Slots are stored as toISOString() text, whose order is time order.
  const windowStart = new Date(now.getTime() - schedule.windowHours * 3_600_000).toISOString();
  const inWindow = (
    await deps.cosmos.query<{ slot: string }>(
      'schedules',
      {
        query: 'SELECT c.slot FROM c WHERE c.pipeline = @p AND c.started = true AND c.slot >= @start',
        parameters: [
          { name: '@p', value: pipeline },
          { name: '@start', value: windowStart },
        ],
      },
      pipeline,
    )
  ).length;
  const source = await sourceDigest(deps, schedule.source.blob);

  const decision: SlotDecision | { start: false; reason: 'source_missing'; detail: string } = source
    ? decideSlot({
        schedule,
        activeRunIds: active,
        scheduledRunsInWindow: inWindow,
        currentDigest: source.sha256,
        ...(typeof lastDigest === 'string' ? { lastSuccessfulDigest: lastDigest } : {}),
      })
    : {
        start: false,
        reason: 'source_missing',
        detail: `source blob ${schedule.source.blob} does not exist`,
      };
  const record: SlotRecord = {
    id: runId,
    pipeline,
    slot: slot.toISOString(),
    decidedAt: now.toISOString(),
    started: decision.start,
    ...(source ? { sourceSha256: source.sha256 } : {}),
    ...(decision.start ? { runId } : { reason: decision.reason, detail: decision.detail }),
  };

  const claimed = await deps.cosmos.create('schedules', record);
  if (!claimed.ok) return undefined; // another firing already decided this slot
  if (!decision.start || !source) {
    deps.log(`schedule of ${pipeline}: slot ${record.slot} skipped: ${record.reason}: ${record.detail}`);
    return record;
  }
  await launchRun(deps, deps.start, {
    runId,
    pipeline,
    pipelineVersion: version,
    source: { kind: 'blob', uri: source.uri },
    trigger: { kind: 'timer', by: 'schedule', scheduleSlot: record.slot },
    now,
  });
  deps.log(`schedule of ${pipeline}: slot ${record.slot} started run ${runId}`);
  return record;
}

async function recordSkip(
  deps: SchedulerDeps,
  runId: string,
  pipeline: string,
  slot: Date,
  now: Date,
  decision: SlotDecision,
): Promise<SlotRecord | undefined> {
  if (decision.start) throw new Error('recordSkip called for a slot that starts');
  const record: SlotRecord = {
    id: runId,
    pipeline,
    slot: slot.toISOString(),
    decidedAt: now.toISOString(),
    started: false,
    reason: decision.reason,
    detail: decision.detail,
  };
  const claimed = await deps.cosmos.create('schedules', record);
  if (!claimed.ok) return undefined;
  deps.log(`schedule of ${pipeline}: slot ${record.slot} skipped: ${record.reason}: ${record.detail}`);
  return record;
}
