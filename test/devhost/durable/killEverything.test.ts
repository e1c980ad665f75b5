/**
 * Issue 13, "Nothing acknowledged is lost, even when every process dies at once": a devhost (the
 * Durable fixture app, on a data folder) takes a stream of writes — Blob uploads, Table entities,
 * Cosmos documents, Durable starts and raised events — and its whole process group (devhost, Azurite,
 * everything) is SIGKILLed at a random moment while the writes go on. After a restart on the same
 * folder, every write that was answered 2xx before the kill is there, every acknowledged event
 * reaches its orchestration, and a long chain keeps every step its status already showed finished.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { CosmosClient, type Container } from '@azure/cosmos';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startDevhost, type RunningDevhost } from '../../support/devhost';
import { freePort } from '../../support/emulators';
import { azuriteConnectionString, COSMOS_EMULATOR_KEY } from '../../../devhost/services/wellKnown';

const rounds = Number(process.env.KILL_ROUNDS ?? 8);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Write =
  | { kind: 'blob'; name: string; body: string }
  | { kind: 'table'; rowKey: string; n: number }
  | { kind: 'cosmos'; id: string; n: number }
  | { kind: 'start'; id: string; token: string }
  | { kind: 'raise'; id: string; token: string };

let dataDir: string;
let devhost: RunningDevhost | undefined;
let ports: { blob: number; queue: number; table: number; cosmos: number };

const launch = async (): Promise<RunningDevhost> =>
  startDevhost({
    app: 'test/fixtures/durable-app',
    dataDir,
    detached: true,
    args: [
      ...['--blob-port', String(ports.blob), '--queue-port', String(ports.queue)],
      ...['--table-port', String(ports.table), '--cosmos-port', String(ports.cosmos)],
    ],
  });

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'kill-everything-'));
  ports = {
    blob: await freePort(),
    queue: await freePort(),
    table: await freePort(),
    cosmos: await freePort(),
  };
});

afterAll(async () => {
  await devhost?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function clients() {
  const host = '127.0.0.1';
  const conn = azuriteConnectionString({
    blob: `http://${host}:${ports.blob}/devstoreaccount1`,
    queue: `http://${host}:${ports.queue}/devstoreaccount1`,
    table: `http://${host}:${ports.table}/devstoreaccount1`,
  });
  const noRetry = { retryOptions: { maxTries: 1 } };
  const blobs = BlobServiceClient.fromConnectionString(conn, noRetry).getContainerClient('acked');
  const table = TableClient.fromConnectionString(conn, 'Acked', {
    allowInsecureConnection: true,
    retryOptions: { maxRetries: 0 },
  });
  const cosmos = new CosmosClient({
    endpoint: `http://${host}:${ports.cosmos}`,
    key: COSMOS_EMULATOR_KEY,
    connectionPolicy: {
      enableEndpointDiscovery: false,
      retryOptions: { maxRetryAttemptCount: 0, fixedRetryIntervalInMilliseconds: 0, maxWaitTimeInSeconds: 1 },
    },
  });
  return { blobs, table, cosmos };
}

/** Writes until `stopped()`; returns only the writes answered 2xx. */
async function writeUntil(
  stopped: () => boolean,
  round: number,
  c: { blobs: ContainerClient; table: TableClient; container: Container },
  base: string,
  waiting: string[],
): Promise<Write[]> {
  const acked: Write[] = [];
  for (let k = 0; !stopped(); k++) {
    const key = `r${round}-${k}`;
    try {
      switch (k % 5) {
        case 0: {
          const body = `blob ${key}`;
          await c.blobs.getBlockBlobClient(`${key}.txt`).upload(body, body.length);
          acked.push({ kind: 'blob', name: `${key}.txt`, body });
          break;
        }
        case 1:
          await c.table.createEntity({ partitionKey: 'p', rowKey: key, n: k });
          acked.push({ kind: 'table', rowKey: key, n: k });
          break;
        case 2:
          await c.container.items.create({ id: key, pipeline: 'p', n: k });
          acked.push({ kind: 'cosmos', id: key, n: k });
          break;
        case 3: {
          const res = await fetch(`${base}/api/start/eventOrTimer/${key}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ timeoutMs: 3_600_000, token: key }),
          });
          await res.text();
          if (res.status === 202) acked.push({ kind: 'start', id: key, token: key });
          break;
        }
        default: {
          // Wake an instance acknowledged in an earlier round (it is known to be waiting).
          const id = waiting.shift();
          if (id === undefined) break;
          const res = await fetch(`${base}/runtime/webhooks/durabletask/instances/${id}/raiseEvent/Wake`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(key),
          });
          await res.text();
          if (res.status === 202) acked.push({ kind: 'raise', id, token: key });
        }
      }
    } catch {
      // The kill landed during this write: it was never acknowledged, so it may or may not be there.
      if (stopped()) break;
      await sleep(20);
    }
  }
  return acked;
}

/** What of `acked` is missing on the restarted devhost. */
async function missing(
  acked: Write[],
  c: { blobs: ContainerClient; table: TableClient; container: Container },
  base: string,
): Promise<string[]> {
  const lost: string[] = [];
  for (const w of acked) {
    switch (w.kind) {
      case 'blob': {
        const got = await c.blobs
          .getBlockBlobClient(w.name)
          .downloadToBuffer()
          .then((b) => b.toString('utf8'))
          .catch(() => undefined);
        if (got !== w.body) lost.push(`blob ${w.name}`);
        break;
      }
      case 'table': {
        const got = await c.table.getEntity<{ n: number }>('p', w.rowKey).catch(() => undefined);
        if (got?.n !== w.n) lost.push(`table entity ${w.rowKey}`);
        break;
      }
      case 'cosmos': {
        const { resource } = await c.container.item(w.id, 'p').read<{ n: number }>();
        if (resource?.n !== w.n) lost.push(`cosmos document ${w.id}`);
        break;
      }
      case 'start': {
        const res = await fetch(`${base}/runtime/webhooks/durabletask/instances/${w.id}`);
        const body = (await res.json().catch(() => undefined)) as { input?: { token?: string } } | undefined;
        if (res.status === 404 || body?.input?.token !== w.token) lost.push(`orchestration ${w.id}`);
        break;
      }
      case 'raise': {
        let output: unknown;
        for (let i = 0; i < 200; i++) {
          const res = await fetch(`${base}/runtime/webhooks/durabletask/instances/${w.id}`);
          const body = (await res.json()) as { runtimeStatus: string; output: unknown };
          if (body.runtimeStatus === 'Completed') {
            output = body.output;
            break;
          }
          await sleep(50);
        }
        if (JSON.stringify(output) !== JSON.stringify({ woke: w.token })) lost.push(`event for ${w.id}`);
        break;
      }
    }
  }
  return lost;
}

it('Nothing acknowledged is lost, even when every process dies at once', async () => {
  devhost = await launch();
  const { blobs, table, cosmos } = clients();
  await blobs.createIfNotExists();
  await table.createTable();
  const { database } = await cosmos.databases.createIfNotExists({ id: 'app' });
  const { container } = await database.containers.createIfNotExists({
    id: 'runs',
    partitionKey: { paths: ['/pipeline'] },
  });
  const c = { blobs, table, container };

  // A chain that keeps finishing steps through every kill: a step shown as finished is never lost.
  const chain = 'chain-through-kills';
  const started = await fetch(`${devhost.url}/api/start/slowChain/${chain}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ steps: 10_000, ms: 20 }),
  });
  expect(started.status).toBe(202);
  const finishedSteps = async (): Promise<number> => {
    const res = await fetch(
      `${devhost!.url}/runtime/webhooks/durabletask/instances/${chain}?showHistory=true`,
    );
    const body = (await res.json()) as { historyEvents?: { EventType: string }[] };
    return (body.historyEvents ?? []).filter((e) => e.EventType === 'TaskCompleted').length;
  };

  const waiting: string[] = [];
  const lost: string[] = [];
  const counts: Record<string, number> = {};
  for (let round = 0; round < rounds; round++) {
    let stop = false;
    const writing = writeUntil(() => stop, round, c, devhost.url, waiting);
    // A random moment: sometimes right after an answer, sometimes in the middle of a write.
    await sleep(randomInt(150, 1500));
    const shown = await finishedSteps();
    await devhost.killGroup();
    stop = true;
    const acked = await writing;
    devhost = await launch();
    const gone = await missing(acked, c, devhost.url);
    const kept = await finishedSteps();
    if (kept < shown) gone.push(`${shown - kept} finished chain step(s)`);
    lost.push(...gone.map((g) => `round ${round}: ${g}`));
    for (const w of acked) counts[w.kind] = (counts[w.kind] ?? 0) + 1;
    // Instances known to be there and waiting get the next round's events.
    for (const w of acked)
      if (w.kind === 'start' && !gone.includes(`orchestration ${w.id}`)) waiting.push(w.id);
    if (process.env.KILL_VERBOSE)
      console.log(
        `round ${round}: ${acked.length} acknowledged, chain ${shown} → ${kept}, lost ${JSON.stringify(gone)}`,
      );
  }
  if (process.env.KILL_VERBOSE) console.log(JSON.stringify(counts));
  cosmos.dispose();
  // Enough writes of each kind were acknowledged for the check to mean something.
  for (const kind of ['blob', 'table', 'cosmos', 'start', 'raise']) expect(counts[kind]).toBeGreaterThan(0);
  expect(await finishedSteps()).toBeGreaterThan(0);
  expect(lost).toEqual([]);
}, 180_000);
