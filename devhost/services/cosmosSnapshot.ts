import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type Account from '@vercel/cosmosdb-server/lib/account';
import type Items from '@vercel/cosmosdb-server/lib/account/items';
import type Item from '@vercel/cosmosdb-server/lib/account/item';
import { z } from 'zod';

/**
 * The Cosmos DB emulator keeps everything in memory. A snapshot is its exact state: databases,
 * containers (partition key, indexing and unique-key policies), items with their system properties
 * (`_rid`, `_self`, `_etag`, `_ts`) and the resource-id counters. Restoring the system properties
 * as they were means an ETag a client read before a restart still matches after it, and new
 * resources never reuse a `_rid`.
 */
const resource = z.looseObject({ id: z.string(), _rid: z.string(), _self: z.string() });
const itemsOf = <T extends z.ZodType>(item: T) =>
  z.object({ ridCount: z.number().int().nonnegative(), items: z.array(item) });
const collectionSnapshot = z.object({
  data: resource,
  documents: itemsOf(resource),
  udfs: z.array(z.object({ id: z.string(), body: z.string() })),
});
const databaseSnapshot = z.object({ data: resource, collections: itemsOf(collectionSnapshot) });
export const cosmosSnapshotSchema = z.object({
  format: z.literal('sluice-cosmos-snapshot'),
  version: z.literal(1),
  savedAt: z.string(),
  databases: itemsOf(databaseSnapshot),
});
export type CosmosSnapshot = z.infer<typeof cosmosSnapshotSchema>;

type Resource = z.infer<typeof resource>;
// The emulator's Items keep resources in `_data` (by _rid, in insertion order, which is also the
// order queries without ORDER BY return) and hand out `_rid`s from `_ridCount`.
const values = <I extends Item>(items: Items<Item, I>): I[] => [...items._data.values()];
const readData = (item: Item): Resource => item.read();

/** Captures the account's state synchronously, so it is one consistent point in time. */
export function captureAccount(account: Account): CosmosSnapshot {
  return {
    format: 'sluice-cosmos-snapshot',
    version: 1,
    savedAt: new Date().toISOString(),
    databases: {
      ridCount: account.databases._ridCount,
      items: values(account.databases).map((db) => ({
        data: readData(db),
        collections: {
          ridCount: db.collections._ridCount,
          items: values(db.collections).map((coll) => ({
            data: readData(coll),
            documents: {
              ridCount: coll.documents._ridCount,
              items: values(coll.documents).map(readData),
            },
            udfs: values(coll.userDefinedFunctions).map((udf) => {
              const d = readData(udf);
              return { id: String(d.id), body: String(d.body) };
            }),
          })),
        },
      })),
    },
  };
}

export interface RestoreCounts {
  databases: number;
  containers: number;
  items: number;
}

/** Loads a snapshot into a freshly started (empty) emulator account. */
export function restoreAccount(account: Account, snapshot: CosmosSnapshot): RestoreCounts {
  const counts: RestoreCounts = { databases: 0, containers: 0, items: 0 };
  for (const db of snapshot.databases.items) {
    account.databases._set(db.data);
    const database = account.database(db.data.id);
    counts.databases += 1;
    for (const coll of db.collections.items) {
      database.collections._set(coll.data);
      const collection = database.collection(coll.data.id);
      counts.containers += 1;
      for (const doc of coll.documents.items) {
        collection.documents._set(doc);
        counts.items += 1;
      }
      collection.documents._ridCount = coll.documents.ridCount;
      // UDFs are compiled when created, so they go through create(); their _rid/_etag are new.
      for (const udf of coll.udfs) collection.userDefinedFunctions.create(udf);
    }
    database.collections._ridCount = db.collections.ridCount;
  }
  account.databases._ridCount = snapshot.databases.ridCount;
  return counts;
}

/** Reads a snapshot file; `undefined` when there is none. A damaged file is an error, never ignored. */
export async function readSnapshot(file: string): Promise<CosmosSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`Cosmos emulator snapshot ${file} is not valid JSON; move it aside to start empty`, {
      cause: err,
    });
  }
  const parsed = cosmosSnapshotSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `Cosmos emulator snapshot ${file} is not a snapshot this devhost understands; move it aside to start empty:\n` +
        z.prettifyError(parsed.error),
    );
  }
  return parsed.data;
}

/**
 * Writes `file` so that a crash at any moment leaves either the previous snapshot or the new one:
 * write a temp file beside it, fsync it, rename it over the old one, fsync the folder.
 */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(content, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    await dir.close();
  }
}
