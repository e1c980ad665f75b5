/**
 * Operating pipelines through devhost over HTTP: cancelling a run while its job trains, and the
 * scheduler starting exactly one run per schedule slot however often the timer fires. Needs `dist/`.
 */
import { readFileSync } from 'node:fs';
import type { PipelineHarness } from './harness';
import { WAGES_CSV, slowTraining, startPipelineHarness, testPipeline } from './harness';

jest.setTimeout(240_000);

describe('operating pipelines through devhost', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startPipelineHarness();
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('cancel during training stops the job, the orchestration and its monitor; nothing deploys', async () => {
    await h.put(testPipeline('e2e-cancel', { training: slowTraining(600) }));
    const id = await h.start('e2e-cancel');
    const training = await h.waitFor(id, 'the training job', (r) => {
      const train = r.steps.find((s) => s.name === 'train');
      return train?.status === 'running' && typeof train.outputs?.jobId === 'string';
    });
    const jobId = training.steps.find((s) => s.name === 'train')!.outputs!.jobId as string;
    const jobStatus = async () => {
      const blob = h.blobs.getContainerClient('jobs').getBlobClient(`${jobId}/status.json`);
      return JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as { state: string };
    };
    await h.until('the worker to run', async () =>
      (await jobStatus()).state === 'running' ? true : undefined,
    );
    await h.until('the monitor', async () =>
      (await h.durable(`${id}:train`)).runtimeStatus === 'Running' ? true : undefined,
    );

    const res = await h.api('POST', `/api/runs/${id}/cancel`, undefined, {
      'x-ms-client-principal-name': 'ops@example.com',
    });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { status: string; terminated: string[]; trainingJobCanceled?: string };
    expect(body.status).toBe('canceled');
    expect(body.terminated).toEqual(expect.arrayContaining([id, `${id}:train`]));
    expect(body.trainingJobCanceled).toBe(jobId);

    const run = await h.run(id);
    expect(run).toMatchObject({
      status: 'canceled',
      stopReason: 'canceled',
      reason: 'canceled by ops@example.com',
    });
    expect(run.steps.find((s) => s.name === 'train')?.status).toBe('canceled');
    expect(run.steps.filter((s) => s.status === 'succeeded').map((s) => s.name)).toEqual([
      'ingest',
      'validate',
    ]);
    expect((await h.durable(id)).runtimeStatus).toBe('Terminated');
    expect((await h.durable(`${id}:train`)).runtimeStatus).toBe('Terminated');
    await h.until(
      'the job to stop',
      async () => ((await jobStatus()).state === 'canceled' ? true : undefined),
      30_000,
    );
    expect(await h.model('e2e-cancel')).toBeNull();

    const again = await h.api('POST', `/api/runs/${id}/cancel`);
    expect(again.status).toBe(409);
  });

  it('two timer firings for one schedule slot start one run', async () => {
    await h.blobs.getContainerClient('datasets').createIfNotExists();
    const source = h.blobs.getContainerClient('datasets').getBlockBlobClient('scheduled/wages.csv');
    const csv = readFileSync(WAGES_CSV);
    await source.upload(csv, csv.length);
    await h.put(
      testPipeline('e2e-sched', {
        schedule: { cron: '0 * * * * *', source: { blob: 'datasets/scheduled/wages.csv' } },
      }),
    );
    const fire = () => h.api('POST', '/admin/functions/scheduleRetraining', { input: '' });
    const [a, b] = await Promise.all([fire(), fire()]);
    expect([a.status, b.status]).toEqual([202, 202]);

    const runs = async () =>
      (await (await h.api('GET', '/api/runs?pipeline=e2e-sched')).json()) as {
        id: string;
        trigger: { kind: string; scheduleSlot?: string };
      }[];
    const [first] = await h.until('the scheduled run', async () => {
      const r = await runs();
      return r.length > 0 ? r : undefined;
    });
    expect(first!.trigger.kind).toBe('timer');
    const slot = new Date(first!.trigger.scheduleSlot!);
    expect(slot.getUTCSeconds()).toBe(0);
    expect(first!.id).toBe(
      `sched-e2e-sched-${slot
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z')}`,
    );

    // Later firings (the same slot, or the next one while this run is active) start nothing new.
    await (await fire()).text();
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await runs()).map((r) => r.id)).toEqual([first!.id]);
    const run = await h.run(first!.id);
    expect(run.source).toMatchObject({ kind: 'blob' });

    await h.api('POST', `/api/runs/${first!.id}/cancel`);
  });
});
