import { createHmac, createSign, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { NonRetriableError, ValidationError } from '../errors';
import type { CallOptions } from './http';
import { callWithRetry } from './http';
import type { CheckCondition, GitHubCallback } from './records';
import { CONDITION_FILE, checkConditionSchema } from './records';

/**
 * The GitHub side: a custom deployment protection rule answered by a GitHub App. Wire shapes from
 * GitHub's docs (cited in docs/delivery.md):
 *
 * - the `deployment_protection_rule` webhook (action `requested`), signed in `X-Hub-Signature-256`
 *   as `sha256=<hex HMAC-SHA256 of the raw body with the webhook secret>`;
 * - the answer: POST `deployment_callback_url` (/repos/{owner}/{repo}/actions/runs/{run_id}/
 *   deployment_protection_rule) with `{"environment_name","state":"approved"|"rejected","comment"}`,
 *   as the App's installation (204 No Content);
 * - the installation token: POST /app/installations/{id}/access_tokens with a JWT (RS256; iss = App
 *   id, iat 60 s in the past, exp at most 10 min ahead) signed with the App's private key.
 */

/** True when `header` is the body's signature with `secret`; compares in constant time. */
export function githubSignatureMatches(rawBody: string, header: string | null, secret: string): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  const expected = createHmac('sha256', secret).update(rawBody, 'utf8').digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const protectionRuleEventSchema = z.object({
  action: z.string(),
  environment: z.string().min(1).max(255),
  event: z.string().optional(),
  deployment_callback_url: z.url(),
  deployment: z
    .object({ id: z.number().int().positive(), payload: z.unknown().optional(), sha: z.string().optional() })
    .loose()
    .optional(),
  installation: z.object({ id: z.number().int().positive() }).loose(),
  repository: z.object({ full_name: z.string().min(1) }).loose(),
});

export interface ProtectionRuleRequest {
  action: string;
  callback: GitHubCallback;
  /** From the deployment's payload `{"sluice": {...}}`; undefined when it names none. */
  condition: CheckCondition | undefined;
}

/** The condition a deployment carries in its payload (an object or a JSON string, as GitHub keeps either). */
function conditionOfPayload(payload: unknown): CheckCondition | undefined {
  let value = payload;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  const sluice = (value as { sluice?: unknown } | null)?.sluice;
  if (sluice === undefined) return undefined;
  const parsed = checkConditionSchema.safeParse(sluice);
  if (!parsed.success) {
    throw new ValidationError(
      'invalid_check_condition',
      'deployment.payload.sluice must be {"model": "<name>", "version": <n>} or {"run": "<run id>"}',
      { field: 'deployment.payload.sluice' },
    );
  }
  return parsed.data;
}

/** Parses a `deployment_protection_rule` event; a malformed one is a ValidationError naming the field. */
export function parseProtectionRuleEvent(body: unknown): ProtectionRuleRequest {
  const parsed = protectionRuleEventSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(body)';
    throw new ValidationError('invalid_protection_rule_event', `${field}: ${issue.message}`, { field });
  }
  const e = parsed.data;
  return {
    action: e.action,
    callback: {
      callbackUrl: e.deployment_callback_url,
      environment: e.environment,
      installationId: e.installation.id,
      repository: e.repository.full_name,
      ...(e.deployment ? { deploymentId: e.deployment.id } : {}),
      ...(e.deployment?.sha && /^[0-9a-f]{40,64}$/.test(e.deployment.sha) ? { sha: e.deployment.sha } : {}),
    },
    condition: conditionOfPayload(e.deployment?.payload),
  };
}

const base64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** The App's JWT: RS256, issued 60 s in the past (clock drift), valid 9 minutes. */
export function githubAppJwt(appId: string, privateKeyPem: string, now: Date): string {
  const iat = Math.floor(now.getTime() / 1000) - 60;
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ iat, exp: iat + 600, iss: appId }));
  const signer = createSign('RSA-SHA256');
  signer.update(`${header}.${payload}`);
  let signature: Buffer;
  try {
    signature = signer.sign(privateKeyPem);
  } catch (err) {
    throw new NonRetriableError(
      'github_app_key_invalid',
      `GITHUB_APP_PRIVATE_KEY is not a usable PEM private key: ${(err as Error).message}`,
    );
  }
  return `${header}.${payload}.${base64url(signature)}`;
}

export interface GitHubAppOptions extends CallOptions {
  appId: string;
  privateKey: string;
  /** REST API root without a trailing slash (GITHUB_API_URL). */
  apiUrl: string;
  now?: () => Date;
}

const GITHUB_HEADERS = { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' };

export class GitHubApp {
  constructor(private readonly options: GitHubAppOptions) {}

  /** A callback URL Sluice will post to: GitHub's own API under /repos/, nothing else. */
  requireCallbackUrl(url: string): void {
    if (!url.startsWith(`${this.options.apiUrl}/repos/`)) {
      throw new ValidationError(
        'callback_url_not_allowed',
        `deployment_callback_url must be under ${this.options.apiUrl}/repos/`,
        { field: 'deployment_callback_url', status: 403 },
      );
    }
  }

  /** An installation access token (lives 1 h; asked for per answer, never stored). */
  async installationToken(installationId: number): Promise<string> {
    const jwt = githubAppJwt(
      this.options.appId,
      this.options.privateKey,
      (this.options.now ?? (() => new Date()))(),
    );
    const res = await callWithRetry(
      'github',
      `${this.options.apiUrl}/app/installations/${installationId}/access_tokens`,
      { method: 'POST', headers: { ...GITHUB_HEADERS, authorization: `Bearer ${jwt}` } },
      this.options,
    );
    const body = (await res.json()) as { token?: unknown };
    if (typeof body.token !== 'string' || !body.token) {
      throw new NonRetriableError('github_token_missing', 'GitHub answered without an installation token');
    }
    return body.token;
  }

  /**
   * The condition the deployed commit names in CONDITION_FILE: undefined when there is no such
   * file; a ValidationError (`invalid_condition_file`) when it does not hold one condition.
   */
  async conditionAtCommit(cb: GitHubCallback): Promise<CheckCondition | undefined> {
    if (!cb.sha) return undefined;
    const token = await this.installationToken(cb.installationId);
    const url = `${this.options.apiUrl}/repos/${cb.repository}/contents/${CONDITION_FILE}?ref=${cb.sha}`;
    let res: Response;
    try {
      res = await callWithRetry(
        'github',
        url,
        { method: 'GET', headers: { ...GITHUB_HEADERS, authorization: `Bearer ${token}` } },
        this.options,
      );
    } catch (err) {
      if ((err as { code?: string }).code === 'github_404') return undefined;
      throw err;
    }
    const body = (await res.json()) as { type?: unknown; encoding?: unknown; content?: unknown };
    const invalid = (why: string) =>
      new ValidationError('invalid_condition_file', `${CONDITION_FILE} at ${cb.sha}: ${why}`, {
        field: CONDITION_FILE,
      });
    if (body.type !== 'file' || body.encoding !== 'base64' || typeof body.content !== 'string') {
      throw invalid('not a file GitHub returns in base64');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body.content, 'base64').toString('utf8')) as unknown;
    } catch {
      throw invalid('not JSON');
    }
    const condition = checkConditionSchema.safeParse(parsed);
    if (!condition.success) {
      throw invalid('must be {"model": "<name>", "version": <n>} or {"run": "<run id>"}');
    }
    return condition.data;
  }

  /** Approves or rejects the pending deployment with a comment. */
  async review(cb: GitHubCallback, state: 'approved' | 'rejected', comment: string): Promise<void> {
    this.requireCallbackUrl(cb.callbackUrl);
    const token = await this.installationToken(cb.installationId);
    await callWithRetry(
      'github',
      cb.callbackUrl,
      {
        method: 'POST',
        headers: { ...GITHUB_HEADERS, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ environment_name: cb.environment, state, comment: comment.slice(0, 1000) }),
      },
      this.options,
    );
  }
}
