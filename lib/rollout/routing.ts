/**
 * Sticky traffic assignment: a request key hashes to one of {@link BUCKETS} buckets, and a canary
 * at p % takes buckets below p % of them. Salted with the rollout id, so the same keys are not
 * always the first to meet every new candidate; within a rollout, a key keeps its bucket, and a
 * key on the candidate side at 5 % stays there at 25 %.
 */

export const BUCKETS = 10_000;

/** FNV-1a (32 bit) of salt + key, modulo {@link BUCKETS}. */
export function bucketOf(key: string, salt: string): number {
  let h = 0x811c9dc5;
  const s = `${salt}\u0000${key}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}
