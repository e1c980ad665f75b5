import { createHash } from 'node:crypto';
import { NonRetriableError } from '../../errors';
import type { ModelJson } from './format';
import type { LoadedModel } from './predict';
import { loadModel } from './predict';

export const MODEL_CONTENT_TYPE = 'application/vnd.sluice.model+json';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The artifact bytes of a model and their SHA-256 (the digest the registry records). */
export function serializeModel(model: ModelJson): { bytes: Buffer; digest: string } {
  const bytes = Buffer.from(JSON.stringify(model), 'utf8');
  return { bytes, digest: sha256Hex(bytes) };
}

/**
 * Loads model bytes only if they hash to the digest the registry recorded: a swapped, truncated or
 * tampered artifact is refused before a single byte is parsed.
 */
export function loadVerifiedModel(bytes: Uint8Array, expectedDigest: string): LoadedModel {
  const actual = sha256Hex(bytes);
  if (actual !== expectedDigest) {
    throw new NonRetriableError(
      'model_digest_mismatch',
      `model artifact digest ${actual} does not match the registered digest ${expectedDigest}; refusing to load it`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new NonRetriableError('invalid_model', 'model artifact is not JSON', { cause: err });
  }
  return loadModel(json);
}
