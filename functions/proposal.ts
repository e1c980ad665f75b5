import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { withServices } from '../app/services';
import { escapeHtml } from '../lib/approval/html';
import { APPROVAL_PAGE_HEADERS } from '../lib/approval/page';
import { platformPrincipal } from '../lib/approval/principal';
import { requireSignedInAs } from '../lib/approval/service';
import { PIPELINE_ORCHESTRATOR } from '../lib/contracts/pipeline';
import { ValidationError } from '../lib/errors';
import { errorProblem } from '../lib/http/problem';
import type { DecideDeps } from '../lib/monitoring/proposals';
import { decideProposal, verifyProposalToken } from '../lib/monitoring/proposals';
import type { ProposalDoc } from '../lib/monitoring/records';
import { PRODUCTION_ALIAS } from '../lib/registry/records';
import type { Services } from '../lib/services';
import { readJsonBody } from './support/http';

/**
 * A retraining proposal's signed link (docs/monitoring.md), sent to each of the pipeline's reviewers:
 * `GET /api/proposals/{token}` shows the proposal and its evidence (HTML, or JSON with
 * `Accept: application/json`); `POST /api/proposals/{token}` with `{"decision": "accept" | "dismiss",
 * "reason"?}` (JSON or a form) decides it once. Accepting starts a run on the pipeline's current data
 * source. The token is the capability, as for approvals: no function key. With
 * APPROVAL_REQUIRE_SIGNIN the POST also needs the link's reviewer signed in (App Service
 * Authentication), exactly as an approval decision does; viewing (GET) needs only the link.
 */

function wantsJson(request: HttpRequest): boolean {
  return (request.headers.get('accept') ?? '').includes('application/json');
}

function page(p: ProposalDoc, reviewer: string, action: string): string {
  const e = escapeHtml;
  const ev = p.evidence;
  const decided = p.decision
    ? `<p><strong>${e(p.state)}</strong> by ${e(p.decision.by)} at ${e(p.decision.at)}${p.decision.runId ? `; run ${e(p.decision.runId)}` : ''}</p>`
    : `<form method="post" action="${e(action)}"><label>Reason <input name="reason" maxlength="2000"></label>
<button name="decision" value="accept">Accept: retrain</button> <button name="decision" value="dismiss">Dismiss</button></form>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Retrain ${e(p.modelName)}?</title></head><body>
<h1>Retrain ${e(p.modelName)}?</h1>
<p>For ${e(reviewer)}. Pipeline ${e(p.pipeline)}, production version ${e(ev.version ?? '—')}, window ${e(ev.window.from)} – ${e(ev.window.to)}, ${e(ev.samples)} sampled rows.</p>
<ul>${ev.reasons.map((r) => `<li>${e(r)}</li>`).join('')}</ul>
<p>Prediction PSI: ${e(ev.predictionPsi ?? '—')}. Drifted features: ${e(ev.driftedColumns.join(', ') || '—')}.</p>
${decided}
</body></html>`;
}

function decideDeps(s: Services, context: InvocationContext): DecideDeps {
  return {
    store: s.monitoring.store,
    runs: s.runs,
    artifacts: s.artifacts,
    pipeline: async (name) => s.pipelines.get(name),
    production: (name) => s.registry.resolveAlias(name, PRODUCTION_ALIAS),
    start: async (instanceId, input) =>
      void (await df.getClient(context).startNew(PIPELINE_ORCHESTRATOR, { instanceId, input })),
  };
}

export function createProposalPageHandler(s: Services) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const { keyring } = await s.approval();
      const claims = verifyProposalToken(keyring, request.params.token ?? '', s.now());
      const p = await s.monitoring.store.proposal(claims.modelName, claims.proposalId);
      if (!p)
        throw new ValidationError('proposal_not_found', 'The proposal no longer exists.', { status: 404 });
      if (wantsJson(request))
        return {
          status: 200,
          headers: { 'cache-control': 'no-store' },
          jsonBody: { ...p, reviewer: claims.reviewer },
        };
      return {
        status: 200,
        headers: { ...APPROVAL_PAGE_HEADERS },
        body: page(p, claims.reviewer, new URL(request.url).pathname),
      };
    } catch (err) {
      return errorProblem(err, context.invocationId);
    }
  };
}

export function createProposalDecisionHandler(
  s: Services,
  deps?: (context: InvocationContext) => DecideDeps,
) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const approval = await s.approval();
      const claims = verifyProposalToken(approval.keyring, request.params.token ?? '', s.now());
      // A forwarded link decides nothing: with sign-in required, only its reviewer may.
      const principal = approval.requireSignin
        ? platformPrincipal((h) => request.headers.get(h), approval.platformAuth === true)
        : undefined;
      requireSignedInAs(approval, principal, claims.reviewer);
      const type = (request.headers.get('content-type') ?? '').toLowerCase();
      let body: Record<string, unknown>;
      if (type.startsWith('application/x-www-form-urlencoded')) {
        body = Object.fromEntries([...(await request.formData()).entries()].map(([k, v]) => [k, String(v)]));
      } else body = ((await readJsonBody(request, 16 * 1024)) ?? {}) as Record<string, unknown>;
      const decision = body.decision;
      if (decision !== 'accept' && decision !== 'dismiss')
        throw new ValidationError('invalid_decision', 'decision must be "accept" or "dismiss".', {
          field: 'decision',
        });
      const reason =
        typeof body.reason === 'string' && body.reason.trim() ? body.reason.trim().slice(0, 2000) : undefined;
      const p = await decideProposal(
        (deps ?? ((c) => decideDeps(s, c)))(context),
        claims,
        decision,
        reason,
        s.now(),
      );
      context.log(`proposal ${p.id} of ${p.modelName}: ${p.state} by ${claims.reviewer}`);
      if (!wantsJson(request) && type.startsWith('application/x-www-form-urlencoded'))
        return { status: 200, headers: { ...APPROVAL_PAGE_HEADERS }, body: page(p, claims.reviewer, '') };
      return { status: 200, jsonBody: p };
    } catch (err) {
      return errorProblem(err, context.invocationId);
    }
  };
}

app.http('proposalPage', {
  route: 'api/proposals/{token}',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: withServices((s: Services) => createProposalPageHandler(s)),
});

app.http('proposalDecision', {
  route: 'api/proposals/{token}',
  methods: ['POST'],
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: withServices((s: Services) => createProposalDecisionHandler(s)),
});
