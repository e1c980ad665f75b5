import { PipelineStore } from '../../../lib/pipelines/store';
import { RunStore } from '../../../lib/runs/store';
import { applyStepUpdate } from '../../../lib/runs/document';
import type { CosmosStore } from '../../../lib/storage';
import { startCosmosStore } from '../../support/emulators';
import { sampleRunDocument } from '../../support/runSample';

const run = (id: string, pipeline = 'wages', at = '2026-01-01T00:00:00.000Z') =>
  sampleRunDocument(id, pipeline, at, 'ana');

describe('run and pipeline stores on the Cosmos DB emulator', () => {
  let emulator: { cosmos: CosmosStore; stop(): Promise<void> };
  let cosmos: CosmosStore;
  let runs: RunStore;
  let pipelines: PipelineStore<{ description: string }>;

  beforeAll(async () => {
    emulator = await startCosmosStore();
    cosmos = emulator.cosmos;
    runs = new RunStore(cosmos);
    pipelines = new PipelineStore(cosmos.container('pipelines'));
  });
  afterAll(async () => {
    await emulator?.stop();
  });

  it('creates a run once: a retried create returns the stored document unchanged', async () => {
    const first = await runs.create(run('r-create'));
    const again = await runs.create({ ...run('r-create'), status: 'running' });
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.run.status).toBe('queued');
  });

  it('applies concurrent step updates without losing one (ETag retries)', async () => {
    await runs.create(run('r-concurrent'));
    const steps = ['ingest', 'validate', 'train', 'evaluate', 'approve', 'deploy'] as const;
    await Promise.all(
      steps.map((step, i) =>
        runs.update('wages', 'r-concurrent', (r) =>
          applyStepUpdate(r, { step, status: 'succeeded', at: `2026-01-01T00:00:0${i}.000Z` }),
        ),
      ),
    );
    const stored = await runs.get('wages', 'r-concurrent');
    expect(stored?.steps.map((s) => s.status)).toEqual(steps.map(() => 'succeeded'));
  });

  it('finds a run by id alone and lists by pipeline and status, newest first', async () => {
    await runs.create(run('r-old', 'churn', '2026-01-01T00:00:00.000Z'));
    await runs.create(run('r-new', 'churn', '2026-01-02T00:00:00.000Z'));
    await runs.update('churn', 'r-old', (r) => ({ ...r, status: 'succeeded' }));
    expect((await runs.find('r-new'))?.pipeline).toBe('churn');
    expect(await runs.find('no-such-run')).toBeUndefined();
    expect((await runs.list({ pipeline: 'churn' })).map((r) => r.id)).toEqual(['r-new', 'r-old']);
    expect((await runs.list({ pipeline: 'churn', status: 'succeeded' })).map((r) => r.id)).toEqual(['r-old']);
  });

  it('refuses to update a run that does not exist, naming it', async () => {
    await expect(runs.update('wages', 'missing', (r) => r)).rejects.toThrow(
      /run missing of pipeline wages not found/,
    );
  });

  it('gives concurrent pipeline PUTs distinct versions, in order', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const stored = await Promise.all(
      Array.from({ length: 5 }, (_, i) => pipelines.put('wages', { description: `v${i}` }, 'ana', now)),
    );
    expect(stored.map((s) => s.version).sort()).toEqual([1, 2, 3, 4, 5]);
    expect((await pipelines.get('wages'))?.version).toBe(5);
    expect((await pipelines.get('wages', 2))?.definition.description).toBe(
      stored.find((s) => s.version === 2)?.definition.description,
    );
    expect(await pipelines.get('wages', 9)).toBeUndefined();
    expect((await pipelines.versions('wages')).map((v) => v.version)).toEqual([1, 2, 3, 4, 5]);
    await pipelines.put('churn', { description: 'x' }, 'bo', now);
    expect((await pipelines.list()).map((p) => [p.name, p.version])).toEqual([
      ['churn', 1],
      ['wages', 5],
    ]);
  });
});
