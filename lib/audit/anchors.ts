import { NonRetriableError } from '../errors';
import type { ArtifactStore } from '../storage/blob';
import resources from '../resources.json';
import type { AuditAnchor } from './chain';

/** The immutable container anchors go to (lib/resources.json `immutableBlobContainers`). */
export const ANCHOR_CONTAINER = resources.immutableBlobContainers.auditAnchors;

const anchorPath = (seq: number) => `anchors/${String(seq).padStart(12, '0')}.json`;

/**
 * Audit head anchors in Blob Storage: one blob per anchored seq, `{ seq, hash, at }`, created with
 * `If-None-Match: *`. In Azure the container has version-level immutability (a time-based policy,
 * infra/modules/storage.bicep): no one, not even the app, can delete or change an anchor before the
 * retention ends, so rewriting the Cosmos chain cannot rewrite its anchors. Azurite ignores the
 * policy, so locally an anchor can be deleted like any blob.
 */
export class AnchorStore {
  constructor(
    private readonly store: ArtifactStore,
    readonly container: string = ANCHOR_CONTAINER,
  ) {}

  /** Creates the container (emulators only; Bicep creates it in Azure). */
  async ensure(): Promise<void> {
    await this.store.containerClient(this.container).createIfNotExists();
  }

  /**
   * Writes the anchor; an anchor already there for this seq is kept (its `at` is the first time the
   * seq was anchored) and returned. One with another hash for the same seq means the chain was
   * rewritten: refused with `audit_anchor_mismatch`. `written` says whether this call wrote it.
   */
  async write(anchor: AuditAnchor): Promise<{ anchor: AuditAnchor; written: boolean }> {
    const path = anchorPath(anchor.seq);
    const result = await this.store.putJson({ container: this.container, path }, anchor, {
      condition: 'create',
    });
    if (result.ok) return { anchor, written: true };
    const { value } = await this.store.getJson<AuditAnchor>({ container: this.container, path });
    if (value.hash !== anchor.hash) {
      throw new NonRetriableError(
        'audit_anchor_mismatch',
        `audit entry ${anchor.seq} was anchored with hash ${value.hash} at ${value.at}, but the chain now says ${anchor.hash}: run \`sluice audit verify\``,
      );
    }
    return { anchor: value, written: false };
  }

  /** Every anchor, oldest seq first. */
  async list(): Promise<AuditAnchor[]> {
    const out: AuditAnchor[] = [];
    for await (const blob of this.store.list(this.container, 'anchors/')) {
      const { value } = await this.store.getJson<AuditAnchor>({ container: this.container, path: blob.path });
      out.push({ seq: value.seq, hash: value.hash, at: value.at });
    }
    return out.sort((a, b) => a.seq - b.seq);
  }
}
