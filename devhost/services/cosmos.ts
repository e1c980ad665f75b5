import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHttpServer } from '@vercel/cosmosdb-server';
import type Account from '@vercel/cosmosdb-server/lib/account';
import * as accountModule from '@vercel/cosmosdb-server/lib/account';
import type { Logger } from '../contracts';
import { captureAccount, readSnapshot, restoreAccount, writeFileAtomic } from './cosmosSnapshot';
import { installLinearQueries } from './cosmosQuery';
import { PortInUseError } from './ports';
import { COSMOS_EMULATOR_KEY, LOOPBACK } from './wellKnown';

export interface CosmosEmulatorOptions {
  /** Folder for `snapshot.json`; `null` keeps data in memory only. */
  location: string | null;
  port?: number;
  log: Logger;
  /** How often changed state is written to disk (default 2 s). */
  snapshotIntervalMs?: number;
  /**
   * `linear` (default): queries run the library's compiled SQL with its O(n²) document gathering
   * made linear (./cosmosQuery.ts), and query-plan requests are refused instead of run as queries.
   * `library`: queries exactly as `@vercel/cosmosdb-server` ships them, for before/after
   * measurements. The choice is per process: once one emulator in a process has
   * installed the linear executor, every later one uses it too.
   */
  queries?: 'linear' | 'library';
}

export interface CosmosEmulatorHandle {
  /** `http://127.0.0.1:<port>/`; clients must set `connectionPolicy.enableEndpointDiscovery = false`. */
  endpoint: string;
  key: string;
  port: number;
  /** Writes the snapshot now if anything changed since the last one (no-op in memory). */
  flush(): Promise<void>;
  /** Stops accepting requests, writes the final snapshot, closes the server. */
  stop(): Promise<void>;
}

export const SNAPSHOT_FILE = 'snapshot.json';

// The emulator builds its Account inside createHttpServer's 'listening' handler and keeps it private.
// A subclass installed once on the module export records the instance; our own 'listening' callback,
// which runs right after the library's, takes it. Snapshots need the account's internal state.
let lastAccount: Account | undefined;
let hooked = false;
const record = (account: Account) => {
  lastAccount = account;
};
function hookAccount(): void {
  if (hooked) return;
  const Original = accountModule.default;
  class RecordedAccount extends Original {
    constructor(host: string, port: number) {
      super(host, port);
      record(this);
    }
  }
  (accountModule as unknown as { default: typeof Account }).default = RecordedAccount;
  hooked = true;
}

const isTrue = (v: string | string[] | undefined): boolean =>
  (Array.isArray(v) ? v : [v]).some((h) => h?.toLowerCase() === 'true');

export const QUERY_PLAN_REFUSAL =
  "devhost's Cosmos emulator does not make query plans; it runs every query whole, as one partition range";

/** The SDK's request for a query plan (`x-ms-cosmos-is-query-plan-request: True`). */
function isQueryPlanRequest(req: IncomingMessage): boolean {
  return req.method === 'POST' && isTrue(req.headers['x-ms-cosmos-is-query-plan-request']);
}

/**
 * Requests that change nothing: reads, and queries (routed the way the library routes them: an
 * `x-ms-documentdb-isquery` header that says true in any case, or a query content type). The SDK
 * sends `isquery: true` in lower case, which an exact match on 'True' took for a write: every
 * query then waited for a full snapshot of the account to be written to disk.
 */
function isRead(req: IncomingMessage): boolean {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') return true;
  return (
    method === 'POST' &&
    (isTrue(req.headers['x-ms-documentdb-isquery']) ||
      req.headers['content-type'] === 'application/query+json' ||
      isQueryPlanRequest(req))
  );
}

/** Starts `@vercel/cosmosdb-server` in this process over plain HTTP on loopback, restoring its snapshot. */
export async function startCosmosEmulator(opts: CosmosEmulatorOptions): Promise<CosmosEmulatorHandle> {
  const snapshotFile = opts.location === null ? null : join(opts.location, SNAPSHOT_FILE);
  if (opts.location !== null) await mkdir(opts.location, { recursive: true });
  // Read before listening: a damaged snapshot must stop the start, not be overwritten later.
  const snapshot = snapshotFile ? await readSnapshot(snapshotFile) : undefined;

  hookAccount();
  if (opts.queries !== 'library' && !installLinearQueries()) {
    opts.log.warn('Cosmos emulator queries run as @vercel/cosmosdb-server ships them (slow at scale)', {
      reason: 'its @zeit/cosmosdb-query is not the copy devhost/services/cosmosQuery.ts patches',
    });
  }
  const server = createHttpServer({ keepAlive: true });
  let generation = 0;
  // Acknowledged writes must survive a crash, as they do in Cosmos DB: the response to a successful
  // write is held until the snapshot that contains it is on disk (concurrent writes share one
  // snapshot). Without this, a SIGKILL lost the writes of the last interval while the Durable task
  // hub (in Azurite) had already recorded the activities that made them.
  let persistBeforeAck: ((done: () => void) => void) | undefined;
  // @azure/cosmos asks for a query plan alongside every query it may need to run across
  // partitions, and uses it only if the gateway then refuses the query as needing one, which this
  // emulator never does. The library answered the plan request by running the whole query (its
  // router takes it for a query), doubling every query's cost; it is now refused with a 400 before
  // reaching the library, which the SDK keeps without failing the query it goes with.
  if (opts.queries !== 'library') {
    const [libraryHandler] = server.listeners('request') as ((
      req: IncomingMessage,
      res: ServerResponse,
    ) => void)[];
    if (!libraryHandler) throw new Error('@vercel/cosmosdb-server has no request handler (library changed?)');
    server.removeListener('request', libraryHandler);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!isQueryPlanRequest(req)) {
        libraryHandler(req, res);
        return;
      }
      req.resume();
      res.writeHead(400, { 'content-type': 'application/json', 'x-ms-request-charge': '1' });
      res.end(JSON.stringify({ code: 'BadRequest', message: QUERY_PLAN_REFUSAL }));
    });
  }
  server.on('request', (req, res) => {
    if (isRead(req)) return;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      if (res.statusCode >= 400) return end(...args);
      generation += 1;
      if (!persistBeforeAck) return end(...args);
      persistBeforeAck(() => end(...args));
      return res;
    }) as ServerResponse['end'];
  });

  const requestedPort = opts.port ?? 0;
  const account = await new Promise<Account>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError('cosmos', requestedPort, { cause: err }) : err);
    });
    lastAccount = undefined;
    server.listen(requestedPort, LOOPBACK, () => {
      const a = lastAccount;
      lastAccount = undefined;
      if (a) resolve(a);
      else
        reject(
          new Error('@vercel/cosmosdb-server did not create its account as expected (library changed?)'),
        );
    });
  });
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://${LOOPBACK}:${port}/`;

  if (snapshot) {
    const counts = restoreAccount(account, snapshot);
    opts.log.info('Cosmos emulator state restored', {
      file: snapshotFile,
      savedAt: snapshot.savedAt,
      ...counts,
    });
  }

  let savedGeneration = generation;
  let writing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    if (!snapshotFile) return Promise.resolve();
    // Chained so two writes never race on the temp file and the last state always wins.
    writing = writing.then(async () => {
      if (generation === savedGeneration) return;
      const target = generation;
      const json = JSON.stringify(captureAccount(account));
      await writeFileAtomic(snapshotFile, json);
      savedGeneration = target;
    });
    return writing;
  };

  if (snapshotFile) {
    persistBeforeAck = (done) => {
      flush().then(done, (err: unknown) => {
        writing = Promise.resolve();
        opts.log.error('Cosmos emulator snapshot failed; the write is in memory only', {
          file: snapshotFile,
          error: String(err),
        });
        done();
      });
    };
  }

  const timer = snapshotFile
    ? setInterval(() => {
        flush().catch((err: unknown) => {
          writing = Promise.resolve();
          opts.log.error('Cosmos emulator snapshot failed; will retry', {
            file: snapshotFile,
            error: String(err),
          });
        });
      }, opts.snapshotIntervalMs ?? 2000)
    : undefined;
  timer?.unref();

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (timer) clearInterval(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const forced = setTimeout(() => server.closeAllConnections(), 2000);
      await closed;
      clearTimeout(forced);
      writing = writing.catch(() => undefined);
      await flush();
      opts.log.info('Cosmos emulator stopped', { port, snapshot: snapshotFile ?? 'in memory' });
    })();
    return stopped;
  };

  opts.log.info('Cosmos emulator is ready', { port, snapshot: snapshotFile ?? 'in memory' });
  return { endpoint, key: COSMOS_EMULATOR_KEY, port, flush, stop };
}
