/**
 * The SQLite task-hub store on a real file: episodes, generations and the inbox load back as the engine
 * expects; a commit survives the writing process being SIGKILLed the moment it returned; a hub an older
 * devhost kept in Azurite Table storage is imported once (in-flight instances carry on) and its table
 * dropped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { events, type HistoryEvent } from '../../../devhost/durable/history';
import { openTaskHubStore, SqliteTaskHubStore } from '../../../devhost/durable/sqliteStore';
import {
  EntityTooLargeError,
  historyRowKey,
  inboxRowKey,
  type InstanceRecord,
  TaskHubStore,
} from '../../../devhost/durable/store';
import { startAzurite, type AzuriteHandle } from '../../../devhost/services/azurite';
import { repoRoot } from '../../support/devhost';

const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'sqlite-store-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const record = (instanceId: string, gen = 0): InstanceRecord => ({
  instanceId,
  name: 'orch',
  version: '',
  gen,
  executionId: `e${gen}`,
  input: '{"a":"é"}',
  createdTime: 1000,
  status: 'Pending',
  customStatus: null,
  lastUpdatedTime: 1000,
  parent: { instanceId: 'p', executionId: 'pe', name: 'parent', taskScheduledId: 3 },
});

it('keeps episodes, status and custom status across a reopen of the file', async () => {
  let store = SqliteTaskHubStore.open(dir, 'My Hub');
  expect(store.location).toBe(path.join(dir, 'durable', 'My_Hub.sqlite'));
  await store.writeInstance(record('a'));
  const first: HistoryEvent[] = [
    events.orchestratorStarted(2000),
    events.executionStarted(2000, { name: 'orch', input: '{"a":1}', instanceId: 'a', executionId: 'e0' }),
    events.taskScheduled(2000, 0, 'act', JSON.stringify(['😀'.repeat(100_000)])),
    events.orchestratorCompleted(2000),
  ];
  const second = [events.orchestratorStarted(3000), events.taskCompleted(3000, 0, '"done"')];
  expect(await store.appendEpisode('a', 0, 0, first, { status: 'Running', lastUpdatedTime: 2000 })).toBe(1);
  await store.appendEpisode('a', 0, 1, second, {
    status: 'Running',
    lastUpdatedTime: 3000,
    customStatus: '"cs"',
  });
  store.close();

  store = SqliteTaskHubStore.open(dir, 'My Hub');
  const [loaded] = await store.loadAll();
  store.close();
  expect(loaded).toEqual({
    record: record('a'),
    history: [...first, ...second],
    rows: 2,
    status: 'Running',
    customStatus: '"cs"',
    lastUpdatedTime: 3000,
    inbox: [],
    maxSeq: 0,
    garbage: [],
  });
});

it('treats older generations and consumed inbox messages as garbage, and deletes them by row key', async () => {
  const store = SqliteTaskHubStore.open(dir, 'Hub');
  await store.writeInstance(record('g', 0));
  await store.appendEpisode('g', 0, 0, [events.orchestratorStarted(1)], {
    status: 'Running',
    lastUpdatedTime: 1,
  });
  await store.writeInstance(record('g', 1));
  await store.appendEpisode('g', 1, 0, [events.orchestratorStarted(2)], {
    status: 'Running',
    lastUpdatedTime: 2,
    consumed: [1],
  });
  await store.putInbox('g', { seq: 2, kind: 'event', name: 'B', input: '2', ts: 5 });
  await store.putInbox('g', { seq: 1, kind: 'event', name: 'A', input: '1', ts: 4 });
  await store.putInbox('g', { seq: 3, kind: 'terminate', reason: 'stop', ts: 6 });
  await expect(store.putInbox('g', { seq: 3, kind: 'resume', reason: '', ts: 7 })).rejects.toThrow();

  let [loaded] = await store.loadAll();
  expect(loaded!.history).toEqual([events.orchestratorStarted(2)]);
  expect(loaded!.inbox.map((m) => m.seq)).toEqual([2, 3]);
  expect(loaded!.maxSeq).toBe(3);
  expect(loaded!.garbage.sort()).toEqual([historyRowKey(0, 0), inboxRowKey(1)].sort());

  await store.deleteRows('g', loaded!.garbage);
  [loaded] = await store.loadAll();
  expect(loaded!.garbage).toEqual([]);
  expect(loaded!.inbox.map((m) => m.seq)).toEqual([2, 3]);
  await expect(store.deleteRows('g', ['nonsense'])).rejects.toThrow(/unknown task-hub row key/);

  await store.deleteInstance('g');
  expect(await store.loadAll()).toEqual([]);
  store.close();
});

it('refuses an instance record or message past the same bound as the Table store, with a clear error', async () => {
  const store = SqliteTaskHubStore.open(null, 'Hub');
  const huge = JSON.stringify('😀'.repeat(50_000)); // 100k UTF-16 units, 600k once escaped
  await expect(store.writeInstance({ ...record('huge'), input: huge })).rejects.toBeInstanceOf(
    EntityTooLargeError,
  );
  await expect(
    store.putInbox('huge', { seq: 1, kind: 'event', name: 'E', input: huge, ts: 1 }),
  ).rejects.toThrow(/too large for devhost's task-hub storage/);
  expect(await store.loadAll()).toEqual([]);
  store.close();
});

it('keeps an in-memory hub off the disk', async () => {
  const store = SqliteTaskHubStore.open(null, 'Hub');
  await store.writeInstance(record('m'));
  expect(store.location).toBe(':memory:');
  expect(readdirSync(dir)).toEqual([]);
  store.close();
});

it('keeps a commit when the writing process is SIGKILLed the moment it returned', () => {
  const compiled = path.join(repoRoot, 'dist', 'devhost', 'durable', 'sqliteStore.js');
  expect(existsSync(compiled)).toBe(true); // jest runs after `tsc -p .`
  const script = `
    const { SqliteTaskHubStore } = require(${JSON.stringify(compiled)});
    const store = SqliteTaskHubStore.open(${JSON.stringify(dir)}, 'Hub');
    (async () => {
      for (let i = 0; i < 50; i++) {
        await store.writeInstance({ instanceId: 'k' + i, name: 'o', version: '', gen: 0, executionId: 'e',
          input: null, createdTime: i, status: 'Running', customStatus: null, lastUpdatedTime: i });
        await store.appendEpisode('k' + i, 0, 0, [], { status: 'Completed', lastUpdatedTime: i });
      }
      process.kill(process.pid, 'SIGKILL');
    })();`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(run.signal).toBe('SIGKILL');
  expect(run.stderr).not.toMatch(/ExperimentalWarning/);
  const store = SqliteTaskHubStore.open(dir, 'Hub');
  return store.loadAll().then((loaded) => {
    store.close();
    expect(loaded.filter((l) => l.status === 'Completed')).toHaveLength(50);
  });
});

describe('a hub kept in Azurite Table storage by an older devhost', () => {
  let azurite: AzuriteHandle;
  beforeAll(async () => {
    azurite = await startAzurite({ location: null, log: quiet });
  }, 60_000);
  afterAll(async () => {
    await azurite?.stop();
  });

  it('is imported on the first start, then its table is dropped and it is not imported again', async () => {
    const old = await TaskHubStore.open(azurite.connectionString, 'UpgradeHub');
    await old.writeInstance({ ...record('inflight'), status: 'Running' });
    await old.appendEpisode('inflight', 0, 0, [events.orchestratorStarted(2000)], {
      status: 'Running',
      lastUpdatedTime: 2000,
    });
    await old.appendEpisode('inflight', 0, 1, [events.orchestratorCompleted(2001)], {
      status: 'Running',
      lastUpdatedTime: 2001,
      customStatus: '"waiting"',
    });
    await old.putInbox('inflight', { seq: 4, kind: 'event', name: 'Go', input: '"x"', ts: 2002 });
    const before = await old.loadAll();

    const logged: string[] = [];
    const log = { ...quiet, info: (m: string) => void logged.push(m) };
    let store = await openTaskHubStore(dir, 'UpgradeHub', azurite.connectionString, log);
    const after = await store.loadAll();
    store.close();
    const essentials = (l: (typeof before)[number]) => ({
      record: l.record,
      history: l.history,
      status: l.status,
      customStatus: l.customStatus,
      lastUpdatedTime: l.lastUpdatedTime,
      inbox: l.inbox,
      maxSeq: l.maxSeq,
    });
    expect(after.map(essentials)).toEqual(before.map(essentials));
    expect(logged.join('\n')).toMatch(/imported 1 instance\(s\) of task hub 'UpgradeHub'/);
    expect(await TaskHubStore.open(azurite.connectionString, 'UpgradeHub', false)).toBeUndefined();

    // A table of the same name appearing later is not imported over the live hub.
    const again = await TaskHubStore.open(azurite.connectionString, 'UpgradeHub');
    await again.writeInstance(record('late'));
    store = await openTaskHubStore(dir, 'UpgradeHub', azurite.connectionString, log);
    expect((await store.loadAll()).map((l) => l.record.instanceId)).toEqual(['inflight']);
    store.close();
  });

  it('is looked for once on a fresh data folder, and nothing is imported when there is none', async () => {
    const store = await openTaskHubStore(dir, 'NeverUsedHub', azurite.connectionString, quiet);
    expect(await store.loadAll()).toEqual([]);
    expect(store.getMeta('importedFromTableStorage')).toBe('none');
    store.close();
  });
});
