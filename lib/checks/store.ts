import type { ItemDefinition } from '@azure/cosmos';
import { mapStorageError } from '../storage/errors';
import type { CosmosStore } from '../storage/cosmos';
import type { CheckDocument } from './records';
import { checkDocumentSchema } from './records';

type Stored = CheckDocument & ItemDefinition;

function parse(doc: Stored): CheckDocument {
  return checkDocumentSchema.parse(doc);
}

/**
 * Check documents (container `checks`, partition key `/id`). The id is derived from the caller's own
 * identifiers, so the first delivery creates the check and every repeat finds it: a conditional
 * create, never an overwrite. Later changes are ETag-conditioned replaces.
 */
export class CheckStore {
  constructor(private readonly cosmos: Pick<CosmosStore, 'create' | 'read' | 'replace' | 'container'>) {}

  /** Creates the check; when it exists already (a repeated delivery), returns the stored one. */
  async record(doc: CheckDocument): Promise<{ created: boolean; check: CheckDocument }> {
    const result = await this.cosmos.create('checks', doc);
    if (result.ok) return { created: true, check: parse(result.doc) };
    const existing = await this.get(doc.id);
    if (!existing) throw result.conflict;
    return { created: false, check: existing.check };
  }

  async get(id: string): Promise<{ check: CheckDocument; etag: string } | undefined> {
    const doc = await this.cosmos.read<Stored>('checks', id, id);
    return doc ? { check: parse(doc), etag: doc._etag ?? '' } : undefined;
  }

  /** Replaces the check only if unchanged since `etag`; false when someone else changed it first. */
  async replace(check: CheckDocument, etag: string): Promise<{ ok: boolean; etag: string }> {
    const result = await this.cosmos.replace('checks', check, etag);
    return result.ok ? { ok: true, etag: result.etag } : { ok: false, etag };
  }

  /** Checks still to decide or to answer, oldest first (a cross-partition query, bounded by `limit`). */
  async listOpen(limit = 500): Promise<{ check: CheckDocument; etag: string }[]> {
    let resources: Stored[];
    try {
      ({ resources } = await this.cosmos
        .container('checks')
        .items.query<Stored>({
          query: "SELECT * FROM c WHERE c.status = 'waiting' OR c.status = 'reporting'",
        })
        .fetchAll());
    } catch (err) {
      throw mapStorageError(err, 'cosmos', 'query open checks');
    }
    return resources
      .map((d) => ({ check: parse(d), etag: d._etag ?? '' }))
      .sort((a, b) => a.check.receivedAt.localeCompare(b.check.receivedAt))
      .slice(0, limit);
  }
}
