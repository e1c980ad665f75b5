import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ValidationError } from '../errors';
import type { SafeHtml } from '../approval/html';
import { markup } from '../approval/html';
import type { ConsoleRequest } from './access';

/**
 * Anti-forgery for the console's POSTs (cancel, roll back, run, pause): a double-submit token plus an
 * Origin check. A GET hands the browser a random token in an HttpOnly, SameSite=Strict cookie and
 * writes the same token into the page's forms (a hidden `csrf` field); a POST must carry both,
 * equal, and come from this origin. Another site can neither read the token nor, under SameSite,
 * send the cookie; the Origin check stops what is left (an old browser, a sibling subdomain). GET
 * never changes anything, so it needs no token.
 */

export const CSRF_FIELD = 'csrf';
const COOKIE = 'sluice-csrf';
/** Over https the cookie is `__Host-`: Secure, no Domain, Path=/ (a subdomain cannot plant it). */
const SECURE_COOKIE = '__Host-sluice-csrf';
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** A cookie as @azure/functions' HttpResponseInit `cookies` takes it. */
export interface ConsoleCookie {
  name: string;
  value: string;
  path: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'Strict';
  maxAge: number;
}

function isHttps(request: ConsoleRequest): boolean {
  const forwarded = request.headers.get('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  return forwarded ? forwarded === 'https' : new URL(request.url).protocol === 'https:';
}

function cookies(request: ConsoleRequest): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (request.headers.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      continue;
    }
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

function presentedToken(request: ConsoleRequest): string | undefined {
  const jar = cookies(request);
  const value = isHttps(request) ? jar.get(SECURE_COOKIE) : (jar.get(COOKIE) ?? jar.get(SECURE_COOKIE));
  return value && TOKEN.test(value) ? value : undefined;
}

export interface CsrfGrant {
  /** The token to put in forms (csrfField) and the layout's meta tag. */
  token: string;
  /** The cookie to set, when the browser does not have a valid one yet. */
  cookie?: ConsoleCookie;
}

/** The hidden form field carrying the token (every console form that POSTs has one). */
export function csrfField(token: string): SafeHtml {
  return markup`<input type="hidden" name="${CSRF_FIELD}" value="${token}" />`;
}

/** The anti-forgery token for a page: the browser's own, or a new one with its cookie. */
export function issueCsrf(request: ConsoleRequest): CsrfGrant {
  const existing = presentedToken(request);
  if (existing) return { token: existing };
  const token = randomBytes(32).toString('base64url');
  const secure = isHttps(request);
  return {
    token,
    cookie: {
      name: secure ? SECURE_COOKIE : COOKIE,
      value: token,
      path: '/',
      httpOnly: true,
      secure,
      sameSite: 'Strict',
      maxAge: 12 * 3600,
    },
  };
}

const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])$/i;

function originOf(url: string | undefined): URL | undefined {
  if (!url) return undefined;
  try {
    return new URL(new URL(url).origin);
  } catch {
    return undefined;
  }
}

/** The host names a request says it was sent to: Host (and X-Forwarded-Host), else its URL's. */
function requestHosts(request: ConsoleRequest): string[] {
  const named = [request.headers.get('host'), request.headers.get('x-forwarded-host')]
    .flatMap((h) => (h ?? '').split(','))
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  return named.length > 0 ? named : [new URL(request.url).host];
}

function hostnameOf(host: string): string {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return host;
  }
}

/**
 * The origins a console form may be posted from. Never "whatever Host the request names": a page
 * on another name that resolves to this machine (DNS rebinding) sends a matching Origin and Host.
 *
 * - PUBLIC_BASE_URL names a public origin: only that one.
 * - The console is local (open, or PUBLIC_BASE_URL is a loopback one, or none): the request must
 *   have been sent to localhost, 127.0.0.1 or [::1] (else 403 `console_not_local`), and may come
 *   from its own loopback origin, or PUBLIC_BASE_URL's port on any of those three names.
 */
function allowedOrigins(request: ConsoleRequest, publicBaseUrl?: string, open = false): Set<string> {
  const pub = originOf(publicBaseUrl);
  const pubIsLoopback = pub !== undefined && LOOPBACK_HOST.test(pub.hostname);
  const origins = new Set<string>();
  if (pub) origins.add(pub.origin);
  if (!open && pub && !pubIsLoopback) return new Set([...origins].map((o) => o.toLowerCase()));

  const hosts = requestHosts(request);
  const foreign = hosts.find((h) => !LOOPBACK_HOST.test(hostnameOf(h)));
  if (foreign) {
    throw new ValidationError(
      'console_not_local',
      `the local console takes forms only on localhost, 127.0.0.1 or [::1], not ${foreign}; set PUBLIC_BASE_URL to serve it under another name`,
      { status: 403 },
    );
  }
  const scheme = isHttps(request) ? 'https' : 'http';
  for (const h of hosts) origins.add(`${scheme}://${h}`);
  if (pub && pubIsLoopback) {
    const port = pub.port ? `:${pub.port}` : '';
    for (const name of ['localhost', '127.0.0.1', '[::1]']) origins.add(`${pub.protocol}//${name}${port}`);
  }
  return new Set([...origins].map((o) => o.toLowerCase()));
}

function sameToken(a: string, b: string): boolean {
  // Compare digests, so the comparison takes the same time whatever the lengths.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * Checks a console POST: from an allowed origin (Origin, or Referer when a browser sends no Origin;
 * see allowedOrigins), with the form's `csrf` field equal to the cookie. Throws a 403
 * ValidationError naming what is wrong. `open`: the console is open (CONSOLE_OPEN), so it must be
 * reached on a loopback name.
 */
export function verifyCsrf(
  request: ConsoleRequest,
  form: { get(name: string): unknown },
  options: { publicBaseUrl?: string; open?: boolean } = {},
): void {
  if (request.method.toUpperCase() !== 'POST') {
    throw new ValidationError('method_not_allowed', 'only a POST can change anything', { status: 405 });
  }
  const allowed = allowedOrigins(request, options.publicBaseUrl, options.open);
  const origin = request.headers.get('origin');
  const referer = request.headers.get('referer');
  let from: string | undefined;
  if (origin && origin !== 'null') from = origin;
  else if (referer) {
    try {
      from = new URL(referer).origin;
    } catch {
      from = undefined;
    }
  }
  if (!from) {
    throw new ValidationError(
      'origin_missing',
      'the request says neither Origin nor Referer: post the form from the console',
      {
        status: 403,
      },
    );
  }
  if (!allowed.has(from.toLowerCase())) {
    throw new ValidationError('origin_mismatch', `a console form cannot be posted from ${from}`, {
      status: 403,
    });
  }
  const cookie = presentedToken(request);
  const field = form.get(CSRF_FIELD);
  if (!cookie) {
    throw new ValidationError(
      'csrf_cookie_missing',
      'the anti-forgery cookie is missing: reload the page and try again',
      {
        status: 403,
      },
    );
  }
  if (typeof field !== 'string' || !sameToken(cookie, field)) {
    throw new ValidationError(
      'csrf_mismatch',
      `the form's ${CSRF_FIELD} field does not match this browser's token: reload the page and try again`,
      {
        status: 403,
      },
    );
  }
}
