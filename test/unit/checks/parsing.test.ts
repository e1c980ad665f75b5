/**
 * The pure parts of the deployment checks: reading an Azure DevOps check's headers and condition,
 * the PlanUrl allow-list, GitHub's webhook signature and the App's JWT.
 */
import { createHmac, createVerify, generateKeyPairSync } from 'node:crypto';
import { hostAllowed, parseAzureDevOpsCheck, requireAllowedPlanUrl } from '../../../lib/checks/azureDevOps';
import { githubAppJwt, githubSignatureMatches, parseProtectionRuleEvent } from '../../../lib/checks/github';
import { azureDevOpsCheckId, githubCheckId } from '../../../lib/checks/records';
import { ValidationError } from '../../../lib/errors';

const HEADERS = {
  PlanUrl: 'https://dev.azure.com/contoso/',
  ProjectId: 'p-1',
  HubName: 'build',
  PlanId: 'plan-1',
  JobId: 'job-1',
  TimelineId: 'tl-1',
  TaskInstanceId: 'task-1',
  AuthToken: 'token',
};
const headersOf = (h: Record<string, string>) => new Headers(h);

function codeOf(fn: () => unknown): { code: string; field?: string; status: number } | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return { code: err.code, field: err.field, status: err.status };
    throw err;
  }
  return undefined;
}

describe('parseAzureDevOpsCheck', () => {
  it('reads the documented headers (any case) and a model or run condition', () => {
    const lower = Object.fromEntries(Object.entries(HEADERS).map(([k, v]) => [k.toLowerCase(), v]));
    const parsed = parseAzureDevOpsCheck(headersOf(lower), { model: 'churn', version: '7' });
    expect(parsed.condition).toEqual({ model: 'churn', version: 7 });
    expect(parsed.callback).toMatchObject({
      planUrl: HEADERS.PlanUrl,
      taskInstanceId: 'task-1',
      authToken: 'token',
    });
    expect(parseAzureDevOpsCheck(headersOf(HEADERS), { run: 'r-1' }).condition).toEqual({ run: 'r-1' });
  });

  it('takes the coordinates from the body when the check sends them there, and keeps them out of the condition', () => {
    const parsed = parseAzureDevOpsCheck(headersOf({}), { ...HEADERS, run: 'r-2' });
    expect(parsed.condition).toEqual({ run: 'r-2' });
    expect(parsed.callback.jobId).toBe('job-1');
  });

  it('names what is missing or malformed', () => {
    const { AuthToken: _t, ...noToken } = HEADERS;
    expect(codeOf(() => parseAzureDevOpsCheck(headersOf(noToken), { run: 'r' }))).toMatchObject({
      code: 'missing_check_header',
      field: 'AuthToken',
    });
    expect(
      codeOf(() => parseAzureDevOpsCheck(headersOf({ ...HEADERS, PlanUrl: 'not a url' }), { run: 'r' })),
    ).toMatchObject({
      code: 'invalid_check_header',
      field: 'PlanUrl',
    });
    expect(codeOf(() => parseAzureDevOpsCheck(headersOf(HEADERS), [1]))).toMatchObject({
      code: 'invalid_check_body',
    });
    expect(codeOf(() => parseAzureDevOpsCheck(headersOf(HEADERS), { model: 'm', version: 0 }))).toMatchObject(
      {
        code: 'invalid_check_condition',
      },
    );
    expect(codeOf(() => parseAzureDevOpsCheck(headersOf(HEADERS), {}))).toMatchObject({
      code: 'invalid_check_condition',
    });
  });

  it('gives one id per plan, job and task, whatever the case of the GUIDs', () => {
    const a = azureDevOpsCheckId({ planId: 'ABC', jobId: 'j', taskInstanceId: 't' });
    expect(azureDevOpsCheckId({ planId: 'abc', jobId: 'J', taskInstanceId: 'T' })).toBe(a);
    expect(azureDevOpsCheckId({ planId: 'abc', jobId: 'j', taskInstanceId: 'u' })).not.toBe(a);
    expect(
      githubCheckId({
        callbackUrl: 'https://api.github.com/repos/a/b/actions/runs/1/deployment_protection_rule',
        environment: 'prod',
      }),
    ).toMatch(/^github-[0-9a-f]{40}$/);
  });
});

describe('the PlanUrl allow-list', () => {
  const allowed = ['dev.azure.com', '*.visualstudio.com'];
  it('matches exact hosts and subdomains of a wildcard, nothing else', () => {
    expect(hostAllowed('dev.azure.com', allowed)).toBe(true);
    expect(hostAllowed('contoso.visualstudio.com', allowed)).toBe(true);
    expect(hostAllowed('visualstudio.com', allowed)).toBe(false);
    expect(hostAllowed('evilvisualstudio.com', allowed)).toBe(false);
    expect(hostAllowed('dev.azure.com.evil.net', allowed)).toBe(false);
  });
  it('refuses plain http except on loopback', () => {
    expect(codeOf(() => requireAllowedPlanUrl('http://dev.azure.com/org/', allowed))).toMatchObject({
      code: 'plan_url_not_allowed',
      status: 403,
    });
    expect(codeOf(() => requireAllowedPlanUrl('https://dev.azure.com/org/', allowed))).toBeUndefined();
    expect(
      codeOf(() => requireAllowedPlanUrl('http://127.0.0.1:9/org/', [...allowed, '127.0.0.1'])),
    ).toBeUndefined();
  });
});

describe('GitHub webhook signatures', () => {
  const body = '{"action":"requested"}';
  const secret = 'a-webhook-secret-of-some-length';
  const good = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  it('accepts the HMAC-SHA256 of the exact body and nothing else', () => {
    expect(githubSignatureMatches(body, good, secret)).toBe(true);
    expect(githubSignatureMatches(`${body} `, good, secret)).toBe(false);
    expect(githubSignatureMatches(body, good, `${secret}x`)).toBe(false);
    expect(githubSignatureMatches(body, null, secret)).toBe(false);
    // The older SHA-1 header format, a truncated digest and garbage are all refused.
    expect(githubSignatureMatches(body, good.replace('sha256=', 'sha1='), secret)).toBe(false);
    expect(githubSignatureMatches(body, good.slice(0, 20), secret)).toBe(false);
    expect(githubSignatureMatches(body, 'sha256=zz', secret)).toBe(false);
  });
});

describe('the GitHub App JWT', () => {
  it('is RS256, signed with the App key, issued 60 s back and valid under 10 minutes', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const now = new Date('2026-12-05T08:00:00Z');
    const jwt = githubAppJwt('123', privateKey, now);
    const [h, p, s] = jwt.split('.') as [string, string, string];
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toEqual({ alg: 'RS256', typ: 'JWT' });
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as {
      iat: number;
      exp: number;
      iss: string;
    };
    expect(claims.iss).toBe('123');
    expect(claims.iat).toBe(now.getTime() / 1000 - 60);
    expect(claims.exp - claims.iat).toBe(600);
    const v = createVerify('RSA-SHA256');
    v.update(`${h}.${p}`);
    expect(v.verify(publicKey, Buffer.from(s, 'base64url'))).toBe(true);
  });

  it('names a key that is not a private key', () => {
    expect(() => githubAppJwt('123', 'not a key', new Date())).toThrow(
      expect.objectContaining({ code: 'github_app_key_invalid' }),
    );
  });
});

describe('parseProtectionRuleEvent', () => {
  const event = {
    action: 'requested',
    environment: 'production',
    deployment_callback_url: 'https://api.github.com/repos/o/r/actions/runs/1/deployment_protection_rule',
    deployment: { id: 5, payload: { sluice: { model: 'churn', version: 3 } } },
    installation: { id: 9 },
    repository: { full_name: 'o/r' },
  };
  it('reads the callback, the installation and the condition of the deployment payload', () => {
    expect(parseProtectionRuleEvent(event)).toEqual({
      action: 'requested',
      callback: {
        callbackUrl: event.deployment_callback_url,
        environment: 'production',
        installationId: 9,
        repository: 'o/r',
        deploymentId: 5,
      },
      condition: { model: 'churn', version: 3 },
    });
  });
  it('has no condition when the payload names none', () => {
    expect(
      parseProtectionRuleEvent({ ...event, deployment: { id: 5, payload: '' } }).condition,
    ).toBeUndefined();
    expect(parseProtectionRuleEvent({ ...event, deployment: undefined }).condition).toBeUndefined();
  });
  it('names the missing field', () => {
    expect(codeOf(() => parseProtectionRuleEvent({ ...event, installation: undefined }))).toMatchObject({
      code: 'invalid_protection_rule_event',
      field: 'installation',
    });
  });
});
