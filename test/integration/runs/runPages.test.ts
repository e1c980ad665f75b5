/**
 * RunStore.page on the Cosmos DB emulator: newest first, keyset paging that visits every run once
 * (runs that share an instant included), and the console's filters (pipeline, status, stop reason,
 * creation date).
 */
import { RunStore } from '../../../lib/runs/store';
import { newRunDocument } from '../../../lib/runs/document';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import type { CosmosStore } from '../../../lib/storage';
import { startCosmosStore } from '../../support/emulators';

describe('RunStore.page on the Cosmos DB emulator', () => {
  let emulator: { cosmos: CosmosStore; stop(): Promise<void> };
  let runs: RunStore;
  const all: RunDocument[] = [];

  beforeAll(async () => {
    emulator = await startCosmosStore();
    runs = new RunStore(emulator.cosmos);
    // 30 runs over two pipelines and three days; runs 10..14 share one instant.
    for (let i = 0; i < 30; i++) {
      const at = new Date(
        Date.UTC(2026, 0, 1 + Math.floor(i / 10), 0, i >= 10 && i < 15 ? 10 : i),
      ).toISOString();
      const doc = newRunDocument({
        id: `r-${String(i).padStart(2, '0')}`,
        pipeline: i % 3 === 0 ? 'churn' : 'wages',
        pipelineVersion: 1,
        instanceId: `r-${i}`,
        trigger: { kind: 'http', by: 'ana' },
        source: { kind: 'blob', uri: 'http://127.0.0.1/devstoreaccount1/datasets/a.csv' },
        at,
      });
      const ended: RunDocument =
        i % 4 === 0 ? { ...doc, status: 'stopped', stopReason: 'validation_failed', endedAt: at } : doc;
      await runs.create(ended);
      all.push(ended);
    }
  });
  afterAll(async () => {
    await emulator?.stop();
  });

  const newestFirst = (xs: RunDocument[]) =>
    [...xs]
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id))
      .map((r) => r.id);

  it('walks every run once, newest first, in pages of 4 (ties kept on one page)', async () => {
    const seen: string[] = [];
    let before: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const page = await runs.page(before ? { before } : {}, 4);
      seen.push(...page.runs.map((r) => r.id));
      if (!page.next) break;
      before = page.next;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(all.map((r) => r.id).sort());
    // Newest first by instant (the order inside a shared instant is by id, descending).
    expect(seen).toEqual(newestFirst(all));
  });

  it('filters by pipeline, status, stop reason and creation date; summaries carry no steps', async () => {
    const churn = await runs.page({ pipeline: 'churn' }, 50);
    expect(churn.runs.map((r) => r.id)).toEqual(newestFirst(all.filter((r) => r.pipeline === 'churn')));
    expect(churn.next).toBeUndefined();
    expect(churn.runs[0]).not.toHaveProperty('steps');
    const stopped = await runs.page({ status: 'stopped', stopReason: 'validation_failed' }, 50);
    expect(stopped.runs.map((r) => r.id)).toEqual(
      newestFirst(all.filter((r) => r.stopReason === 'validation_failed')),
    );
    const day2 = await runs.page({ from: '2026-01-02T00:00:00.000Z', to: '2026-01-03T00:00:00.000Z' }, 50);
    expect(day2.runs.map((r) => r.id)).toEqual(newestFirst(all.slice(10, 20)));
    expect((await runs.page({ pipeline: 'wages', status: 'succeeded' }, 50)).runs).toEqual([]);
  });
});
