import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { reviewGrants, reviewTokens, type ReviewScope } from '../../lib/approval/readAccess';
import { consoleAccess } from '../../lib/console';
import { problem } from '../../lib/http/problem';
import type { Services } from '../../lib/services';

/**
 * Who may read a run's reports and a model's evidence pack (reviewer e-mails, lineage, audit
 * entries): a console viewer (Sluice.Viewer or Sluice.Operator through App Service Authentication,
 * which fills the principal on /api/* whenever a session exists; everyone on the open local
 * console), or a reviewer holding a valid approval link for that run or model version
 * (lib/approval/readAccess.ts). Anyone else: 401 without a sign-in, 403 with one but no role.
 * Returns the refusal, or undefined when the request may read.
 */
export async function refuseUnlessReader(
  request: HttpRequest,
  services: Pick<Services, 'config' | 'approval'>,
  scope: ReviewScope,
): Promise<HttpResponseInit | undefined> {
  const access = consoleAccess(request, services);
  if (access.canView) return undefined;
  const tokens = reviewTokens(request.url, request.headers.get('cookie'));
  if (tokens.length > 0) {
    try {
      if (await reviewGrants(await services.approval(), tokens, scope)) return undefined;
    } catch {
      // No approval keys configured (or the store is down): the link grants nothing.
    }
  }
  return access.principal
    ? problem(403, 'viewer_role_required', `${access.who} needs the Sluice.Viewer app role to read this.`)
    : problem(
        401,
        'signin_required',
        'Sign in to the console (Sluice.Viewer), or open this from a valid approval link.',
      );
}
