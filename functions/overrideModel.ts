import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import * as df from 'durable-functions';
import { z } from 'zod';
import { getServices } from '../app/services';
import { overrideNotice, overrideReviewPolicy } from '../lib/approval/overrideReview';
import { readClientRoles, requesterOf } from '../lib/approval/principal';
import type { ApprovalStore } from '../lib/approval/store';
import type { AuditSink } from '../lib/audit/log';
import { startNudge } from '../lib/checks/nudge';
import { durationMs } from '../lib/contracts/approvalPolicy';
import { approvalGateOrchestration } from '../lib/contracts/orchestrations';
import type { overrideReviewInputSchema } from '../lib/contracts/overrideReview';
import {
  OVERRIDE_REVIEW_ORCHESTRATOR,
  overrideReviewOrchestration,
  overrideReviewRunId,
} from '../lib/contracts/overrideReview';
import { ValidationError } from '../lib/errors';
import { zodProblem } from '../lib/http/problem';
import type { Notifier } from '../lib/notify/types';
import type { PipelineDefinition } from '../lib/pipelines/definition';
import type { PipelineStore } from '../lib/pipelines/store';
import type { OverrideMark } from '../lib/registry/records';
import { OVERRIDE_PREFIX, PRODUCTION_ALIAS } from '../lib/registry/records';
import type { ModelRegistry } from '../lib/registry/registry';
import { checkDeps } from '../lib/services';
import { requireJsonContentType, withProblems } from './support/http';
import { durableOrchestrations } from './support/reconcile';

/**
 * `POST /api/models/{name}/override` `{version, reason}`: the emergency override
 * (docs/governance.md). Moves `production` to a registered version without the approval quorum,
 * through the registry like every deployment (audited as `override.deployed`, anchored), marks the
 * version "override, review required", tells every reviewer of the pipeline at once and starts the
 * post-hoc review (the ordinary approval gate; its outcome is written on the version).
 *
 * Who may: with App Service Authentication (APPROVAL_REQUIRE_SIGNIN=true) a caller whose principal
 * holds the `Sluice.BreakGlass` app role, the function key being needed as for every API route;
 * without it (locally) the principal headers prove nothing, so the function is registered at the
 * `admin` auth level and the host itself lets only the master key through. A caller who reaches
 * the handler without the role gets 403 and an `override.refused` audit entry; nothing moves.
 */

export const BREAK_GLASS_ROLE = 'Sluice.BreakGlass';

/** Who the actor is when the host's master key was the proof (no principal to name). */
export const MASTER_KEY_ACTOR = 'master key';

const bodySchema = z
  .object({
    version: z.int().positive(),
    reason: z.string().trim().min(10, 'say why the quorum is bypassed (at least 10 characters)').max(2000),
  })
  .strict();

export interface OverrideDeps {
  registry: Pick<ModelRegistry, 'getModel' | 'moveAlias' | 'setOverrideMark'>;
  pipelines: Pick<PipelineStore<PipelineDefinition>, 'get'>;
  approvals: Pick<ApprovalStore, 'findByCandidate'>;
  audit: AuditSink;
  notifier: () => Promise<Notifier>;
  requireSignin: boolean;
  now: () => Date;
  /** Starts the review orchestration unless an instance with this id exists. */
  startReview: (instanceId: string, input: z.input<typeof overrideReviewInputSchema>) => Promise<void>;
  /** After the move, so this instance's scoring cache answers with the new version at once. */
  onMoved?: (modelName: string) => void;
}

function refuseBody(code: string, message: string, field: string): ValidationError {
  return new ValidationError(code, message, { field });
}

export function createOverrideHandler(deps: OverrideDeps) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    requireJsonContentType(request);
    const name = request.params.name ?? '';
    let raw: unknown;
    try {
      raw = await request.json();
    } catch {
      throw refuseBody('invalid_json', 'The body must be JSON: {"version": N, "reason": "..."}.', '(body)');
    }
    if (typeof raw === 'object' && raw !== null && 'by' in raw) {
      throw refuseBody(
        'by_not_accepted',
        'Who overrode is the caller the platform reports, never a body field: remove "by".',
        'by',
      );
    }
    const parsed = bodySchema.safeParse(raw);
    if (!parsed.success) return zodProblem(parsed.error);
    const { version, reason } = parsed.data;
    const header = (h: string) => request.headers.get(h);

    // Who: with App Service Authentication the platform's principal and its roles; without it the
    // host let only the master key in (auth level admin), and the principal headers prove nothing.
    let actor: string;
    if (deps.requireSignin) {
      actor = requesterOf(header);
      const roles = readClientRoles(header);
      if (!roles.includes(BREAK_GLASS_ROLE)) {
        await deps.audit.record({
          kind: 'override.refused',
          actor,
          subject: `model/${name}/${version}`,
          data: { model: name, version, reason, roles, invocationId: context.invocationId },
          key: `override-refused:${context.invocationId}`,
        });
        context.log(`override of ${name} v${version} refused for ${actor}: no ${BREAK_GLASS_ROLE} role`);
        throw new ValidationError(
          'break_glass_role_required',
          `An emergency override needs the ${BREAK_GLASS_ROLE} app role; ${actor} does not hold it. The attempt is recorded in the audit trail.`,
          { status: 403, field: 'role' },
        );
      }
    } else {
      const principal = requesterOf(header);
      actor = principal === 'anonymous' ? MASTER_KEY_ACTOR : `${MASTER_KEY_ACTOR} (${principal})`;
    }

    const model = await deps.registry.getModel(name);
    if (!model)
      throw new ValidationError('model_not_found', `No model named "${name}" is registered.`, {
        status: 404,
        field: 'name',
      });
    const target = model.versions.find((v) => v.version === version);
    if (!target)
      throw new ValidationError('version_not_found', `Model "${name}" has no version ${version}.`, {
        status: 404,
        field: 'version',
      });
    const pipelineName = target.tags.pipeline;
    const pipeline = pipelineName ? await deps.pipelines.get(pipelineName) : undefined;
    if (!pipelineName || !pipeline)
      throw new ValidationError(
        'no_pipeline',
        `Version ${version} of "${name}" names no pipeline Sluice knows, so there are no reviewers to review the override.`,
        { status: 409, field: 'version' },
      );
    const policy = overrideReviewPolicy(pipeline.definition.approval);
    const current = model.head.aliases[PRODUCTION_ALIAS]?.version ?? null;

    // A retried override (its move already in place, by override) finishes what the first left undone.
    const lastMove = [...model.aliasHistory].reverse().find((m) => m.alias === PRODUCTION_ALIAS);
    const alreadyOverridden =
      current === version && lastMove?.to === version && lastMove.reason.startsWith(OVERRIDE_PREFIX);
    if (current === version && !alreadyOverridden)
      throw new ValidationError('already_there', `Production already is version ${version} of "${name}".`, {
        status: 409,
        field: 'version',
      });

    const { move } = await deps.registry.moveAlias({
      modelName: name,
      alias: PRODUCTION_ALIAS,
      to: version,
      ...(alreadyOverridden ? {} : { expectedFrom: current }),
      by: actor,
      reason: `${OVERRIDE_PREFIX}${reason}`,
    });
    if (!move) throw new Error(`override of ${name}: the registry returned no move`);
    deps.onMoved?.(name);

    const reviewRunId = overrideReviewRunId(name, version, move.seq);
    const approvalId = approvalGateOrchestration.instanceId(reviewRunId);
    const now = deps.now();
    const mark = (await deps.registry.setOverrideMark(name, version, (m) =>
      m && m.moveSeq === move.seq
        ? undefined
        : ({
            at: move.at,
            by: move.by,
            reason,
            moveSeq: move.seq,
            review: 'required',
            reviewApprovalId: approvalId,
            reviewRunId,
            reviewDue: new Date(Date.parse(move.at) + durationMs(policy.timeout)).toISOString(),
          } satisfies OverrideMark),
    )) as OverrideMark;

    // The review: the approval gate with the overrider as requester (they cannot review themselves).
    const earlier = (await deps.approvals.findByCandidate(name, version)).sort((a, b) =>
      a.createdAt < b.createdAt ? 1 : -1,
    )[0];
    await deps.startReview(overrideReviewOrchestration.instanceId(reviewRunId), {
      modelName: name,
      version,
      gate: {
        runId: reviewRunId,
        pipeline: pipelineName,
        requestedBy: move.by,
        candidate: {
          modelName: name,
          modelVersion: version,
          modelDigest: target.modelDigest,
          datasetDigest: target.datasetDigest,
        },
        policy,
        evidence: earlier?.evidence ?? {
          production: null,
          verdict: { passed: false, reasons: [`deployed by emergency override: ${reason}`.slice(0, 300)] },
        },
      },
    });

    // Every reviewer of the pipeline, escalation reviewers included, hears of it now.
    const notifier = await deps.notifier();
    const everyone = new Set(
      [
        ...policy.reviewers,
        ...(policy.onTimeout.action === 'escalate' ? policy.onTimeout.reviewers : []),
      ].map((r) => r.toLowerCase()),
    );
    const notified: string[] = [];
    for (const to of everyone) {
      await notifier.send(
        overrideNotice({
          modelName: name,
          version,
          from: move.from,
          by: move.by,
          reason,
          pipeline: pipelineName,
          reviewRunId,
          approvalId,
          reviewDue: mark.reviewDue,
          to,
        }),
      );
      notified.push(to);
    }
    context.log(
      `override of ${name}: production ${move.from ?? 'nothing'} -> ${version} by ${actor}: ${reason}`,
    );
    return {
      status: 200,
      jsonBody: {
        modelName: name,
        from: move.from,
        to: version,
        move,
        override: mark,
        review: { approvalId, runId: reviewRunId, due: mark.reviewDue, reviewers: policy.reviewers },
        notified,
        at: now.toISOString(),
      },
    };
  };
}

/**
 * The function's auth level, from APPROVAL_REQUIRE_SIGNIN as the app loads: `function` when App
 * Service Authentication vouches for the principal (the role is checked in the handler), `admin`
 * otherwise, so the host itself admits only the master key.
 */
export function overrideAuthLevel(requireSignin: string | undefined): 'function' | 'admin' {
  return (z.stringbool().default(false).safeParse(requireSignin).data ?? false) ? 'function' : 'admin';
}

/** Starts the review orchestration unless it exists (a retried override finds the one it started). */
function reviewStarter(context: InvocationContext): OverrideDeps['startReview'] {
  const client = df.getClient(context);
  const exists = durableOrchestrations(context);
  return async (instanceId, input) => {
    if (await exists(instanceId)) return;
    await client.startNew(OVERRIDE_REVIEW_ORCHESTRATOR, { instanceId, input });
  };
}

app.http('overrideModel', {
  route: 'api/models/{name}/override',
  methods: ['POST'],
  // Locally (no App Service Authentication) the host enforces the master key; see above.
  authLevel: overrideAuthLevel(process.env.APPROVAL_REQUIRE_SIGNIN),
  extraInputs: [df.input.durableClient()],
  handler: withProblems(async (request, context) => {
    const s = await getServices();
    return createOverrideHandler({
      registry: s.registry,
      pipelines: s.pipelines,
      approvals: s.approvals,
      audit: s.audit,
      notifier: async () => (await s.approval()).notifier,
      requireSignin: s.config.APPROVAL_REQUIRE_SIGNIN,
      now: s.now,
      startReview: reviewStarter(context),
      onMoved: (name) => {
        s.scoring.invalidate(name);
        // The deployment checks on this model are decided now, not at the next timer tick.
        startNudge(() => checkDeps(s), { aliasMoved: name });
      },
    })(request, context);
  }),
});
