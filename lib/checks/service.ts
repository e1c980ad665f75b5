import { ensureError, isNonRetriable, TransientError, ValidationError } from '../errors';
import type { AzureDevOpsClient, HeaderSource } from './azureDevOps';
import { parseAzureDevOpsCheck, requireAllowedPlanUrl } from './azureDevOps';
import type { ConditionSources } from './condition';
import { evaluateCondition } from './condition';
import type { GitHubApp } from './github';
import { githubSignatureMatches, parseProtectionRuleEvent } from './github';
import type { CheckDecision, CheckDocument } from './records';
import {
  AZURE_DEVOPS_TOKEN_LIFE_MS,
  azureDevOpsCheckId,
  CONDITION_FILE,
  describeCondition,
  GITHUB_RULE_LIFE_MS,
  githubCheckId,
  MAX_REPORT_ATTEMPTS,
} from './records';
import type { CheckStore } from './store';

/** What the check endpoints and the reportChecks timer need (built by lib/services.ts `checkDeps`). */
export interface CheckDeps {
  store: CheckStore;
  sources: ConditionSources;
  azureDevOps: AzureDevOpsClient;
  /** Unset when GITHUB_APP_ID / GITHUB_APP_PRIVATE_KEY are not configured. */
  github?: GitHubApp;
  /** GITHUB_WEBHOOK_SECRET. */
  githubWebhookSecret?: string;
  /** AZURE_DEVOPS_ALLOWED_HOSTS, split. */
  allowedHosts: string[];
  /** CHECK_TOKEN_MARGIN_MINUTES in ms. */
  marginMs: number;
  now: () => Date;
}

/** Time left for the token probe at intake: Azure DevOps wants the answer within 3 s. */
const PROBE_TIMEOUT_MS = 1_200;

/**
 * `POST /api/checks/azure-devops`: validates the headers and the condition, refuses a PlanUrl off
 * the allow-list, and (for a new check) writes the first log line with the job's token, which is
 * also how a wrong or dead token is refused before anything is recorded. Then records the check
 * (a repeated delivery finds the first record) and returns; the timer decides and answers.
 *
 * Only a verified token is recorded. When Azure DevOps is slow or unreachable the token cannot be
 * verified, and the request is answered 503 with nothing written: recording it "unverified" would
 * let a forged request change something (a document, sweeps calling out with its token), while a
 * refusal fails closed (the stage waits or fails; it never passes on an unchecked request).
 */
export async function receiveAzureDevOpsCheck(
  deps: CheckDeps,
  headers: HeaderSource,
  body: unknown,
): Promise<{ created: boolean; check: CheckDocument }> {
  const { callback, condition } = parseAzureDevOpsCheck(headers, body);
  requireAllowedPlanUrl(callback.planUrl, deps.allowedHosts);
  const id = azureDevOpsCheckId(callback);
  const existing = await deps.store.get(id);
  if (existing) return { created: false, check: existing.check };

  try {
    await deps.azureDevOps.appendLog(callback, [`Sluice: checking that ${describeCondition(condition)}`], {
      attempts: 1,
      timeoutMs: PROBE_TIMEOUT_MS,
    });
  } catch (err) {
    // A refused token or an unknown plan means the request did not come from that pipeline run.
    if (isNonRetriable(err)) {
      throw new ValidationError(
        'azure_devops_token_rejected',
        `Azure DevOps refused the check's AuthToken for plan ${callback.planId}: ${ensureError(err).message}`,
        { field: 'AuthToken', status: 401 },
      );
    }
    // Slow or unreachable: the token is unverified, so nothing is recorded (503, fail closed).
    throw new TransientError(
      'azure_devops_unverified',
      `could not verify the check's AuthToken with Azure DevOps for plan ${callback.planId} within ${PROBE_TIMEOUT_MS} ms (${ensureError(err).message}); nothing recorded`,
      { cause: err },
    );
  }
  const receivedAt = deps.now();
  return deps.store.record({
    kind: 'azureDevOps',
    id,
    condition,
    status: 'waiting',
    receivedAt: receivedAt.toISOString(),
    answerBy: new Date(receivedAt.getTime() + AZURE_DEVOPS_TOKEN_LIFE_MS - deps.marginMs).toISOString(),
    attempts: 0,
    azureDevOps: callback,
  });
}

const NO_CONDITION = `the deployment names no Sluice condition: commit ${CONDITION_FILE} ({"model": "<name>", "version": <n>}) or create the deployment with payload {"sluice": {...}}`;

export type GitHubReceipt =
  | { outcome: 'pong' }
  | { outcome: 'ignored'; reason: string }
  | { outcome: 'recorded'; created: boolean; check: CheckDocument };

/**
 * `POST /api/checks/github`: refuses a missing or wrong `X-Hub-Signature-256` before reading the
 * body as JSON, answers `ping`, ignores other events, and records a `deployment_protection_rule`
 * request. A deployment that names no condition is recorded already decided (rejected), so GitHub
 * is answered rather than left waiting 30 days.
 */
export async function receiveGitHubEvent(
  deps: CheckDeps,
  input: { rawBody: string; signature: string | null; event: string | null },
): Promise<GitHubReceipt> {
  if (!deps.githubWebhookSecret || !deps.github) {
    throw new ValidationError(
      'github_app_not_configured',
      'set GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_WEBHOOK_SECRET to answer GitHub protection rules',
      { status: 503 },
    );
  }
  if (!githubSignatureMatches(input.rawBody, input.signature, deps.githubWebhookSecret)) {
    throw new ValidationError(
      input.signature ? 'signature_mismatch' : 'signature_missing',
      input.signature
        ? 'X-Hub-Signature-256 does not match the body with the webhook secret'
        : 'X-Hub-Signature-256 is missing: the request is not from the GitHub App',
      { field: 'x-hub-signature-256', status: 401 },
    );
  }
  if (input.event === 'ping') return { outcome: 'pong' };
  if (input.event !== 'deployment_protection_rule') {
    return {
      outcome: 'ignored',
      reason: `event ${input.event ?? '(none)'} is not deployment_protection_rule`,
    };
  }
  let body: unknown;
  try {
    body = JSON.parse(input.rawBody) as unknown;
  } catch (err) {
    throw new ValidationError('invalid_json', `the body is not valid JSON: ${(err as Error).message}`, {
      field: '(body)',
    });
  }
  const request = parseProtectionRuleEvent(body);
  if (request.action !== 'requested') return { outcome: 'ignored', reason: `action ${request.action}` };
  deps.github.requireCallbackUrl(request.callback.callbackUrl);
  const receivedAt = deps.now();
  // No condition in the payload: the deployed commit's CONDITION_FILE is read by the timer; with
  // no commit either, there is nothing to wait for.
  const decision: CheckDecision | undefined =
    request.condition || request.callback.sha
      ? undefined
      : {
          result: 'failed',
          code: 'condition_missing',
          message: NO_CONDITION,
          evidenceUrl: `${deps.sources.publicBaseUrl}/api/models`,
          decidedAt: receivedAt.toISOString(),
        };
  const recorded = await deps.store.record({
    kind: 'github',
    id: githubCheckId(request.callback),
    ...(request.condition ? { condition: request.condition } : {}),
    status: decision ? 'reporting' : 'waiting',
    ...(decision ? { decision } : {}),
    receivedAt: receivedAt.toISOString(),
    answerBy: new Date(receivedAt.getTime() + GITHUB_RULE_LIFE_MS - deps.marginMs).toISOString(),
    attempts: 0,
    github: request.callback,
  });
  return { outcome: 'recorded', ...recorded };
}

export interface SweepResult {
  decided: { id: string; result: string; code: string }[];
  reported: string[];
  undeliverable: { id: string; error: string }[];
  waiting: number;
  /** Failed attempts that will be tried again on the next tick. */
  retrying: { id: string; error: string }[];
}

function decisionLine(d: CheckDecision): string {
  const verdict = d.result === 'succeeded' ? 'passed' : 'failed';
  return `Sluice: ${verdict} (${d.code}): ${d.message}. Evidence: ${d.evidenceUrl}`;
}

async function deliver(deps: CheckDeps, check: CheckDocument, d: CheckDecision): Promise<void> {
  if (check.kind === 'azureDevOps') {
    // The log line tells people why; the event is the decision. A log line that fails must not
    // keep the decision from being delivered.
    await deps.azureDevOps.appendLog(check.azureDevOps, [decisionLine(d)]).catch(() => undefined);
    await deps.azureDevOps.taskCompleted(check.azureDevOps, d.result);
    return;
  }
  if (!deps.github) {
    throw new ValidationError(
      'github_app_not_configured',
      'GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY are not set',
      {
        status: 503,
      },
    );
  }
  await deps.github.review(check.github, d.result === 'succeeded' ? 'approved' : 'rejected', decisionLine(d));
}

/**
 * A GitHub check whose deployment carried no condition: the deployed commit's CONDITION_FILE names
 * it, or the check is decided as rejected (no file: `condition_missing`; a bad one: its error).
 */
async function conditionFromCommit(
  deps: CheckDeps,
  check: CheckDocument & { kind: 'github' },
): Promise<CheckDocument> {
  const reject = (code: string, message: string): CheckDocument => ({
    ...check,
    status: 'reporting',
    decision: {
      result: 'failed',
      code,
      message,
      evidenceUrl: `${deps.sources.publicBaseUrl}/api/models`,
      decidedAt: deps.now().toISOString(),
    },
  });
  if (!deps.github) return check;
  try {
    const condition = await deps.github.conditionAtCommit(check.github);
    return condition ? { ...check, condition } : reject('condition_missing', NO_CONDITION);
  } catch (err) {
    if (err instanceof ValidationError) return reject(err.code, err.message);
    throw err;
  }
}

/**
 * One pass over the open checks (the reportChecks timer, every minute; `only` narrows it, for a
 * nudge when a run ends or an alias moves, lib/checks/nudge.ts): decide what can be decided
 * from the registry and the run store, fail what would outlive the caller's token, and deliver
 * decisions. Every state change is an ETag-conditioned replace, so two overlapping passes cannot
 * both deliver; delivery is retried a bounded number of times, then the check is undeliverable.
 */
export async function sweepChecks(
  deps: CheckDeps,
  options: { only?: (check: CheckDocument) => boolean } = {},
): Promise<SweepResult> {
  const out: SweepResult = { decided: [], reported: [], undeliverable: [], waiting: 0, retrying: [] };
  const open = await deps.store.listOpen();
  for (const found of options.only ? open.filter((o) => options.only!(o.check)) : open) {
    let { check, etag } = found;
    try {
      const beforeHorizon = deps.now().getTime() < Date.parse(check.answerBy);
      if (check.status === 'waiting' && !check.condition && check.kind === 'github' && beforeHorizon) {
        const resolved = await conditionFromCommit(deps, check);
        const replaced = await deps.store.replace(resolved, etag);
        if (!replaced.ok) continue;
        check = resolved;
        etag = replaced.etag;
        if (check.decision) {
          out.decided.push({ id: check.id, result: check.decision.result, code: check.decision.code });
        }
      }
      if (check.status === 'waiting') {
        const now = deps.now();
        let decision: CheckDecision | undefined;
        const state = check.condition ? await evaluateCondition(check.condition, deps.sources) : undefined;
        if (state?.decided) {
          decision = {
            result: state.result,
            code: state.code,
            message: state.message,
            evidenceUrl: state.evidenceUrl,
            decidedAt: now.toISOString(),
          };
        } else if (now.getTime() >= Date.parse(check.answerBy)) {
          const what =
            check.kind === 'azureDevOps' ? "the Azure DevOps job's token (48 h)" : "GitHub's 30-day wait";
          decision = {
            result: 'failed',
            code: 'token_expiring',
            message: `still undecided before ${what} ends: ${state?.message ?? describeCondition(check.condition)}; re-run the stage once Sluice has decided`,
            evidenceUrl: state?.evidenceUrl ?? deps.sources.publicBaseUrl,
            decidedAt: now.toISOString(),
          };
        }
        if (!decision) {
          out.waiting++;
          continue;
        }
        const next: CheckDocument = { ...check, status: 'reporting', decision };
        const replaced = await deps.store.replace(next, etag);
        if (!replaced.ok) continue; // another pass took it
        check = next;
        etag = replaced.etag;
        out.decided.push({ id: check.id, result: decision.result, code: decision.code });
      }
      const decision = check.decision!;
      try {
        await deliver(deps, check, decision);
      } catch (err) {
        const error = ensureError(err).message.slice(0, 2000);
        const attempts = check.attempts + 1;
        const giveUp = isNonRetriable(err) || attempts >= MAX_REPORT_ATTEMPTS;
        await deps.store.replace(
          { ...check, attempts, lastError: error, ...(giveUp ? { status: 'undeliverable' as const } : {}) },
          etag,
        );
        (giveUp ? out.undeliverable : out.retrying).push({ id: check.id, error });
        continue;
      }
      await deps.store.replace({ ...check, status: 'reported', reportedAt: deps.now().toISOString() }, etag);
      out.reported.push(check.id);
    } catch (err) {
      // The store or a source failed: leave the check as it is for the next pass.
      out.retrying.push({ id: check.id, error: ensureError(err).message });
    }
  }
  return out;
}
