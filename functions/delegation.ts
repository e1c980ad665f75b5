import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { withServices } from '../app/services';
import { delegationBodySchema, currentAndScheduled, activeAt } from '../lib/approval/delegation';
import type { DelegationStore } from '../lib/approval/delegation';
import { ANONYMOUS_REQUESTER, platformPrincipal, requesterOf } from '../lib/approval/principal';
import { reviewerSchema } from '../lib/contracts/approvalPolicy';
import { ValidationError } from '../lib/errors';
import { zodProblem } from '../lib/http/problem';
import { requireJsonContentType, withProblems } from './support/http';

/**
 * Reviewer delegation (docs/governance.md, "Delegation").
 *
 * - `PUT|GET|DELETE /api/reviewers/{id}/delegation` (function key): an operator sets, shows or
 *   ends a reviewer's delegation. The actor recorded is the signed-in principal, else `operator`.
 * - `PUT|GET|DELETE /api/me/delegation` (no key; App Service Authentication): the signed-in
 *   reviewer manages their own. Azure Functions does not tell a Node.js app which key authenticated
 *   a request, so "the reviewer or an operator" on one route is not checkable; the reviewer's own
 *   route trusts only the platform's principal, and only when APPROVAL_REQUIRE_SIGNIN asks for it
 *   AND App Service Authentication is on (WEBSITE_AUTH_ENABLED, set by the platform); otherwise
 *   anyone could send the header and manage anyone's delegation.
 *
 * PUT `{ to, from?, until, reason }`: 201 with the delegation; refused when it is to oneself
 * (`delegation_to_self`), already over (`delegation_expired`), ends before it starts
 * (`delegation_window_invalid`), is longer than 90 days (`delegation_too_long`) or overlaps another
 * (`delegation_overlaps`, 409). DELETE ends the delegation in force (else the next scheduled one):
 * 200 with it, 404 `no_delegation` when there is none. GET: `{ reviewer, active, scheduled }`.
 */

type Deps = {
  delegations: Pick<DelegationStore, 'set' | 'end' | 'list'>;
  now: () => Date;
  /** App Service Authentication is on (WEBSITE_AUTH_ENABLED): only then are principal headers trusted. */
  platformAuth?: boolean;
};

async function handle(
  deps: Deps,
  request: HttpRequest,
  reviewer: string,
  by: string,
): Promise<HttpResponseInit> {
  const now = deps.now();
  if (request.method === 'GET') {
    const items = await deps.delegations.list(reviewer);
    const active = activeAt(items, now);
    return {
      status: 200,
      jsonBody: {
        reviewer,
        active: active ?? null,
        scheduled: currentAndScheduled(items, now).filter((d) => d !== active),
      },
    };
  }
  if (request.method === 'DELETE') {
    const ended = await deps.delegations.end(reviewer, { now, by });
    if (!ended) {
      throw new ValidationError('no_delegation', `${reviewer} has no delegation in force or scheduled.`, {
        status: 404,
        field: 'id',
      });
    }
    return { status: 200, jsonBody: ended };
  }
  requireJsonContentType(request);
  let raw: unknown;
  try {
    raw = await request.json();
  } catch {
    throw new ValidationError('invalid_json', 'The body must be JSON: {"to", "until", "reason", "from"?}.', {
      field: '(body)',
    });
  }
  const parsed = delegationBodySchema.safeParse(raw);
  if (!parsed.success) return zodProblem(parsed.error);
  const set = await deps.delegations.set(reviewer, parsed.data, { now, by });
  return { status: 201, jsonBody: set };
}

function reviewerParam(raw: string | undefined): string {
  const parsed = reviewerSchema.safeParse(raw ?? '');
  if (!parsed.success) {
    throw new ValidationError('invalid_reviewer', `"${raw ?? ''}" is not a reviewer id (3-200 characters).`, {
      field: 'id',
    });
  }
  return parsed.data;
}

/** The operator's route (function key). */
export function createDelegationHandler(deps: Deps) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const reviewer = reviewerParam(request.params.id);
    // The actor recorded: the platform's principal when it owns the headers, else `operator`.
    const caller = deps.platformAuth ? requesterOf((h) => request.headers.get(h)) : ANONYMOUS_REQUESTER;
    return handle(deps, request, reviewer, caller === 'anonymous' ? 'operator' : caller);
  };
}

/** The signed-in reviewer's own route; `?as=` picks one of their identities (default: the first). */
export function createMyDelegationHandler(deps: Deps & { requireSignin: boolean }) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    if (!deps.requireSignin || !deps.platformAuth) {
      throw new ValidationError(
        'signin_not_enabled',
        `Managing your own delegation needs App Service Authentication (APPROVAL_REQUIRE_SIGNIN=true, and the platform's WEBSITE_AUTH_ENABLED=true; ${deps.requireSignin ? 'App Service Authentication is off' : 'APPROVAL_REQUIRE_SIGNIN is off'}); ask an operator to use /api/reviewers/{id}/delegation.`,
        { status: 403 },
      );
    }
    const principal = platformPrincipal((h) => request.headers.get(h), true);
    if (!principal || principal.identities.length === 0) {
      throw new ValidationError('signin_required', 'Sign in to manage your delegation.', { status: 401 });
    }
    const as = request.query.get('as')?.trim().toLowerCase();
    if (as && !principal.identities.includes(as)) {
      throw new ValidationError('principal_mismatch', `You are not signed in as ${as}.`, {
        status: 403,
        field: 'as',
      });
    }
    const reviewer = reviewerParam(as ?? principal.identities[0]);
    return handle(deps, request, reviewer, principal.name ?? reviewer);
  };
}

app.http('delegation', {
  route: 'api/reviewers/{id}/delegation',
  methods: ['GET', 'PUT', 'DELETE'],
  authLevel: 'function',
  handler: withProblems(
    withServices((s) =>
      createDelegationHandler({
        delegations: s.delegations,
        now: s.now,
        platformAuth: s.config.WEBSITE_AUTH_ENABLED,
      }),
    ),
  ),
});

app.http('myDelegation', {
  route: 'api/me/delegation',
  methods: ['GET', 'PUT', 'DELETE'],
  authLevel: 'anonymous',
  handler: withProblems(
    withServices((s) =>
      createMyDelegationHandler({
        delegations: s.delegations,
        now: s.now,
        requireSignin: s.config.APPROVAL_REQUIRE_SIGNIN,
        platformAuth: s.config.WEBSITE_AUTH_ENABLED,
      }),
    ),
  ),
});
