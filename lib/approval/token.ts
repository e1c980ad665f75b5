import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from '../errors';
import type { Keyring } from '../keyring';
import { KEY_ID_PATTERN } from '../keyring';

/**
 * Approval-link tokens: `base64url(payload JSON) "." base64url(HMAC-SHA256)`.
 *
 * The payload names the run, the approval, the reviewer, the expiry and the key id; the MAC covers
 * the encoded payload with a domain prefix, so a key shared with another purpose cannot mint links.
 * A token is a capability to *see* the evidence and to *submit one decision*: the decision itself is
 * single-use because it is a conditional create in Cosmos, not because the token is burnt.
 */

const DOMAIN = 'sluice.approval.v1.';
/** Longest token accepted before any parsing (a URL path segment; keeps hostile input cheap). */
export const MAX_TOKEN_LENGTH = 2048;
const MAC_BYTES = 32;
/** base64url length of a MAC_BYTES signature, unpadded. */
const SIG_CHARS = Math.ceil((MAC_BYTES * 4) / 3);
const B64URL = /^[A-Za-z0-9_-]+$/;

export const tokenPayloadSchema = z
  .object({
    v: z.literal(1),
    /** Run id (the pipeline orchestration's instance id; also the approvals partition key). */
    run: z.string().min(1).max(256),
    /** Approval id (the approvalGate instance id). */
    apr: z.string().min(1).max(256),
    /** Reviewer, normalized to lower case. */
    sub: z.string().min(1).max(320),
    /** Expiry, seconds since the epoch. */
    exp: z.int().positive(),
    kid: z.string().regex(KEY_ID_PATTERN),
    /** A delegate's link: `sub`'s delegate acting on their behalf (docs/governance.md, "Delegation"). */
    dlg: z.string().min(1).max(320).optional(),
  })
  .strict();
export type TokenPayload = z.infer<typeof tokenPayloadSchema>;

/** What a verified token says, in the names the rest of the code uses. */
export interface ApprovalClaims {
  runId: string;
  approvalId: string;
  reviewer: string;
  expiresAt: Date;
  kid: string;
  /** Set on a delegate's link: who acts on `reviewer`'s behalf. */
  delegate?: string;
}

/** A token that does not verify: tampered, malformed or signed with a key we do not hold (401). */
export class ApprovalTokenInvalidError extends ValidationError {
  constructor(code: 'token_malformed' | 'token_bad_signature' | 'token_unknown_key', message: string) {
    super(code, message, { status: 401, field: 'token' });
  }
}

/** A genuine token past its expiry (410: the link existed but is gone). */
export class ApprovalTokenExpiredError extends ValidationError {
  readonly expiredAt: Date;
  constructor(expiredAt: Date) {
    super('token_expired', `This approval link expired at ${expiredAt.toISOString()}.`, {
      status: 410,
      field: 'token',
    });
    this.expiredAt = expiredAt;
  }
}

/** Reviewer identities compare case-insensitively (e-mail addresses and UPNs). */
export function normalizeReviewer(reviewer: string): string {
  return reviewer.trim().toLowerCase();
}

function mac(key: Buffer, encodedPayload: string): Buffer {
  return createHmac('sha256', key).update(DOMAIN).update(encodedPayload).digest();
}

/** Signs a link token for one reviewer of one approval with the active key. */
export function signApprovalToken(
  keyring: Keyring,
  claims: { runId: string; approvalId: string; reviewer: string; expiresAt: Date; delegate?: string },
): string {
  const key = keyring.keys.get(keyring.activeKid);
  if (!key) throw new Error(`active kid "${keyring.activeKid}" has no key`);
  const payload: TokenPayload = tokenPayloadSchema.parse({
    v: 1,
    run: claims.runId,
    apr: claims.approvalId,
    sub: normalizeReviewer(claims.reviewer),
    exp: Math.floor(claims.expiresAt.getTime() / 1000),
    kid: keyring.activeKid,
    ...(claims.delegate ? { dlg: normalizeReviewer(claims.delegate) } : {}),
  });
  const encoded = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  const token = `${encoded}.${mac(key, encoded).toString('base64url')}`;
  if (token.length > MAX_TOKEN_LENGTH) throw new Error('approval token would exceed the maximum link length');
  return token;
}

/**
 * Verifies a token: shape, key id, MAC (constant-time), then expiry. The signature is checked
 * before the expiry, so a tampered token is 401 even when its (forged) expiry has passed.
 */
export function verifyApprovalToken(keyring: Keyring, token: string, now: Date): ApprovalClaims {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new ApprovalTokenInvalidError('token_malformed', 'The approval link is malformed.');
  }
  const dot = token.indexOf('.');
  const encoded = token.slice(0, dot);
  const sig = token.slice(dot + 1);
  if (dot <= 0 || !B64URL.test(encoded) || !B64URL.test(sig)) {
    throw new ApprovalTokenInvalidError('token_malformed', 'The approval link is malformed.');
  }
  let payload: TokenPayload;
  try {
    payload = tokenPayloadSchema.parse(JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')));
  } catch {
    throw new ApprovalTokenInvalidError('token_malformed', 'The approval link is malformed.');
  }
  const key = keyring.keys.get(payload.kid);
  if (!key) {
    throw new ApprovalTokenInvalidError(
      'token_unknown_key',
      'The approval link was signed with a key this service does not hold.',
    );
  }
  const expected = mac(key, encoded);
  const given = Buffer.from(sig, 'base64url');
  // 32 bytes are 43 base64url characters whose last one carries 2 unused bits: the decoder ignores
  // them, so without this check four spellings of one signature would verify. Only the canonical
  // encoding (unused bits zero, no padding) is a valid link.
  if (sig.length !== SIG_CHARS || given.toString('base64url') !== sig) {
    throw new ApprovalTokenInvalidError('token_bad_signature', 'The approval link is not valid.');
  }
  // timingSafeEqual needs equal lengths; comparing against a same-length dummy keeps the work constant.
  const ok =
    given.length === MAC_BYTES
      ? timingSafeEqual(given, expected)
      : timingSafeEqual(expected, expected) && false;
  if (!ok) throw new ApprovalTokenInvalidError('token_bad_signature', 'The approval link is not valid.');
  const expiresAt = new Date(payload.exp * 1000);
  if (now.getTime() >= expiresAt.getTime()) throw new ApprovalTokenExpiredError(expiresAt);
  return {
    runId: payload.run,
    approvalId: payload.apr,
    reviewer: payload.sub,
    expiresAt,
    kid: payload.kid,
    ...(payload.dlg ? { delegate: payload.dlg } : {}),
  };
}

/** A short, non-secret id of a token for audit records (never store the token itself). */
export function tokenId(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 16);
}
