import { randomBytes } from 'node:crypto';
import {
  ApprovalTokenExpiredError,
  ApprovalTokenInvalidError,
  MAX_TOKEN_LENGTH,
  signApprovalToken,
  tokenId,
  verifyApprovalToken,
} from '../../../lib/approval/token';
import { parseKeyring } from '../../../lib/keyring';
import { loadConfig } from '../../../lib/config';

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(48).toString('base64');
const now = new Date('2026-03-01T12:00:00Z');
const claims = {
  runId: 'run-1',
  approvalId: 'run-1:approval',
  reviewer: 'Alice@Example.com',
  expiresAt: new Date('2026-03-02T12:00:00Z'),
};

function errorOf(fn: () => unknown): Error & { status?: number; code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { status?: number; code?: string };
  }
  throw new Error('expected a throw');
}

describe('approval tokens', () => {
  const ring = parseKeyring(JSON.stringify({ k1 }), 'k1');

  it('round-trips the claims, normalizing the reviewer', () => {
    const token = signApprovalToken(ring, claims);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const c = verifyApprovalToken(ring, token, now);
    expect(c).toEqual({
      runId: 'run-1',
      approvalId: 'run-1:approval',
      reviewer: 'alice@example.com',
      expiresAt: claims.expiresAt,
      kid: 'k1',
    });
  });

  it('answers 410 for a genuine token past its expiry', () => {
    const token = signApprovalToken(ring, claims);
    const err = errorOf(() => verifyApprovalToken(ring, token, new Date('2026-03-02T12:00:00Z')));
    expect(err).toBeInstanceOf(ApprovalTokenExpiredError);
    expect(err.status).toBe(410);
  });

  it('answers 401 when any payload byte changes (reviewer swapped)', () => {
    const token = signApprovalToken(ring, claims);
    const [payload, sig] = token.split('.') as [string, string];
    const json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    json.sub = 'mallory@example.com';
    const forged = `${Buffer.from(JSON.stringify(json)).toString('base64url')}.${sig}`;
    const err = errorOf(() => verifyApprovalToken(ring, forged, now));
    expect(err).toBeInstanceOf(ApprovalTokenInvalidError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('token_bad_signature');
  });

  it('answers 401 (not 410) for a tampered token whose expiry has passed', () => {
    const token = signApprovalToken(ring, { ...claims, expiresAt: new Date('2026-01-01T00:00:00Z') });
    const flipped = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    expect(errorOf(() => verifyApprovalToken(ring, flipped, now)).status).toBe(401);
  });

  it('answers 401 for a truncated signature, garbage and oversized input', () => {
    const token = signApprovalToken(ring, claims);
    for (const bad of [
      token.slice(0, -5),
      'abc',
      '.',
      'a.',
      '.b',
      'x'.repeat(MAX_TOKEN_LENGTH + 1),
      'e30.e30',
      `${token}.x`,
    ]) {
      const err = errorOf(() => verifyApprovalToken(ring, bad, now));
      expect(err).toBeInstanceOf(ApprovalTokenInvalidError);
      expect(err.status).toBe(401);
    }
  });

  it('answers 401 token_unknown_key for a kid this service does not hold', () => {
    const other = parseKeyring(JSON.stringify({ k9: k1 }), 'k9');
    const token = signApprovalToken(other, claims);
    const err = errorOf(() => verifyApprovalToken(ring, token, now));
    expect(err.code).toBe('token_unknown_key');
    expect(err.status).toBe(401);
  });

  it('keeps links valid across a rotation with two active kids, then rejects the retired kid', () => {
    const before = signApprovalToken(parseKeyring(JSON.stringify({ k1 }), 'k1'), claims);
    const during = parseKeyring(JSON.stringify({ k1, k2 }), 'k2');
    const fresh = signApprovalToken(during, claims);
    expect(verifyApprovalToken(during, before, now).kid).toBe('k1');
    expect(verifyApprovalToken(during, fresh, now).kid).toBe('k2');
    const after = parseKeyring(JSON.stringify({ k2 }), 'k2');
    expect(errorOf(() => verifyApprovalToken(after, before, now)).code).toBe('token_unknown_key');
    expect(verifyApprovalToken(after, fresh, now).reviewer).toBe('alice@example.com');
  });

  it("binds the kid into the MAC: relabelling a token's kid breaks it", () => {
    // The kid is inside the MACed payload: relabelling k1's token as k2 breaks the signature.
    const ringBoth = parseKeyring(JSON.stringify({ k1, k2 }), 'k1');
    const token = signApprovalToken(ringBoth, claims);
    const [payload, sig] = token.split('.') as [string, string];
    const json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    json.kid = 'k2';
    const relabelled = `${Buffer.from(JSON.stringify(json)).toString('base64url')}.${sig}`;
    expect(errorOf(() => verifyApprovalToken(ringBoth, relabelled, now)).code).toBe('token_bad_signature');
  });

  it('issue 13 item 6: accepts exactly one spelling of a signature, not the four its unused trailing bits allow', () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const token = signApprovalToken(ring, claims);
    const [payload, sig] = token.split('.') as [string, string];
    expect(sig).toHaveLength(43);
    // The last character holds 4 bits of the MAC and 2 unused bits: flip only the unused ones.
    const last = ALPHABET.indexOf(sig.slice(-1));
    expect(last % 4).toBe(0);
    const spellings = [1, 2, 3].map((unused) => `${payload}.${sig.slice(0, -1)}${ALPHABET[last + unused]}`);
    for (const other of spellings) {
      // Each decodes to the very same 32 bytes ...
      expect(Buffer.from(other.split('.')[1]!, 'base64url')).toEqual(Buffer.from(sig, 'base64url'));
      // ... and is refused all the same.
      const err = errorOf(() => verifyApprovalToken(ring, other, now));
      expect(err).toBeInstanceOf(ApprovalTokenInvalidError);
      expect(err).toMatchObject({ status: 401, code: 'token_bad_signature' });
    }
    // Padding is not another spelling either (refused as malformed, before the signature is read).
    expect(errorOf(() => verifyApprovalToken(ring, `${token}=`, now))).toMatchObject({
      status: 401,
      code: 'token_malformed',
    });
    expect(verifyApprovalToken(ring, token, now).approvalId).toBe('run-1:approval');
  });

  it('gives a stable audit id that is not the token', () => {
    const token = signApprovalToken(ring, claims);
    expect(tokenId(token)).toBe(tokenId(token));
    expect(token).not.toContain(tokenId(token));
  });
});

describe('signing key settings', () => {
  const base = {
    COSMOS_ENDPOINT: 'http://127.0.0.1:8081',
    ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
  };

  it('rejects short secrets, unknown active kids and bad JSON with the setting name, never the secret', () => {
    const short = randomBytes(16).toString('base64');
    expect(() => parseKeyring(JSON.stringify({ k1: short }), 'k1')).toThrow(/at least 32/);
    expect(() => parseKeyring(JSON.stringify({ k1 }), 'k2')).toThrow(/APPROVAL_ACTIVE_KEY_ID "k2"/);
    expect(() => parseKeyring(JSON.stringify({ k1, k2 }), undefined)).toThrow(
      /APPROVAL_ACTIVE_KEY_ID must name/,
    );
    expect(() => parseKeyring('{k1:', 'k1')).toThrow(/must be JSON/);
    const err = errorOf(() =>
      loadConfig({
        ...base,
        APPROVAL_SIGNING_KEYS: JSON.stringify({ k1: short }),
        APPROVAL_ACTIVE_KEY_ID: 'k1',
      }),
    );
    expect(err.message).toContain('APPROVAL_SIGNING_KEYS');
    expect(err.message).not.toContain(short);
  });

  it('accepts a valid keyring and parses APPROVAL_REQUIRE_SIGNIN as a real boolean', () => {
    const c = loadConfig({
      ...base,
      APPROVAL_SIGNING_KEYS: JSON.stringify({ k1, k2 }),
      APPROVAL_ACTIVE_KEY_ID: 'k2',
      APPROVAL_REQUIRE_SIGNIN: 'false',
    });
    expect(c.APPROVAL_REQUIRE_SIGNIN).toBe(false);
    expect(loadConfig({ ...base, APPROVAL_REQUIRE_SIGNIN: 'true' }).APPROVAL_REQUIRE_SIGNIN).toBe(true);
    expect(parseKeyring(c.APPROVAL_SIGNING_KEYS, c.APPROVAL_ACTIVE_KEY_ID).activeKid).toBe('k2');
  });
});
