import {
  CosmosClient,
  type Container,
  type Database,
  type ItemDefinition,
  type Resource,
  type SqlQuerySpec,
} from '@azure/cosmos';
import type { TokenCredential } from '@azure/identity';
import type { Config } from '../config';
import { NonRetriableError, ValidationError } from '../errors';
import resources from '../resources.json';
import { azureCredential } from './credential';
import { ConflictError, mapStorageError, statusOf } from './errors';

/** The Cosmos containers Sluice uses, as named in lib/resources.json. */
export type ContainerName = keyof typeof resources.cosmos.containers;
export const containerNames = Object.keys(resources.cosmos.containers) as ContainerName[];

/** A document as Cosmos returns it: the caller's fields plus system properties (`_etag`, `_ts`, …). */
export type Stored<T> = T & Resource;

export type CreateResult<T> =
  { ok: true; doc: Stored<T>; etag: string } | { ok: false; conflict: ConflictError };
export type ReplaceResult<T> =
  { ok: true; doc: Stored<T>; etag: string } | { ok: false; conflict: ConflictError };

type Doc = ItemDefinition & { id: string };

/** Builds the client: the emulator with its key and endpoint discovery off, Azure with Entra ID only. */
export function createCosmosClient(
  config: Pick<Config, 'COSMOS_ENDPOINT' | 'COSMOS_KEY' | 'AZURE_CLIENT_ID'>,
  credential?: TokenCredential,
): CosmosClient {
  if (config.COSMOS_KEY) {
    // The local emulator (or a keyed account) answers on one endpoint: discovery would chase the
    // https:// locations it advertises.
    return new CosmosClient({
      endpoint: config.COSMOS_ENDPOINT,
      key: config.COSMOS_KEY,
      connectionPolicy: { enableEndpointDiscovery: false },
      userAgentSuffix: 'sluice',
    });
  }
  return new CosmosClient({
    endpoint: config.COSMOS_ENDPOINT,
    aadCredentials: credential ?? azureCredential(config.AZURE_CLIENT_ID),
    userAgentSuffix: 'sluice',
  });
}

/**
 * Sluice's Cosmos DB database: typed point operations with the conditional semantics the app relies
 * on (create → 409 conflict, replace with `If-Match` → 412 conflict), errors mapped to
 * TransientError / NonRetriableError. The app builds one in its composition root (lib/services.ts).
 */
export class CosmosStore {
  readonly database: Database;
  private ensured: Promise<void> | undefined;

  constructor(
    readonly client: CosmosClient,
    readonly databaseId: string = resources.cosmos.database,
  ) {
    this.database = client.database(databaseId);
  }

  /** From the settings; `credential` (Azure only) defaults to a new one for AZURE_CLIENT_ID. */
  static fromConfig(config: Config, credential?: TokenCredential): CosmosStore {
    return new CosmosStore(createCosmosClient(config, credential), config.COSMOS_DATABASE);
  }

  container(name: ContainerName): Container {
    return this.database.container(resources.cosmos.containers[name].name);
  }

  partitionKeyPath(name: ContainerName): string {
    return resources.cosmos.containers[name].partitionKey;
  }

  /** The document's partition key value, read at the container's partition key path. */
  partitionKeyOf(name: ContainerName, doc: Record<string, unknown>): string | number | boolean {
    const path = this.partitionKeyPath(name);
    let value: unknown = doc;
    for (const key of path.split('/').slice(1)) value = (value as Record<string, unknown> | undefined)?.[key];
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ValidationError(
        'MISSING_PARTITION_KEY',
        `a ${name} document needs ${path} (its partition key)`,
        {
          field: path.slice(1).replaceAll('/', '.'),
        },
      );
    }
    return value;
  }

  /**
   * Creates the database and every container of lib/resources.json with its partition key, once per
   * store (idempotent; concurrent callers share one attempt). Fails if an existing container has a
   * different partition key, which Cosmos cannot change. In Azure these come from Bicep: data-plane
   * roles cannot create them, so call this only against the emulator.
   */
  ensure(): Promise<void> {
    this.ensured ??= this.createAll().catch((err: unknown) => {
      this.ensured = undefined;
      throw err;
    });
    return this.ensured;
  }

  private async createAll(): Promise<void> {
    try {
      await this.client.databases.createIfNotExists({ id: this.databaseId });
    } catch (err) {
      if (statusOf(err) !== 409) throw mapStorageError(err, 'cosmos', `create database ${this.databaseId}`);
    }
    await Promise.all(
      containerNames.map(async (name) => {
        const spec: { name: string; partitionKey: string; defaultTtl?: number } =
          resources.cosmos.containers[name];
        const { name: id, partitionKey } = spec;
        let paths: string[] | undefined;
        try {
          // defaultTtl -1: time-to-live on, documents expire only when they carry a `ttl` (traffic records).
          const { resource } = await this.database.containers.createIfNotExists({
            id,
            partitionKey: { paths: [partitionKey] },
            ...(spec.defaultTtl !== undefined ? { defaultTtl: spec.defaultTtl } : {}),
          });
          paths = resource?.partitionKey?.paths;
        } catch (err) {
          if (statusOf(err) !== 409) throw mapStorageError(err, 'cosmos', `create container ${id}`);
          paths = (await this.database.container(id).read()).resource?.partitionKey?.paths;
        }
        if (paths && paths[0] !== partitionKey) {
          throw new NonRetriableError(
            'COSMOS_PARTITION_KEY_MISMATCH',
            `container ${id} has partition key ${paths.join(',')}, but lib/resources.json says ${partitionKey}`,
          );
        }
      }),
    );
  }

  /** Point read; `undefined` when the document does not exist. */
  async read<T extends Doc>(
    name: ContainerName,
    id: string,
    partitionKey: string,
  ): Promise<Stored<T> | undefined> {
    try {
      const { resource, statusCode } = await this.container(name).item(id, partitionKey).read<T>();
      if (statusCode === 404 || !resource) return undefined;
      return resource as Stored<T>;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw mapStorageError(err, 'cosmos', `read ${name}/${id}`);
    }
  }

  /**
   * Creates the document only if no document with its id exists in its partition: first write wins.
   * A loser gets `{ ok: false, conflict }` (code `COSMOS_CONFLICT`), never an exception.
   */
  async create<T extends Doc>(name: ContainerName, doc: T): Promise<CreateResult<T>> {
    this.partitionKeyOf(name, doc);
    try {
      const { resource, etag } = await this.container(name).items.create<T>(doc, {
        disableAutomaticIdGeneration: true,
      });
      return { ok: true, doc: resource as Stored<T>, etag };
    } catch (err) {
      if (statusOf(err) === 409) {
        return {
          ok: false,
          conflict: new ConflictError('COSMOS_CONFLICT', `${name}/${doc.id} already exists`, { cause: err }),
        };
      }
      throw mapStorageError(err, 'cosmos', `create ${name}/${doc.id}`);
    }
  }

  /**
   * Replaces the document only if it is still the version the caller read (`If-Match: etag`). A
   * concurrent change, or the document gone, is `{ ok: false, conflict }` (`COSMOS_PRECONDITION_FAILED`):
   * re-read and decide again.
   */
  async replace<T extends Doc>(name: ContainerName, doc: T, etag: string): Promise<ReplaceResult<T>> {
    const partitionKey = this.partitionKeyOf(name, doc);
    try {
      const response = await this.container(name)
        .item(doc.id, partitionKey)
        .replace<T>(doc, { accessCondition: { type: 'IfMatch', condition: etag } });
      return { ok: true, doc: response.resource as Stored<T>, etag: response.etag };
    } catch (err) {
      const status = statusOf(err);
      if (status === 412 || status === 404) {
        const what = status === 404 ? 'no longer exists' : 'changed since it was read';
        return {
          ok: false,
          conflict: new ConflictError('COSMOS_PRECONDITION_FAILED', `${name}/${doc.id} ${what}`, {
            cause: err,
          }),
        };
      }
      throw mapStorageError(err, 'cosmos', `replace ${name}/${doc.id}`);
    }
  }

  /** Unconditional create-or-replace, for documents with a single writer. */
  async upsert<T extends Doc>(name: ContainerName, doc: T): Promise<{ doc: Stored<T>; etag: string }> {
    this.partitionKeyOf(name, doc);
    try {
      const { resource, etag } = await this.container(name).items.upsert<T>(doc, {
        disableAutomaticIdGeneration: true,
      });
      return { doc: resource as Stored<T>, etag };
    } catch (err) {
      throw mapStorageError(err, 'cosmos', `upsert ${name}/${doc.id}`);
    }
  }

  /** Deletes a document (only the read version when `etag` is given); false when it was not there. */
  async delete(name: ContainerName, id: string, partitionKey: string, etag?: string): Promise<boolean> {
    try {
      await this.container(name)
        .item(id, partitionKey)
        .delete(etag ? { accessCondition: { type: 'IfMatch', condition: etag } } : undefined);
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      if (statusOf(err) === 412) {
        throw new ConflictError('COSMOS_PRECONDITION_FAILED', `${name}/${id} changed since it was read`, {
          cause: err,
        });
      }
      throw mapStorageError(err, 'cosmos', `delete ${name}/${id}`);
    }
  }

  /**
   * A query within one partition (never cross-partition: bounded cost). The local emulator ignores
   * the partition-key option and searches every partition, so results that carry the partition key
   * are filtered here as well; put the partition filter in the WHERE clause for aggregates.
   */
  async query<T>(
    name: ContainerName,
    query: SqlQuerySpec | string,
    partitionKey: string,
  ): Promise<Stored<T>[]> {
    let found: Stored<T>[];
    try {
      found = (await this.container(name).items.query<Stored<T>>(query, { partitionKey }).fetchAll())
        .resources;
    } catch (err) {
      throw mapStorageError(err, 'cosmos', `query ${name}`);
    }
    const keys = this.partitionKeyPath(name).split('/').slice(1);
    const keyOf = (doc: unknown): unknown =>
      keys.reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], doc);
    const documents = found.every((d) => typeof d === 'object' && d !== null && keyOf(d) !== undefined);
    return documents ? found.filter((d) => keyOf(d) === partitionKey) : found;
  }

  /** Reads the database's metadata: proves the endpoint answers, the credential works and the database exists. */
  async ping(abortSignal?: AbortSignal): Promise<void> {
    try {
      await this.database.read({ abortSignal });
    } catch (err) {
      throw mapStorageError(err, 'cosmos', `read database ${this.databaseId}`);
    }
  }
}
