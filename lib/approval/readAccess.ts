import { createHash } from 'node:crypto';
import type { Keyring } from '../keyring';
import type { ApprovalStore } from './store';
import { verifyApprovalToken } from './token';

/**
 * Read access that an approval link grants: a reviewer (or their delegate) holding a valid link may
 * open the reports of the run under approval and the evidence pack of its candidate, which the
 * approval page links to. Those routes are otherwise for console viewers only (Sluice.Viewer): they
 * sit under /api/*, which App Service Authentication lets through without a sign-in.
 *
 * The approval page hands the link to the browser as an HttpOnly cookie scoped to /api/ (one per
 * approval, so two open approvals do not overwrite each other), so its plain report links work; a
 * script or the CLI can pass the link instead as `?approval=<token>`.
 */

export const REVIEW_COOKIE_PREFIX = 'sluice_review_';
/** Cookies looked at per request: a bound on signature checks a crafted Cookie header can cause. */
const MAX_TOKENS = 8;

/** What a link may open: the reports of one run, or the evidence of one model version. */
export type ReviewScope = { runId: string } | { modelName: string; modelVersion: number };

export interface ReviewAccessDeps {
  keyring: Keyring;
  store: Pick<ApprovalStore, 'readState'>;
  now: () => Date;
}

function cookieName(approvalId: string): string {
  return `${REVIEW_COOKIE_PREFIX}${createHash('sha256').update(approvalId).digest('hex').slice(0, 16)}`;
}

/**
 * The `Set-Cookie` value the approval page sends: the link itself, HttpOnly, only for /api/, only
 * first-party navigations (SameSite=Lax), gone when the link expires.
 */
export function reviewCookie(
  approvalId: string,
  token: string,
  expiresAt: Date,
  now: Date,
  secure: boolean,
): string {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - now.getTime()) / 1000));
  return [
    `${cookieName(approvalId)}=${token}`,
    'Path=/api/',
    `Max-Age=${maxAge}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

/** The approval links a request carries: `?approval=` first, then the review cookies. */
export function reviewTokens(url: string, cookieHeader: string | null): string[] {
  const out: string[] = [];
  const query = new URL(url).searchParams.get('approval');
  if (query) out.push(query);
  for (const part of (cookieHeader ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name.startsWith(REVIEW_COOKIE_PREFIX) && value) out.push(value);
  }
  return out.slice(0, MAX_TOKENS);
}

/**
 * True when one of `tokens` is a valid, unexpired approval link whose approval covers `scope`: the
 * same run (reports), or the candidate model version (evidence). A bad link grants nothing.
 */
export async function reviewGrants(
  deps: ReviewAccessDeps,
  tokens: readonly string[],
  scope: ReviewScope,
): Promise<boolean> {
  const now = deps.now();
  for (const token of tokens) {
    let claims;
    try {
      claims = verifyApprovalToken(deps.keyring, token, now);
    } catch {
      continue;
    }
    if ('runId' in scope) {
      if (claims.runId === scope.runId) return true;
      continue;
    }
    const state = await deps.store.readState(claims.runId, claims.approvalId);
    const c = state?.record.candidate;
    if (c && c.modelName === scope.modelName && c.modelVersion === scope.modelVersion) return true;
  }
  return false;
}
