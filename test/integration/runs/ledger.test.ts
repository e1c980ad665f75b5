/**
 * The run ledger's activities on the Cosmos DB emulator: recordRunStep applies a list of step
 * updates in one write (and still the single update in-flight executions of revision 1/2 send),
 * finishRun applies the updates still pending before it ends the run, each runs twice and leaves
 * the same document; loadPipelineVersion returns the pinned definition typed, and the pipeline
 * store serves immutable versions from its bounded cache.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { finishRun } from '../../../activities/finishRun';
import { loadPipelineVersion } from '../../../activities/loadPipelineVersion';
import { recordRunStep } from '../../../activities/recordRunStep';
import { ApprovalSlots } from '../../../lib/approval/slot';
import { ApprovalStore } from '../../../lib/approval/store';
import {
  finishRunActivity,
  loadPipelineVersionActivity,
  recordRunStepActivity,
} from '../../../lib/contracts/pipeline';
import { pipelineDefinitionSchema, type PipelineDefinition } from '../../../lib/pipelines/definition';
import { PipelineStore } from '../../../lib/pipelines/store';
import { RunStore } from '../../../lib/runs/store';
import type { CosmosStore } from '../../../lib/storage';
import { startCosmosStore } from '../../support/emulators';
import { sampleRunDocument } from '../../support/runSample';

const at = (s: number) => new Date(Date.parse('2026-03-01T12:00:00.000Z') + s * 1000).toISOString();
const wages = pipelineDefinitionSchema.parse(
  JSON.parse(readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8')),
);

describe('run ledger activities on the Cosmos emulator', () => {
  let emulator: { cosmos: CosmosStore; stop(): Promise<void> };
  let cosmos: CosmosStore;
  let runs: RunStore;
  let approvals: ApprovalStore;
  let slots: ApprovalSlots;

  const newRun = async (id: string) => (await runs.create(sampleRunDocument(id, 'wages', at(0)))).run;

  beforeAll(async () => {
    emulator = await startCosmosStore();
    cosmos = emulator.cosmos;
    runs = new RunStore(cosmos);
    approvals = new ApprovalStore(cosmos.container('approvals'));
    slots = new ApprovalSlots(cosmos);
  });
  afterAll(async () => {
    await emulator?.stop();
  });

  it('recordRunStep applies a list of updates in order, each with its own time; twice is once', async () => {
    await newRun('r-list');
    const input = recordRunStepActivity.input.parse({
      runId: 'r-list',
      pipeline: 'wages',
      updates: [
        { step: 'ingest', status: 'running', at: at(1) },
        { step: 'ingest', status: 'succeeded', at: at(5), outputs: { rows: 534 } },
        { step: 'validate', status: 'running', at: at(6) },
      ],
      metrics: { quality: { rows: 534 } },
    });
    const record = recordRunStep({ runs });
    expect(await record(input)).toEqual({ status: 'running' });
    const once = await runs.get('wages', 'r-list');
    await record(input);
    const twice = await runs.get('wages', 'r-list');
    expect(twice).toEqual(once);
    expect(once!.steps.slice(0, 2)).toEqual([
      {
        name: 'ingest',
        status: 'succeeded',
        attempt: 0,
        startedAt: at(1),
        endedAt: at(5),
        outputs: { rows: 534 },
      },
      { name: 'validate', status: 'running', attempt: 0, startedAt: at(6) },
    ]);
    expect(once!.metrics).toEqual({ quality: { rows: 534 } });
    expect(once!.updatedAt).toBe(at(6));
  });

  it('recordRunStep still takes the single update older executions send', async () => {
    await newRun('r-single');
    const input = recordRunStepActivity.input.parse({
      runId: 'r-single',
      pipeline: 'wages',
      update: { step: 'ingest', status: 'running', at: at(1) },
    });
    await recordRunStep({ runs })(input);
    expect((await runs.get('wages', 'r-single'))!.steps[0]).toMatchObject({
      status: 'running',
      startedAt: at(1),
    });
    // Neither shape: refused by the contract before anything is written.
    expect(recordRunStepActivity.input.safeParse({ runId: 'r-single', pipeline: 'wages' }).success).toBe(
      false,
    );
  });

  it('finishRun applies the updates still pending, then ends the run; twice is once', async () => {
    await newRun('r-finish');
    await recordRunStep({ runs })(
      recordRunStepActivity.input.parse({
        runId: 'r-finish',
        pipeline: 'wages',
        updates: [{ step: 'ingest', status: 'running', at: at(1) }],
      }),
    );
    const input = finishRunActivity.input.parse({
      runId: 'r-finish',
      pipeline: 'wages',
      updates: [
        { step: 'ingest', status: 'failed', at: at(3), error: { code: 'step_failed', message: 'no' } },
      ],
      status: 'failed',
      stopReason: 'error',
      reason: 'ingest failed: no',
      at: at(3),
      reports: {},
    });
    const finish = finishRun({ runs, approvals, slots });
    expect(await finish(input)).toEqual({ status: 'failed' });
    const once = await runs.get('wages', 'r-finish');
    await finish(input);
    expect(await runs.get('wages', 'r-finish')).toEqual(once);
    expect(once!.steps.map((s) => [s.name, s.status])).toEqual([
      ['ingest', 'failed'],
      ['validate', 'skipped'],
      ['train', 'skipped'],
      ['evaluate', 'skipped'],
      ['approve', 'skipped'],
      ['deploy', 'skipped'],
    ]);
    expect(once!.steps[0]).toMatchObject({
      startedAt: at(1),
      endedAt: at(3),
      error: { code: 'step_failed' },
    });
    expect(once).toMatchObject({ status: 'failed', stopReason: 'error', endedAt: at(3) });
  });

  it('loadPipelineVersion returns the pinned definition typed; a missing version stops the run', async () => {
    const pipelines = new PipelineStore<PipelineDefinition>(cosmos.container('pipelines'));
    await pipelines.put('wages-typed', { ...wages, name: 'wages-typed' }, 'ana', new Date());
    const load = loadPipelineVersion({ pipelines });
    const def = loadPipelineVersionActivity.output.parse(await load({ pipeline: 'wages-typed', version: 1 }));
    expect(def.modelName).toBe('wages');
    expect(def.training).toEqual(wages.training);
    expect(def.approval.requiredApprovals).toBe(1);
    expect(def.evaluation.primaryMetric).toBe('r2');
    await expect(load({ pipeline: 'wages-typed', version: 2 })).rejects.toMatchObject({
      code: 'pipeline_not_found',
    });
  });

  it('loadPipelineVersion stops the run, not retried, on a stored version that no longer parses', async () => {
    // Regression: the output was parsed by the activity wrapper, whose ZodError counted as
    // transient, so a bad stored version spent every retry before the run failed.
    const pipelines = new PipelineStore<PipelineDefinition>(cosmos.container('pipelines'));
    const broken = { ...wages, name: 'wages-broken', training: { ...wages.training, algorithm: 'svm' } };
    await pipelines.put('wages-broken', broken as unknown as PipelineDefinition, 'ana', new Date());
    await expect(
      loadPipelineVersion({ pipelines })({ pipeline: 'wages-broken', version: 1 }),
    ).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'pipeline_invalid',
      message: expect.stringContaining('wages-broken version 1 no longer parses: training.algorithm'),
    });
  });

  it('loadPipelineVersion run twice returns the same definition and writes nothing; twice is once', async () => {
    const pipelines = new PipelineStore<PipelineDefinition>(cosmos.container('pipelines'));
    await pipelines.put('wages-twice', { ...wages, name: 'wages-twice' }, 'ana', new Date());
    const before = await pipelines.list();
    // Two processes (two stores, so no shared cache) each run it once, as a retried activity would.
    const first = await loadPipelineVersion({ pipelines })({ pipeline: 'wages-twice', version: 1 });
    const again = new PipelineStore<PipelineDefinition>(cosmos.container('pipelines'));
    const second = await loadPipelineVersion({ pipelines: again })({ pipeline: 'wages-twice', version: 1 });
    expect(second).toEqual(first);
    expect(loadPipelineVersionActivity.output.parse(second).modelName).toBe('wages');
    expect(await pipelines.list()).toEqual(before);
    expect((await again.get('wages-twice'))?.version).toBe(1);
  });

  it('the pipeline store serves immutable versions from a bounded cache, never "the latest"', async () => {
    const writer = new PipelineStore<{ description: string }>(cosmos.container('pipelines'));
    for (const d of ['one', 'two', 'three'])
      await writer.put('cached', { description: d }, 'ana', new Date());
    const store = new PipelineStore<{ description: string }>(cosmos.container('pipelines'), { cacheSize: 2 });
    expect((await store.get('cached', 1))?.definition.description).toBe('one');
    expect((await store.get('cached', 2))?.definition.description).toBe('two');
    // Gone from Cosmos (only a test can do that: versions are never deleted), still served.
    await cosmos.delete('pipelines', 'v000001', 'cached');
    await cosmos.delete('pipelines', 'v000002', 'cached');
    expect((await store.get('cached', 1))?.definition.description).toBe('one');
    // A copy: a caller that changes what it got does not change the cache.
    (await store.get('cached', 2))!.definition.description = 'changed';
    expect((await store.get('cached', 2))?.definition.description).toBe('two');
    // A third version evicts the least recently used (version 1, read before version 2).
    expect((await store.get('cached', 3))?.definition.description).toBe('three');
    expect(await store.get('cached', 1)).toBeUndefined();
    expect((await store.get('cached', 2))?.definition.description).toBe('two');
    // "The latest" always asks Cosmos: a new PUT is seen at once.
    await writer.put('cached', { description: 'four' }, 'ana', new Date());
    expect((await store.get('cached'))?.definition.description).toBe('four');
    // A fresh store (another process) reads Cosmos.
    expect(await new PipelineStore(cosmos.container('pipelines')).get('cached', 2)).toBeUndefined();
  });
});
