/**
 * Task-hub persistence against a real Azurite: large episodes spill across rows and properties and
 * load back intact; an episode whose final row never landed is ignored (and its rows reported as
 * garbage); old generations and consumed inbox messages are garbage too.
 */
import { RestError, TableClient } from '@azure/data-tables';
import { events, type HistoryEvent } from '../../../devhost/durable/history';
import {
  asciiJson,
  EntityTooLargeError,
  historyRowKey,
  inboxRowKey,
  TaskHubStore,
} from '../../../devhost/durable/store';
import { startAzurite, type AzuriteHandle } from '../../../devhost/services/azurite';

let azurite: AzuriteHandle;
let store: TaskHubStore;
let table: TableClient;
const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

beforeAll(async () => {
  azurite = await startAzurite({ location: null, log: quiet });
  store = await TaskHubStore.open(azurite.connectionString, 'StoreTestHub');
  table = TableClient.fromConnectionString(azurite.connectionString, store.tableName, {
    allowInsecureConnection: true,
  });
}, 60_000);

afterAll(async () => {
  await azurite?.stop();
});

const record = (instanceId: string, gen = 0) => ({
  instanceId,
  name: 'orch',
  version: '',
  gen,
  executionId: 'e1',
  input: '{"a":1}',
  createdTime: 1000,
  status: 'Pending' as const,
  customStatus: null,
  lastUpdatedTime: 1000,
});

it('names the table after the hub', () => {
  expect(TaskHubStore.tableNameFor('My-Hub_1')).toBe('MyHub1Devhost');
  expect(TaskHubStore.tableNameFor('7up')).toBe('H7upDevhost');
});

it('round-trips an episode far larger than one entity, and unicode text', async () => {
  const big = 'é😀x'.repeat(120_000); // 480k UTF-16 code units, well over one row
  const history: HistoryEvent[] = [
    events.orchestratorStarted(2000),
    events.executionStarted(2000, { name: 'orch', input: '{"a":1}', instanceId: 'big', executionId: 'e1' }),
    events.taskScheduled(2000, 0, 'act', JSON.stringify([big])),
    events.orchestratorCompleted(2000),
  ];
  await store.writeInstance(record('big'));
  const rows = await store.appendEpisode('big', 0, 0, history, {
    status: 'Running',
    lastUpdatedTime: 2000,
    customStatus: '"cs"',
  });
  expect(rows).toBeGreaterThan(1);
  const second = [events.orchestratorStarted(3000), events.taskCompleted(3000, 0, '"done"')];
  await store.appendEpisode('big', 0, rows, second, { status: 'Running', lastUpdatedTime: 3000 });
  const loaded = (await store.loadAll()).find((l) => l.record.instanceId === 'big')!;
  // Compared as text: a failure diff of half a megabyte helps nobody.
  const got = JSON.stringify(loaded.history);
  const want = JSON.stringify([...history, ...second]);
  let i = 0;
  while (i < want.length && got[i] === want[i]) i++;
  expect({ length: got.length, firstDifference: i, near: got.slice(i, i + 40) }).toEqual({
    length: want.length,
    firstDifference: want.length,
    near: '',
  });
  expect(loaded.rows).toBe(rows + 1);
  expect(loaded.customStatus).toBe('"cs"');
  expect(loaded.lastUpdatedTime).toBe(3000);
  expect(loaded.garbage).toEqual([]);
});

it('ignores an episode whose last row is missing and reports its rows as garbage', async () => {
  await store.writeInstance(record('torn'));
  const first = [events.orchestratorStarted(2000), events.orchestratorCompleted(2000)];
  await store.appendEpisode('torn', 0, 0, first, { status: 'Running', lastUpdatedTime: 2000 });
  // A multi-row episode that crashed after its first row: write all rows, then delete the final one.
  const big = [
    events.orchestratorStarted(3000),
    events.taskCompleted(3000, 0, JSON.stringify('z'.repeat(400_000))),
  ];
  const used = await store.appendEpisode('torn', 0, 1, big, { status: 'Completed', lastUpdatedTime: 3000 });
  await table.deleteEntity('torn', historyRowKey(0, used));
  const loaded = (await store.loadAll()).find((l) => l.record.instanceId === 'torn')!;
  expect(loaded.history).toEqual(first);
  expect(loaded.status).toBe('Running');
  expect(loaded.rows).toBe(1);
  expect(loaded.garbage).toEqual(Array.from({ length: used - 1 }, (_, i) => historyRowKey(0, i + 1)));
});

it('treats older generations and consumed inbox messages as garbage, keeps the rest in order', async () => {
  await store.writeInstance(record('gens', 0));
  await store.appendEpisode('gens', 0, 0, [events.orchestratorStarted(1)], {
    status: 'Running',
    lastUpdatedTime: 1,
  });
  await store.writeInstance(record('gens', 1));
  await store.appendEpisode('gens', 1, 0, [events.orchestratorStarted(2)], {
    status: 'Running',
    lastUpdatedTime: 2,
    consumed: [1],
  });
  await store.putInbox('gens', { seq: 2, kind: 'event', name: 'B', input: '2', ts: 5 });
  await store.putInbox('gens', { seq: 1, kind: 'event', name: 'A', input: '1', ts: 4 });
  await store.putInbox('gens', { seq: 3, kind: 'terminate', reason: 'stop', ts: 6 });
  const loaded = (await store.loadAll()).find((l) => l.record.instanceId === 'gens')!;
  expect(loaded.record.gen).toBe(1);
  expect(loaded.history).toHaveLength(1);
  expect(loaded.inbox.map((m) => m.seq)).toEqual([2, 3]);
  expect(loaded.maxSeq).toBe(3);
  expect(loaded.garbage.sort()).toEqual([historyRowKey(0, 0), inboxRowKey(1)].sort());
});

it('stores JSON as ASCII without changing its value', () => {
  const text = JSON.stringify({ s: 'é😀x"\\\n' });
  expect(asciiJson(text)).toMatch(/^[\x20-\x7e]*$/);
  expect(JSON.parse(asciiJson(text))).toEqual(JSON.parse(text));
});

it('refuses an instance record or message that cannot fit one entity, with a clear error', async () => {
  const huge = JSON.stringify('😀'.repeat(50_000)); // 100k UTF-16 units, escaped to 600k ASCII characters
  await expect(store.writeInstance({ ...record('huge'), input: huge })).rejects.toBeInstanceOf(
    EntityTooLargeError,
  );
  await expect(
    store.putInbox('huge', { seq: 1, kind: 'event', name: 'E', input: huge, ts: 1 }),
  ).rejects.toThrow(/too large for devhost's task-hub storage/);
  await store.writeInstance({
    ...record('fits'),
    input: JSON.stringify('é'.repeat(50_000)),
    customStatus: '"cs"',
  });
  const loaded = (await store.loadAll()).find((l) => l.record.instanceId === 'fits')!;
  expect(JSON.parse(loaded.record.input!)).toBe('é'.repeat(50_000));
  expect(loaded.record.customStatus).toBe('"cs"');
});

it('deletes a whole instance (purge) and tolerates rows already gone', async () => {
  await store.writeInstance(record('gone'));
  await store.appendEpisode('gone', 0, 0, [events.orchestratorStarted(1)], {
    status: 'Running',
    lastUpdatedTime: 1,
  });
  await store.deleteRows('gone', ['Q000000000099']);
  await store.deleteInstance('gone');
  expect((await store.loadAll()).some((l) => l.record.instanceId === 'gone')).toBe(false);
  await expect(table.getEntity('gone', 'I')).rejects.toBeInstanceOf(RestError);
});
