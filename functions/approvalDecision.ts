import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { getServices } from '../app/services';
import { renderLoadedApproval } from '../lib/approval/page';
import { decisionNoticeText } from '../lib/approval/messages';
import { platformPrincipal } from '../lib/approval/principal';
import { loadApproval, submitDecision } from '../lib/approval/service';
import { APPROVAL_DECISION_EVENT } from '../lib/contracts/approval';
import { ValidationError, ensureError } from '../lib/errors';
import { errorProblem } from '../lib/http/problem';
import type { ApprovalDeps } from '../lib/services';
import { approvalErrorPage } from './approvalPage';

/**
 * `POST /api/approvals/{token}`: records one decision. Cosmos first (a conditional create: the
 * first decision per reviewer wins), then a wake-up event to the gate, which re-reads Cosmos, so a
 * lost or duplicate event cannot change the outcome. A browser form gets the page back with a
 * banner; a JSON client gets JSON (201, or a problem with the status that says why not).
 */

const MAX_BODY_BYTES = 16 * 1024;

/** Wakes the gate; the decision is already safe in Cosmos, so a failure here is only logged. */
export type WakeGate = (
  approvalId: string,
  data: { reviewer: string; decision: string },
  context: InvocationContext,
) => Promise<void>;

export const raiseDecisionEvent: WakeGate = async (approvalId, data, context) => {
  await df.getClient(context).raiseEvent(approvalId, APPROVAL_DECISION_EVENT, data);
};

function isForm(request: HttpRequest): boolean {
  const type = (request.headers.get('content-type') ?? '').toLowerCase();
  return type.startsWith('application/x-www-form-urlencoded') || type.startsWith('multipart/form-data');
}

async function readBody(request: HttpRequest, form: boolean): Promise<unknown> {
  const length = Number(request.headers.get('content-length') ?? '0');
  if (length > MAX_BODY_BYTES)
    throw new ValidationError('body_too_large', 'The decision body is too large.', { status: 413 });
  if (form) {
    const data = await request.formData();
    const out: Record<string, string> = {};
    for (const [k, v] of data.entries()) if (typeof v === 'string') out[k] = v;
    return out;
  }
  const type = (request.headers.get('content-type') ?? '').toLowerCase();
  if (!type.startsWith('application/json')) {
    throw new ValidationError('unsupported_media_type', 'Send the decision as JSON or as an HTML form.', {
      status: 415,
      field: 'content-type',
    });
  }
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES)
    throw new ValidationError('body_too_large', 'The decision body is too large.', { status: 413 });
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ValidationError('invalid_json', 'The body is not valid JSON.', { field: '(body)' });
  }
}

export function createApprovalDecisionHandler(
  getDeps: () => Promise<ApprovalDeps>,
  wake: WakeGate = raiseDecisionEvent,
) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const token = request.params.token ?? '';
    const form = isForm(request);
    let deps: ApprovalDeps | undefined;
    try {
      deps = await getDeps();
      const body = await readBody(request, form);
      // Trusted only when App Service Authentication owns the headers (see platformPrincipal).
      const principal = deps.requireSignin
        ? platformPrincipal((h) => request.headers.get(h), deps.platformAuth === true)
        : undefined;
      const ip = request.headers.get('x-forwarded-for')?.split(',')[0]?.trim();
      const userAgent = request.headers.get('user-agent') ?? undefined;
      const { decision, view } = await submitDecision(deps, token, body, {
        principal,
        client: { ...(ip ? { ip } : {}), ...(userAgent ? { userAgent } : {}) },
      });
      context.log(
        `approval ${decision.approvalId}: ${decision.reviewer} ${decision.decision}d (now ${view.verdict.outcome})`,
      );
      try {
        await wake(
          decision.approvalId,
          { reviewer: decision.reviewer, decision: decision.decision },
          context,
        );
      } catch (err) {
        // Recorded is recorded: the gate also re-reads Cosmos on its own schedule.
        context.warn(
          `approval ${decision.approvalId}: decision stored, wake-up event failed: ${ensureError(err).message}`,
        );
      }
      if (!form) {
        return {
          status: 201,
          headers: { 'cache-control': 'no-store' },
          jsonBody: {
            approvalId: decision.approvalId,
            reviewer: decision.reviewer,
            decision: decision.decision,
            decidedAt: decision.decidedAt,
            outcome: view.verdict.outcome,
            approvedBy: view.verdict.approvedBy,
            required: view.verdict.required,
          },
        };
      }
      const page = renderLoadedApproval(view, {
        actionPath: new URL(request.url).pathname,
        requireSignin: deps.requireSignin,
        notice: {
          kind: 'success',
          title:
            decision.decision === 'approve' ? 'Your approval is recorded.' : 'Your rejection is recorded.',
          text: decisionNoticeText(view.verdict),
        },
      });
      return { status: 200, headers: page.headers, body: page.body };
    } catch (err) {
      const e = ensureError(err) as Error & { status?: number };
      if (!e.status || e.status >= 500) context.error(`approval decision: ${e.message}`);
      else context.log(`approval decision refused (${e.status}): ${e.message}`);
      if (!form) return errorProblem(err, context.invocationId);
      return await formError(deps, token, request, err, context);
    }
  };
}

/** A refused form decision: the page again (when the link still shows one) with the reason on top. */
async function formError(
  deps: ApprovalDeps | undefined,
  token: string,
  request: HttpRequest,
  err: unknown,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const e = ensureError(err) as Error & { status?: number };
  const status = typeof e.status === 'number' && e.status >= 400 && e.status < 500 ? e.status : 500;
  if (!deps || status === 401 || status === 404 || status === 500) return approvalErrorPage(err, context);
  try {
    const view = await loadApproval(deps, token);
    const page = renderLoadedApproval(view, {
      actionPath: new URL(request.url).pathname,
      requireSignin: deps.requireSignin,
      notice: { kind: 'error', title: 'Your decision was not recorded.', text: e.message },
    });
    return { status, headers: page.headers, body: page.body };
  } catch (again) {
    return approvalErrorPage(status === 410 ? err : again, context);
  }
}

app.http('approvalDecision', {
  route: 'api/approvals/{token}',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: createApprovalDecisionHandler(async () => (await getServices()).approval()),
});
