import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { withServices } from '../app/services';
import { ValidationError } from '../lib/errors';
import type { CheckDeps } from '../lib/checks/service';
import { receiveGitHubEvent } from '../lib/checks/service';
import { checkDeps } from '../lib/services';
import type { Services } from '../lib/services';
import { requireJsonContentType, withProblems } from './support/http';

/**
 * `POST /api/checks/github`: the webhook of the GitHub App behind a custom deployment protection
 * rule. `X-Hub-Signature-256` is checked against GITHUB_WEBHOOK_SECRET before anything else; a
 * `deployment_protection_rule` request is recorded and answered 200, and the reportChecks timer
 * approves or rejects the deployment through its `deployment_callback_url` as the App's
 * installation. docs/delivery.md.
 */

/** GitHub caps webhook payloads at 25 MB; a protection rule event is a few KB. */
const MAX_BODY_BYTES = 256 * 1024;

export function createGitHubCheckHandler(getDeps: () => Promise<CheckDeps>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    requireJsonContentType(request);
    const rawBody = await request.text();
    if (Buffer.byteLength(rawBody) > MAX_BODY_BYTES) {
      throw new ValidationError('body_too_large', `the body is over ${MAX_BODY_BYTES} bytes`, {
        status: 413,
      });
    }
    const deps = await getDeps();
    const receipt = await receiveGitHubEvent(deps, {
      rawBody,
      signature: request.headers.get('x-hub-signature-256'),
      event: request.headers.get('x-github-event'),
    });
    const delivery = request.headers.get('x-github-delivery') ?? '(no delivery id)';
    if (receipt.outcome !== 'recorded') {
      context.log(`github check ${delivery}: ${receipt.outcome}`);
      return { status: receipt.outcome === 'pong' ? 200 : 202, jsonBody: receipt };
    }
    const { check, created } = receipt;
    context.log(`github check ${check.id} (${delivery}): ${created ? 'recorded' : 'repeated delivery'}`);
    return {
      status: 200,
      jsonBody: { id: check.id, status: check.status, created, answerBy: check.answerBy },
    };
  };
}

export const githubCheck = (s: Services) => withProblems(createGitHubCheckHandler(async () => checkDeps(s)));

app.http('githubCheck', {
  route: 'api/checks/github',
  methods: ['POST'],
  authLevel: 'function',
  handler: withServices(githubCheck),
});
