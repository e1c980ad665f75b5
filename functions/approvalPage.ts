import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { getServices } from '../app/services';
import { APPROVAL_PAGE_HEADERS, renderLoadedApproval, renderMessagePage } from '../lib/approval/page';
import { reviewCookie } from '../lib/approval/readAccess';
import { loadApproval } from '../lib/approval/service';
import { ensureError } from '../lib/errors';
import { errorProblem } from '../lib/http/problem';
import type { ApprovalDeps } from '../lib/services';

/**
 * `GET`/`HEAD /api/approvals/{token}`: the evidence page. It reads and never writes, so mail
 * scanners that prefetch links (HEAD, GET, even headless browsers) change nothing. With
 * `Accept: application/json` it answers the same facts as JSON (for the CLI and tests).
 */

/** An HTML answer for a link that cannot show an approval: 401 tampered, 410 expired, 404 gone. */
export function approvalErrorPage(err: unknown, context: InvocationContext): HttpResponseInit {
  const e = ensureError(err) as Error & { status?: number; code?: string };
  const status = typeof e.status === 'number' && e.status >= 400 && e.status < 500 ? e.status : 500;
  const [title, text] =
    status === 410
      ? [
          'This link has expired',
          `${e.message} Ask the requester to send a new one if the approval is still needed.`,
        ]
      : status === 401
        ? [
            'This link is not valid',
            'The link was changed, cut short, or signed with a key that is no longer in use. Use the link exactly as you received it.',
          ]
        : status === 404
          ? ['Approval not found', e.message]
          : [
              'Something went wrong',
              `The approval could not be loaded. Try again in a minute. (invocation ${context.invocationId})`,
            ];
  if (status >= 500) context.error(`approval page: ${e.message}`);
  const page = renderMessagePage(title, text);
  return { status, headers: page.headers, body: page.body };
}

function wantsJson(request: HttpRequest): boolean {
  const accept = request.headers.get('accept') ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

/** Secure everywhere but plain-HTTP loopback (devhost), where browsers would drop it. */
function secureCookie(url: string): boolean {
  const u = new URL(url);
  return u.protocol === 'https:' || !/^(localhost|127\.0\.0\.1|\[::1\])$/.test(u.hostname);
}

export function createApprovalPageHandler(getDeps: () => Promise<ApprovalDeps>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const token = request.params.token ?? '';
    const head = request.method === 'HEAD';
    let response: HttpResponseInit;
    try {
      const deps = await getDeps();
      const view = await loadApproval(deps, token);
      const { record, decisions } = view.state;
      if (wantsJson(request)) {
        response = {
          status: 200,
          headers: { 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
          jsonBody: {
            approvalId: record.id,
            runId: record.runId,
            pipeline: record.pipeline,
            reviewer: view.claims.reviewer,
            status: record.status,
            stage: record.stage,
            deadline: record.deadline,
            candidate: record.candidate,
            verdict: view.verdict,
            ...(record.withdrawn ? { withdrawn: record.withdrawn } : {}),
            decisions: decisions.map((d) => ({
              reviewer: d.reviewer,
              decision: d.decision,
              comment: d.comment,
              decidedAt: d.decidedAt,
            })),
            evidence: record.evidence,
          },
        };
      } else {
        const page = renderLoadedApproval(view, {
          actionPath: new URL(request.url).pathname,
          requireSignin: deps.requireSignin,
        });
        // The page's report and evidence links are for console viewers; this cookie lets the
        // reviewer holding this link open them too (lib/approval/readAccess.ts).
        const cookie = reviewCookie(
          record.id,
          token,
          view.claims.expiresAt,
          view.now,
          secureCookie(request.url),
        );
        response = { status: 200, headers: { ...page.headers, 'set-cookie': cookie }, body: page.body };
      }
    } catch (err) {
      response = wantsJson(request)
        ? errorProblem(err, context.invocationId)
        : approvalErrorPage(err, context);
    }
    if (head)
      return {
        status: response.status,
        headers: { ...APPROVAL_PAGE_HEADERS, ...(response.headers as Record<string, string>) },
      };
    return response;
  };
}

app.http('approvalPage', {
  route: 'api/approvals/{token}',
  methods: ['GET', 'HEAD'],
  authLevel: 'anonymous',
  handler: createApprovalPageHandler(async () => (await getServices()).approval()),
});
