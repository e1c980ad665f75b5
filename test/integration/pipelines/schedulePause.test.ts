/**
 * Pause and resume of a pipeline's schedule through the API functions, on the emulators: the
 * timer honours the flag (a paused slot is recorded as skipped with reason `paused`, and is not
 * started late after resuming), GET /api/pipelines/{name} shows it, and bad requests say why.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { startCosmosEmulator, type CosmosEmulatorHandle } from '../../../devhost/services/cosmos';
import { getPipeline } from '../../../functions/getPipeline';
import { pauseSchedule } from '../../../functions/pauseSchedule';
import { resumeSchedule } from '../../../functions/resumeSchedule';
import { withProblems } from '../../../functions/support/http';
import type { PipelineRunInput } from '../../../lib/contracts/pipeline';
import type { PipelineDefinition } from '../../../lib/pipelines/definition';
import { scheduleSchema } from '../../../lib/pipelines/schedule';
import { runSchedules, type SchedulerDeps } from '../../../lib/pipelines/scheduler';
import { PipelineStore } from '../../../lib/pipelines/store';
import { RunStore } from '../../../lib/runs/store';
import { ArtifactStore, type CosmosStore } from '../../../lib/storage';
import { memoryLog } from '../../devhost/servicesLog';
import { cosmosStoreOn, startAzuriteBlob, type BlobEmulator } from '../../support/emulators';

jest.setTimeout(120_000);

describe('pausing and resuming a schedule', () => {
  let emulator: CosmosEmulatorHandle;
  let azurite: BlobEmulator;
  let cosmos: CosmosStore;
  let deps: SchedulerDeps;
  let started: PipelineRunInput[];
  let pipelines: PipelineStore<PipelineDefinition>;
  let clock = new Date('2026-04-01T09:59:00Z');

  const define = (name: string, schedule?: Record<string, unknown>) =>
    pipelines.put(
      name,
      {
        name,
        ...(schedule ? { schedule: scheduleSchema.parse(schedule) } : {}),
      } as unknown as PipelineDefinition,
      'test',
      new Date('2026-04-01T00:00:00Z'),
    );

  const call = (
    fn: typeof pauseSchedule,
    name: string,
    body: string | undefined,
    headers: Record<string, string> = { 'content-type': 'application/json' },
  ) =>
    withProblems(fn({ pipelines, now: () => clock }))(
      new HttpRequest({
        method: 'POST',
        url: `http://localhost:7071/api/pipelines/${name}/schedule/x`,
        params: { name },
        headers,
        ...(body === undefined ? {} : { body: { string: body } }),
      }),
      new InvocationContext({ functionName: 'test' }),
    );

  beforeAll(async () => {
    [emulator, azurite] = await Promise.all([
      startCosmosEmulator({ location: null, log: memoryLog() }),
      startAzuriteBlob(),
    ]);
    cosmos = cosmosStoreOn(emulator);
    await cosmos.ensure();
    const artifacts = ArtifactStore.fromConnectionString(azurite.connectionString);
    await artifacts.ensureContainers();
    pipelines = new PipelineStore(cosmos.container('pipelines'));
    started = [];
    deps = {
      runs: new RunStore(cosmos),
      pipelines,
      artifacts,
      cosmos,
      start: async (_id, input) => {
        started.push(input);
      },
      log: () => undefined,
    };
    await artifacts.put({ container: 'datasets', path: 'pause/a.csv' }, 'x,y\n1,2\n');
    await define('nightly', { cron: '0 0 * * * *', source: { blob: 'datasets/pause/a.csv' } });
    await define('manual');
  }, 120_000);
  afterAll(async () => {
    cosmos?.client.dispose();
    await Promise.all([emulator?.stop(), azurite?.stop()]);
  });

  it('a paused schedule records its slots as skipped, and starts again from the next slot after resume', async () => {
    const paused = await call(
      pauseSchedule,
      'nightly',
      JSON.stringify({ reason: 'source system migration' }),
    );
    expect(paused.status).toBe(200);
    expect(paused.jsonBody).toEqual({
      pipeline: 'nightly',
      paused: true,
      by: 'anonymous',
      at: '2026-04-01T09:59:00.000Z',
      reason: 'source system migration',
    });

    const [skip] = await runSchedules(deps, new Date('2026-04-01T10:00:10Z'));
    expect(skip).toMatchObject({ pipeline: 'nightly', started: false, reason: 'paused' });
    expect(skip?.detail).toContain('source system migration');
    expect(started).toHaveLength(0);

    // The API shows the state; the pipeline's versions are untouched by it.
    const got = await getPipeline({ pipelines })(
      new HttpRequest({
        method: 'GET',
        url: 'http://localhost:7071/api/pipelines/nightly',
        params: { name: 'nightly' },
      }),
    );
    expect(got.jsonBody).toMatchObject({
      version: 1,
      versions: [expect.objectContaining({ version: 1 })],
      scheduleState: { paused: true, by: 'anonymous', reason: 'source system migration' },
    });
    expect((await pipelines.list()).map((p) => [p.name, p.version])).toEqual([
      ['manual', 1],
      ['nightly', 1],
    ]);

    clock = new Date('2026-04-01T10:20:00Z');
    const resumed = await call(resumeSchedule, 'nightly', undefined);
    expect(resumed.jsonBody).toMatchObject({ paused: false, at: '2026-04-01T10:20:00.000Z', reason: '' });
    // The 10:00 slot was decided while paused: resuming does not start it late.
    expect(await runSchedules(deps, new Date('2026-04-01T10:20:30Z'))).toEqual([]);
    expect(started).toHaveLength(0);
    // The next slot starts a run.
    const [next] = await runSchedules(deps, new Date('2026-04-01T11:00:10Z'));
    expect(next).toMatchObject({
      pipeline: 'nightly',
      started: true,
      runId: 'sched-nightly-20260401T110000Z',
    });
    expect(started.map((s) => s.runId)).toEqual(['sched-nightly-20260401T110000Z']);

    // A new version after a pause still numbers from the versions alone.
    expect(
      (await define('nightly', { cron: '0 0 * * * *', source: { blob: 'datasets/pause/a.csv' } })).version,
    ).toBe(2);
  });

  it('refuses what cannot be paused, naming why', async () => {
    const none = await call(pauseSchedule, 'manual', '{}');
    expect(none).toMatchObject({ status: 409, jsonBody: { code: 'no_schedule', field: 'name' } });
    const missing = await call(pauseSchedule, 'nowhere', '{}');
    expect(missing).toMatchObject({ status: 404, jsonBody: { code: 'pipeline_not_found' } });
    const form = await call(pauseSchedule, 'nightly', 'reason=x', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(form).toMatchObject({ status: 415, jsonBody: { field: 'content-type' } });
    const by = await call(pauseSchedule, 'nightly', JSON.stringify({ by: 'mallory' }));
    expect(by).toMatchObject({ status: 400, jsonBody: { code: 'by_not_accepted', field: 'by' } });
    const extra = await call(pauseSchedule, 'nightly', JSON.stringify({ reason: 'x', until: 'monday' }));
    expect(extra.status).toBe(400);
    // Nothing of the refused calls was written: the schedule still runs.
    expect((await pipelines.scheduleState('nightly'))?.paused).toBe(false);
  });
});
