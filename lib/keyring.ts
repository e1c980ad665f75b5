/**
 * The approval signing keyring, parsed from app settings. It sits below lib/config.ts (which fails
 * fast on a bad keyring at startup) and below lib/approval/token.ts (which signs and verifies with
 * it), so configuration never imports the approval domain.
 */

/** A key id: what a token's `kid` may hold. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const MIN_KEY_BYTES = 32;

/** Signing keys by kid, and the kid that signs new links. */
export interface Keyring {
  readonly keys: ReadonlyMap<string, Buffer>;
  readonly activeKid: string;
}

/**
 * Parses `APPROVAL_SIGNING_KEYS` (`{"kid":"base64 secret"}`) and `APPROVAL_ACTIVE_KEY_ID`.
 * Throws with a message naming the setting; never includes key material.
 */
export function parseKeyring(keysJson: string | undefined, activeKid: string | undefined): Keyring {
  if (!keysJson) throw new Error('APPROVAL_SIGNING_KEYS is not set: approval links cannot be signed');
  let raw: unknown;
  try {
    raw = JSON.parse(keysJson);
  } catch {
    throw new Error('APPROVAL_SIGNING_KEYS must be JSON like {"k1":"<base64 secret>"}');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error('APPROVAL_SIGNING_KEYS must be a JSON object of kid → base64 secret');
  }
  const keys = new Map<string, Buffer>();
  for (const [kid, secret] of Object.entries(raw as Record<string, unknown>)) {
    if (!KEY_ID_PATTERN.test(kid))
      throw new Error(`APPROVAL_SIGNING_KEYS: kid "${kid.slice(0, 64)}" must be 1-64 of A-Z a-z 0-9 . _ -`);
    if (typeof secret !== 'string' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(secret)) {
      throw new Error(`APPROVAL_SIGNING_KEYS: the secret of kid "${kid}" must be a base64 string`);
    }
    const bytes = Buffer.from(secret, secret.includes('-') || secret.includes('_') ? 'base64url' : 'base64');
    if (bytes.length < MIN_KEY_BYTES) {
      throw new Error(
        `APPROVAL_SIGNING_KEYS: the secret of kid "${kid}" has ${bytes.length} bytes; use at least ${MIN_KEY_BYTES}`,
      );
    }
    keys.set(kid, bytes);
  }
  if (keys.size === 0) throw new Error('APPROVAL_SIGNING_KEYS holds no key');
  const active = activeKid ?? (keys.size === 1 ? [...keys.keys()][0] : undefined);
  if (!active)
    throw new Error(
      'APPROVAL_ACTIVE_KEY_ID must name the signing kid when APPROVAL_SIGNING_KEYS holds several',
    );
  if (!keys.has(active))
    throw new Error(`APPROVAL_ACTIVE_KEY_ID "${active}" is not a kid of APPROVAL_SIGNING_KEYS`);
  return { keys, activeKid: active };
}
