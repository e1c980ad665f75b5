/**
 * devhost's linear query executor (devhost/services/cosmosQuery.ts) answers exactly as the
 * emulator's query library does: the same rows in the same order, the same continuation tokens,
 * the same errors, for the query shapes Sluice sends (lib/**: runs, registry, approvals, audit,
 * schedules, rollouts) and for the shapes the rewrite touches (IN iteration, JOIN, subqueries).
 * Then through the emulator and @azure/cosmos: the Runs page's keyset paging and the SDK's
 * continuation paging on the linear executor list every run once, in the scan's order.
 */
import { CosmosClient } from '@azure/cosmos';
import queryFactory from '@zeit/cosmosdb-query';
import libraryExecutor from '@zeit/cosmosdb-query/lib/executor';
import { startCosmosEmulator, type CosmosEmulatorHandle } from '../../devhost/services/cosmos';
import { installLinearQueries, linearCode } from '../../devhost/services/cosmosQuery';
import { RunStore, type RunSummary } from '../../lib/runs/store';
import { CosmosStore } from '../../lib/storage/cosmos';

type Params = { name: string; value: unknown }[];

/** What the library itself returns: its own generated code, through its own executor. */
function libraryExec(sql: string, docs: unknown[], opts: Record<string, unknown>): unknown {
  const { code } = queryFactory(sql);
  return libraryExecutor(docs as object[], { code, ...opts });
}

function linearExec(sql: string, docs: unknown[], opts: Record<string, unknown>): unknown {
  return queryFactory(sql).exec(docs as object[], opts);
}

/** A small collection with the awkward cases: missing fields, mixed types, ties, nested arrays. */
function documents(): Record<string, unknown>[] {
  const pipelines = ['churn', 'wages', 'fraud'];
  const statuses = ['succeeded', 'failed', 'running', 'waiting_for_approval', 'canceled'];
  const docs: Record<string, unknown>[] = [];
  for (let i = 0; i < 240; i++) {
    const doc: Record<string, unknown> = {
      id: `run-${String(i).padStart(4, '0')}`,
      pipeline: pipelines[i % 3],
      status: statuses[i % 5],
      // Ties: every fourth pair shares an instant; a few have no createdAt or a number.
      createdAt: new Date(Date.UTC(2026, 9, 1) + Math.floor(i / 2) * 60_000).toISOString(),
      steps: [
        { name: 'ingest', outputs: {} },
        { name: 'train', outputs: i % 4 === 0 ? { jobId: `job-${i}` } : {} },
      ],
      kind: i % 2 ? 'version' : 'aliasMove',
      modelName: i % 3 ? 'wages' : 'churn',
      seq: i,
      chain: 'c1',
      type: i % 3 ? 'entry' : 'decision',
      subject: i % 2 ? `runs/${i}` : `models/${i}`,
      tags: i % 5 ? ['a', `t${i % 3}`] : undefined,
      _rid: `rid${String(1000 + ((i * 37) % 240)).padStart(6, '0')}`,
      _ts: 1_700_000_000 + i,
    };
    if (i % 7 === 0) delete doc.createdAt;
    if (i % 11 === 0) doc.createdAt = i;
    if (i % 6 === 0) doc.stopReason = 'step_failed';
    if (i % 9 === 0) doc.mlflow = { status: 'synced', syncedAt: '2026-10-02T00:00:00.000Z', done: [] };
    if (i % 10 === 0)
      doc.mlflow = { status: 'failed', attempts: i % 4, nextAttemptAt: '2026-10-01T01:00:00Z' };
    docs.push(doc);
  }
  return docs;
}

const FIELDS = 'c.id, c.pipeline, c.status, c.stopReason, c.createdAt';
const CASES: { sql: string; parameters?: Params }[] = [
  {
    sql: `SELECT TOP @n ${FIELDS} FROM c ORDER BY c.createdAt DESC`,
    parameters: [{ name: '@n', value: 51 }],
  },
  {
    sql: `SELECT TOP @n ${FIELDS} FROM c WHERE c.pipeline = @pipeline AND c.status = @status AND c.createdAt < @before ORDER BY c.createdAt DESC`,
    parameters: [
      { name: '@n', value: 11 },
      { name: '@pipeline', value: 'churn' },
      { name: '@status', value: 'failed' },
      { name: '@before', value: '2026-10-01T01:30:00.000Z' },
    ],
  },
  {
    sql: `SELECT ${FIELDS} FROM c WHERE c.pipeline = @pipeline AND c.createdAt = @at`,
    parameters: [
      { name: '@pipeline', value: 'wages' },
      { name: '@at', value: '2026-10-01T00:02:00.000Z' },
    ],
  },
  { sql: 'SELECT * FROM c WHERE c.id = @id', parameters: [{ name: '@id', value: 'run-0042' }] },
  { sql: 'SELECT * FROM c' },
  { sql: 'SELECT VALUE COUNT(1) FROM c' },
  {
    sql: 'SELECT * FROM c WHERE ARRAY_CONTAINS(@statuses, c.status)',
    parameters: [{ name: '@statuses', value: ['running', 'waiting_for_approval'] }],
  },
  {
    sql: [
      'SELECT TOP @limit * FROM c WHERE',
      "(NOT IS_DEFINED(c.mlflow) OR c.mlflow.status = 'pending' OR (c.mlflow.status = 'failed' AND c.mlflow.attempts < @max))",
      'AND (NOT IS_DEFINED(c.mlflow.nextAttemptAt) OR c.mlflow.nextAttemptAt <= @now)',
      'ORDER BY c.createdAt',
    ].join(' '),
    parameters: [
      { name: '@max', value: 3 },
      { name: '@now', value: '2026-10-01T02:00:00Z' },
      { name: '@limit', value: 100 },
    ],
  },
  {
    sql: [
      'SELECT TOP @limit * FROM c WHERE',
      "c.mlflow.status = 'synced' AND c.mlflow.syncedAt >= @since",
      "AND NOT ARRAY_CONTAINS(c.mlflow.done, 'curves')",
      "AND EXISTS(SELECT VALUE s FROM s IN c.steps WHERE s.name = 'train' AND IS_DEFINED(s.outputs.jobId))",
      'ORDER BY c.createdAt',
    ].join(' '),
    parameters: [
      { name: '@since', value: '2026-10-01T00:00:00Z' },
      { name: '@limit', value: 25 },
    ],
  },
  {
    sql: 'SELECT * FROM c WHERE c.chain = @chain AND c.type = "entry" AND (c.subject = @subject OR STARTSWITH(c.subject, @under))',
    parameters: [
      { name: '@chain', value: 'c1' },
      { name: '@subject', value: 'runs/3' },
      { name: '@under', value: 'runs/1' },
    ],
  },
  {
    sql: 'SELECT * FROM c WHERE c.modelName = @name AND (c.kind = "version" OR c.kind = "aliasMove")',
    parameters: [{ name: '@name', value: 'wages' }],
  },
  { sql: 'SELECT TOP 5 * FROM c WHERE c.type = "decision" ORDER BY c.seq DESC' },
  { sql: 'SELECT c.id FROM c WHERE c.seq >= 10 ORDER BY c.seq' },
  { sql: 'SELECT c.id, t FROM c JOIN t IN c.tags WHERE t != "a"' },
  { sql: 'SELECT VALUE s.name FROM s IN c.steps' },
  { sql: 'SELECT c.id FROM c JOIN (SELECT VALUE s FROM s IN c.steps WHERE IS_DEFINED(s.outputs.jobId)) j' },
  { sql: 'SELECT VALUE c.steps[1].outputs FROM c' },
];

// The library's own exec, taken before anything in this process installed the linear one.
const libraryExecMethod = Object.getPrototypeOf(queryFactory('SELECT * FROM c')).exec as unknown;

beforeAll(() => {
  expect(installLinearQueries()).toBe(true);
  // Installed on the very copy of the library the emulator's collections run their queries with.
  expect(Object.getPrototypeOf(queryFactory('SELECT * FROM c')).exec).not.toBe(libraryExecMethod);
});

describe('the linear executor against the library executor', () => {
  const docs = documents();

  it.each(CASES)('$sql: same rows, same order', ({ sql, parameters }) => {
    const opts = { parameters: parameters ?? [] };
    const expected = libraryExec(sql, docs, opts);
    expect(linearExec(sql, docs, opts)).toEqual(expected);
    // And twice: the compiled function is cached with the query and keeps no state.
    expect(linearExec(sql, docs, opts)).toEqual(expected);
  });

  it.each(CASES.filter((c) => !/COUNT|FROM s IN/.test(c.sql)))(
    '$sql: same pages and continuation tokens',
    ({ sql, parameters }) => {
      let continuation: { token: string } | undefined;
      let pages = 0;
      do {
        const opts = { parameters: parameters ?? [], maxItemCount: 7, continuation };
        const expected = libraryExec(sql, docs, opts) as { continuation: typeof continuation };
        const actual = linearExec(sql, docs, opts);
        expect(actual).toEqual(expected);
        continuation = expected.continuation ?? undefined;
        pages += 1;
      } while (continuation && pages < 100);
      expect(continuation).toBeUndefined();
    },
  );

  it('rewrites the gathering step of every query Sluice sends', () => {
    for (const { sql } of CASES) {
      const { code, rewritten } = linearCode(sql);
      expect({ sql, rewritten: rewritten > 0 }).toEqual({ sql, rewritten: true });
      expect(code).not.toMatch(/\[\.\.\.\$,/);
    }
  });

  // (@zeit/cosmosdb-query 0.7.2 parses neither DISTINCT, GROUP BY nor OFFSET; Sluice sends none.)
  it('fails the same way on a bad query', () => {
    const sql = 'SELECT * FROM c WHERE UNKNOWN_FN(c.id)';
    expect(() => libraryExec(sql, docs, {})).toThrow();
    expect(() => linearExec(sql, docs, {})).toThrow();
    expect(() => queryFactory('SELECT FROM WHERE')).toThrow();
  });
});

describe('through the emulator and @azure/cosmos', () => {
  let emulator: CosmosEmulatorHandle;
  let client: CosmosClient;
  let runs: RunStore;
  let store: CosmosStore;
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const all: RunSummary[] = [];

  beforeAll(async () => {
    emulator = await startCosmosEmulator({ location: null, log: quiet });
    client = new CosmosClient({
      endpoint: emulator.endpoint,
      key: emulator.key,
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    store = new CosmosStore(client);
    await store.ensure();
    const container = store.container('runs');
    const docs = documents().filter((d) => typeof d.createdAt === 'string');
    for (let i = 0; i < docs.length; i += 20) {
      await Promise.all(
        docs.slice(i, i + 20).map((d) => {
          const { _rid: _r, _ts: _t, tags: _g, steps: _s, kind: _k, ...run } = d;
          return container.items.create({ ...run, pipelineVersion: 1, trigger: { kind: 'http' } });
        }),
      );
    }
    const { resources } = await container.items
      .query<RunSummary>('SELECT c.id, c.pipeline, c.status, c.createdAt FROM c')
      .fetchAll();
    all.push(...resources);
    runs = new RunStore(store);
  });

  afterAll(async () => {
    client?.dispose();
    await emulator?.stop();
  });

  it('RunStore.page pages through every run once, newest first, with filters', async () => {
    for (const filter of [{}, { pipeline: 'churn' }, { status: 'failed' as const }]) {
      const seen: string[] = [];
      let before: string | undefined;
      for (let n = 0; n < 100; n++) {
        const page = await runs.page({ ...filter, ...(before ? { before } : {}) }, 9);
        seen.push(...page.runs.map((r) => r.id));
        if (!page.next) break;
        before = page.next;
      }
      const expected = all
        .filter((r) =>
          Object.entries(filter).every(([k, v]) => (r as unknown as Record<string, unknown>)[k] === v),
        )
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id))
        .map((r) => r.id);
      expect(seen).toEqual(expected);
    }
  });

  it("the SDK's continuation paging returns the scan's order", async () => {
    const container = store.container('runs');
    const query = 'SELECT c.id, c.createdAt FROM c ORDER BY c.createdAt DESC';
    const iterator = container.items.query<{ id: string }>(query, { maxItemCount: 13 });
    const paged: string[] = [];
    let pages = 0;
    while (iterator.hasMoreResults()) {
      const { resources } = await iterator.fetchNext();
      paged.push(...resources.map((r) => r.id));
      pages += 1;
    }
    const whole = await container.items.query<{ id: string }>(query).fetchAll();
    expect(pages).toBeGreaterThan(5);
    expect(paged).toEqual(whole.resources.map((r) => r.id));
    expect(new Set(paged).size).toBe(all.length);
  });

  it("finds a run by id across partitions (RunStore.find's query)", async () => {
    const one = all[17]!;
    const find = (id: string) =>
      store
        .container('runs')
        .items.query<{ id: string }>({
          query: 'SELECT * FROM c WHERE c.id = @id',
          parameters: [{ name: '@id', value: id }],
        })
        .fetchAll();
    expect((await find(one.id)).resources.map((r) => r.id)).toEqual([one.id]);
    expect((await find('no-such-run')).resources).toEqual([]);
  });
});
