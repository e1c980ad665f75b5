import { startCosmosEmulator, type CosmosEmulatorHandle } from '../../../devhost/services/cosmos';
import type { PipelineRunInput } from '../../../lib/contracts/pipeline';
import type { PipelineDefinition } from '../../../lib/pipelines/definition';
import { scheduleSchema } from '../../../lib/pipelines/schedule';
import { runSchedules, type SchedulerDeps } from '../../../lib/pipelines/scheduler';
import { PipelineStore } from '../../../lib/pipelines/store';
import { RunStore } from '../../../lib/runs/store';
import { ArtifactStore, type CosmosStore } from '../../../lib/storage';
import { memoryLog } from '../../devhost/servicesLog';
import { cosmosStoreOn, startAzuriteBlob, type BlobEmulator } from '../../support/emulators';

describe('scheduled retraining on the emulators', () => {
  let emulator: CosmosEmulatorHandle;
  let azurite: BlobEmulator;
  let cosmos: CosmosStore;
  let deps: SchedulerDeps;
  let started: PipelineRunInput[];
  let pipelines: PipelineStore<PipelineDefinition>;
  let runs: RunStore;
  let artifacts: ArtifactStore;

  const define = (name: string, schedule: Record<string, unknown>) =>
    pipelines.put(
      name,
      { name, schedule: scheduleSchema.parse(schedule) } as unknown as PipelineDefinition,
      'test',
      new Date('2026-03-01T00:00:00Z'),
    );

  beforeAll(async () => {
    [emulator, azurite] = await Promise.all([
      startCosmosEmulator({ location: null, log: memoryLog() }),
      startAzuriteBlob(),
    ]);
    cosmos = cosmosStoreOn(emulator);
    await cosmos.ensure();
    artifacts = ArtifactStore.fromConnectionString(azurite.connectionString);
    await artifacts.ensureContainers();
    pipelines = new PipelineStore(cosmos.container('pipelines'));
    runs = new RunStore(cosmos);
    started = [];
    deps = {
      runs,
      pipelines,
      artifacts,
      cosmos,
      start: async (_id, input) => {
        started.push(input);
      },
      log: () => undefined,
    };
    await artifacts.put({ container: 'datasets', path: 'sched/a.csv' }, 'x,y\n1,2\n');
    await artifacts.put({ container: 'datasets', path: 'sched/b.csv' }, 'x,y\n3,4\n');
  }, 120_000);
  afterAll(async () => {
    cosmos?.client.dispose();
    await Promise.all([emulator?.stop(), azurite?.stop()]);
  });

  it('two overlapping firings for one slot start exactly one run, with the slot-derived id', async () => {
    await define('hourly', { cron: '0 0 * * * *', source: { blob: 'datasets/sched/a.csv' } });
    const now = new Date('2026-03-01T10:00:20Z');
    const [a, b] = await Promise.all([runSchedules(deps, now), runSchedules(deps, now)]);
    const mine = started.filter((s) => s.pipeline === 'hourly');
    expect(mine).toHaveLength(1);
    expect(mine[0]?.runId).toBe('sched-hourly-20260301T100000Z');
    expect([...a, ...b].filter((r) => r.pipeline === 'hourly' && r.started)).toHaveLength(1);
    const run = await runs.get('hourly', 'sched-hourly-20260301T100000Z');
    expect(run?.trigger).toEqual({ kind: 'timer', by: 'schedule', scheduleSlot: '2026-03-01T10:00:00.000Z' });
    // A later tick in the same hour finds nothing due.
    await runSchedules(deps, new Date('2026-03-01T10:30:00Z'));
    expect(started.filter((s) => s.pipeline === 'hourly')).toHaveLength(1);
  });

  it('skips a slot while a run of the pipeline is still active, and records why', async () => {
    const slots = await runSchedules(deps, new Date('2026-03-01T11:00:05Z'));
    const skipped = slots.find((r) => r.pipeline === 'hourly');
    expect(skipped).toMatchObject({ started: false, reason: 'active_run' });
    expect(started.filter((s) => s.pipeline === 'hourly')).toHaveLength(1);
  });

  it('skips when the source data is unchanged since the last successful run', async () => {
    const first = 'sched-hourly-20260301T100000Z';
    const sha = (await artifacts.properties({ container: 'datasets', path: 'sched/a.csv' }))!.metadata.sha256;
    await runs.update('hourly', first, (r) => ({
      ...r,
      status: 'succeeded',
      steps: r.steps.map((s) =>
        s.name === 'ingest' ? { ...s, status: 'succeeded', outputs: { sha256: sha } } : s,
      ),
    }));
    const slots = await runSchedules(deps, new Date('2026-03-01T12:00:05Z'));
    expect(slots.find((r) => r.pipeline === 'hourly')).toMatchObject({
      started: false,
      reason: 'data_unchanged',
    });
  });

  it('stops at the window limit and records a missing source', async () => {
    await define('burst', {
      cron: '0 * * * * *',
      source: { blob: 'datasets/sched/b.csv' },
      maxRunsPerWindow: 1,
      skipIfDataUnchanged: false,
    });
    await define('ghost', { cron: '0 * * * * *', source: { blob: 'datasets/sched/none.csv' } });
    await runSchedules(deps, new Date('2026-03-02T00:00:05Z'));
    const burstRun = started.filter((s) => s.pipeline === 'burst');
    expect(burstRun).toHaveLength(1);
    await runs.update('burst', burstRun[0]!.runId, (r) => ({ ...r, status: 'succeeded' }));
    const next = await runSchedules(deps, new Date('2026-03-02T00:01:05Z'));
    expect(next.find((r) => r.pipeline === 'burst')).toMatchObject({
      started: false,
      reason: 'window_limit',
    });
    expect(next.find((r) => r.pipeline === 'ghost')).toMatchObject({
      started: false,
      reason: 'source_missing',
    });
  });

  it('decides from the latest slot only, however many older slot records the pipeline has', async () => {
    await define('daily', {
      cron: '0 0 6 * * *',
      source: { blob: 'datasets/sched/a.csv' },
      catchUpMinutes: 60,
    });
    // Weeks of older decisions (Feb 2 to Mar 12), written newest first: storage order is not time order.
    for (let d = 39; d >= 1; d--) {
      const slot = new Date(Date.UTC(2026, 1, 1 + d, 6)).toISOString();
      await cosmos.create('schedules', {
        id: `old-daily-${d}`,
        pipeline: 'daily',
        slot,
        decidedAt: slot,
        started: false,
        reason: 'data_unchanged',
      });
    }
    const latest = new Date(Date.UTC(2026, 2, 13, 6)).toISOString(); // 2026-03-13, after all of them
    await cosmos.create('schedules', {
      id: 'old-daily-latest',
      pipeline: 'daily',
      slot: latest,
      decidedAt: latest,
      started: false,
      reason: 'data_unchanged',
    });
    // The 2026-03-13 slot is decided already: nothing is due within it.
    expect(
      (await runSchedules(deps, new Date('2026-03-13T06:20:00Z'))).find((r) => r.pipeline === 'daily'),
    ).toBeUndefined();
    // The next day's slot is new, and decided once.
    const next = await runSchedules(deps, new Date('2026-03-14T06:00:30Z'));
    expect(next.find((r) => r.pipeline === 'daily')).toMatchObject({
      slot: '2026-03-14T06:00:00.000Z',
      started: true,
    });
  });
});
