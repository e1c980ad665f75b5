import { createHash } from 'node:crypto';
import resources from '../../resources.json';
import type { ArtifactStore, BlobLocation } from '../../storage/blob';
import { SHA256_METADATA } from '../../storage/blob';
import type { ReferenceProfileKey } from './referenceProfile';
import { REFERENCE_PROFILE_CONTENT_TYPE, referenceProfilePath } from './referenceProfile';

/**
 * Reference profiles in Blob Storage, next to the datasets they describe. A profile is derived
 * data: losing one costs a recomputation, so a missing or damaged blob reads as "not cached".
 */

function location(key: ReferenceProfileKey): BlobLocation {
  return { container: resources.blobContainers.datasets, path: referenceProfilePath(key) };
}

/** The stored profile's bytes, or undefined when there is none (or it does not match its recorded digest). */
export async function loadReferenceProfile(
  store: ArtifactStore,
  key: ReferenceProfileKey,
): Promise<Uint8Array | undefined> {
  let read;
  try {
    // Shared memory: both validation threads read it without a copy each.
    read = await store.getBuffer(location(key), { shared: true });
  } catch (err) {
    if ((err as { code?: string }).code === 'BLOB_NOT_FOUND') return undefined;
    throw err;
  }
  const recorded = read.properties.metadata[SHA256_METADATA];
  const actual = createHash('sha256').update(read.data).digest('hex');
  return recorded === actual ? read.data : undefined;
}

/**
 * Stores a profile built by validation. The bytes are deterministic, so a concurrent run storing the
 * same profile is success; a damaged blob at the name is replaced.
 */
export async function storeReferenceProfile(
  store: ArtifactStore,
  key: ReferenceProfileKey,
  bytes: Uint8Array,
): Promise<void> {
  const at = location(key);
  const created = await store.put(at, bytes, { contentType: REFERENCE_PROFILE_CONTENT_TYPE });
  if (!created.ok) {
    await store.put(at, bytes, { contentType: REFERENCE_PROFILE_CONTENT_TYPE, condition: 'overwrite' });
  }
}
