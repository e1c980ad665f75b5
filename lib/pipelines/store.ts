import type { Container } from '@azure/cosmos';
import type { AuditSink } from '../audit/log';
import { canonicalJson } from '../audit/chain';
import { createHash } from 'node:crypto';
import { TransientError, ValidationError } from '../errors';
import { mapStorageError, statusOf } from '../storage/errors';

const MAX_VERSION_RACES = 10;

/** One stored version of a pipeline definition (container `pipelines`, partition key `/name`). */
export interface PipelineVersion<D> {
  id: string;
  name: string;
  version: number;
  definition: D;
  createdAt: string;
  createdBy: string;
}

const versionId = (version: number) => `v${String(version).padStart(6, '0')}`;

/** Pinned versions kept in memory per store by default (a definition is a few KB). */
export const PIPELINE_VERSION_CACHE_SIZE = 64;

/**
 * Versioned pipeline definitions. Every PUT creates a new immutable version with a conditional
 * create of a deterministic id (`v000001`…), so two concurrent writers can never both claim the
 * same version number; runs pin the version they started with.
 *
 * Because a stored version never changes, reads of an explicit version are cached in this store
 * (bounded, least recently used first out): a run's activities that each need the pinned
 * definition read Cosmos once per process, not once per activity. "The latest version" is never
 * cached (a PUT changes it), nor is a version that does not exist yet.
 */
export class PipelineStore<D> {
  private readonly pinned = new Map<string, PipelineVersion<D>>();

  constructor(
    private readonly container: Container,
    private readonly options: {
      cacheSize?: number;
      /**
       * Records every new version. An audit failure fails the PUT after the version is stored (the
       * caller sees 503 and retries, storing the definition again as the next version, audited).
       */
      audit?: AuditSink;
    } = {},
  ) {}

  /**
   * Stores a new version. With `expectedVersion` (the version the caller last read; 0 for "no
   * pipeline yet") the write succeeds only if that is still the latest: the new version's id is
   * `expectedVersion + 1`, created conditionally, so a concurrent writer that got there first makes
   * this one fail with 412 `pipeline_version_mismatch` instead of silently stacking on top.
   */
  async put(
    name: string,
    definition: D,
    createdBy: string,
    now: Date,
    options: { expectedVersion?: number } = {},
  ): Promise<PipelineVersion<D>> {
    const expected = options.expectedVersion;
    for (let race = 0; race < MAX_VERSION_RACES; race++) {
      const latest = await this.latestVersionNumber(name);
      if (expected !== undefined && latest !== expected) throw versionMismatch(name, expected, latest);
      const doc: PipelineVersion<D> = {
        id: versionId(latest + 1),
        name,
        version: latest + 1,
        definition,
        createdAt: now.toISOString(),
        createdBy,
      };
      try {
        await this.container.items.create(doc);
      } catch (err) {
        if (statusOf(err) === 409) {
          if (expected !== undefined) throw versionMismatch(name, expected, expected + 1);
          continue; // someone else took this version: read again
        }
        throw mapStorageError(err, 'cosmos', `store pipeline ${name}`);
      }
      await this.options.audit?.record({
        kind: 'pipeline.changed',
        actor: createdBy,
        subject: `pipeline/${name}`,
        data: {
          pipeline: name,
          version: doc.version,
          definitionSha256: createHash('sha256').update(canonicalJson(definition)).digest('hex'),
        },
        key: `pipeline:${name}:${doc.version}`,
      });
      return doc;
    }
    throw new TransientError('pipeline_version_race', `pipeline ${name}: too many concurrent updates`);
  }

  /**
   * The latest version, or a given one. Versions are immutable, so a version once read is served
   * from the cache; "the latest" asks Cosmos only which number that is.
   */
  async get(name: string, version?: number): Promise<PipelineVersion<D> | undefined> {
    const v = version ?? (await this.latestVersionNumber(name));
    if (v < 1) return undefined;
    const key = JSON.stringify([name, v]);
    const cached = this.pinned.get(key);
    if (cached) {
      // Most recently used last, so eviction takes the oldest first.
      this.pinned.delete(key);
      this.pinned.set(key, cached);
      return structuredClone(cached);
    }
    let found: PipelineVersion<D> | undefined;
    try {
      const { resource } = await this.container.item(versionId(v), name).read<PipelineVersion<D>>();
      found = resource ? strip(resource) : undefined;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw mapStorageError(err, 'cosmos', `read pipeline ${name}`);
    }
    if (found) this.remember(found);
    return found;
  }

  private remember(found: PipelineVersion<D>): void {
    const limit = this.options.cacheSize ?? PIPELINE_VERSION_CACHE_SIZE;
    if (limit < 1) return;
    const key = JSON.stringify([found.name, found.version]);
    this.pinned.delete(key);
    this.pinned.set(key, structuredClone(found));
    while (this.pinned.size > limit) {
      const oldest = this.pinned.keys().next().value;
      if (oldest === undefined) break;
      this.pinned.delete(oldest);
    }
  }

  /** Every pipeline with its latest version. */
  async list(): Promise<PipelineVersion<D>[]> {
    const { resources } = await this.container.items.query<PipelineVersion<D>>('SELECT * FROM c').fetchAll();
    const latest = new Map<string, PipelineVersion<D>>();
    for (const r of resources) {
      const cur = latest.get(r.name);
      if (!cur || r.version > cur.version) latest.set(r.name, strip(r));
    }
    return [...latest.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async versions(name: string): Promise<{ version: number; createdAt: string; createdBy: string }[]> {
    const { resources } = await this.container.items
      .query<PipelineVersion<D>>({
        query: 'SELECT * FROM c WHERE c.name = @n',
        parameters: [{ name: '@n', value: name }],
      })
      .fetchAll();
    return resources
      .map((r) => ({ version: r.version, createdAt: r.createdAt, createdBy: r.createdBy }))
      .sort((a, b) => a.version - b.version);
  }

  private async latestVersionNumber(name: string): Promise<number> {
    const { resources } = await this.container.items
      .query<{ version: number }>({
        query: 'SELECT c.version FROM c WHERE c.name = @n',
        parameters: [{ name: '@n', value: name }],
      })
      .fetchAll();
    return resources.reduce((m, r) => Math.max(m, r.version), 0);
  }
}

function versionMismatch(name: string, expected: number, latest: number): ValidationError {
  const was = expected === 0 ? 'did not exist' : `was at version ${expected}`;
  const now = latest === 0 ? 'does not exist' : `is at version ${latest}`;
  return new ValidationError(
    'pipeline_version_mismatch',
    `pipeline ${name} ${was} when this change was made, but now ${now}: someone else changed it; read it again`,
    { field: 'If-Match', status: 412 },
  );
}

function strip<D>(doc: PipelineVersion<D>): PipelineVersion<D> {
  const { id, name, version, definition, createdAt, createdBy } = doc;
  return { id, name, version, definition, createdAt, createdBy };
}
