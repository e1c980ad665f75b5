import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * Deployment checks: an Azure DevOps "Invoke REST API / Azure Function" check (callback mode) or a
 * GitHub custom deployment protection rule, asking Sluice whether something holds before a stage or
 * a deployment may go on. One document per check in the Cosmos container `checks` (partition key
 * `/id`), written before the caller gets its 200; the reportChecks timer decides it and answers.
 */

/** What must hold: a model version approved and deployed by Sluice, or a run that succeeded. */
export const checkConditionSchema = z.union([
  z
    .object({
      model: z.string().min(1).max(128),
      version: z.coerce.number().int().positive(),
    })
    .strict(),
  z.object({ run: z.string().min(1).max(256) }).strict(),
]);
export type CheckCondition = z.infer<typeof checkConditionSchema>;

/** The callback coordinates of an Azure DevOps check (the documented headers). */
export const azureDevOpsCallbackSchema = z.object({
  planUrl: z.url(),
  projectId: z.string().min(1).max(100),
  hubName: z.string().min(1).max(100),
  planId: z.string().min(1).max(100),
  jobId: z.string().min(1).max(100),
  timelineId: z.string().min(1).max(100),
  taskInstanceId: z.string().min(1).max(100),
  /** The job access token (system.AccessToken): lives 48 h, scoped to the pipeline run. */
  authToken: z.string().min(1).max(8192),
});
export type AzureDevOpsCallback = z.infer<typeof azureDevOpsCallbackSchema>;

/** Where a GitHub protection rule is answered, and as whom. */
export const githubCallbackSchema = z.object({
  /** `deployment_callback_url` of the event: POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule. */
  callbackUrl: z.url(),
  environment: z.string().min(1).max(255),
  installationId: z.number().int().positive(),
  repository: z.string().min(1).max(255),
  deploymentId: z.number().int().positive().optional(),
  /** The commit being deployed: its CONDITION_FILE names the condition when the payload does not. */
  sha: z
    .string()
    .regex(/^[0-9a-f]{40,64}$/)
    .optional(),
});
export type GitHubCallback = z.infer<typeof githubCallbackSchema>;

export const checkStatusSchema = z.enum([
  /** Recorded; the condition is not decided yet. */
  'waiting',
  /** Decided (the decision is on the document); the answer has not been accepted yet. */
  'reporting',
  /** The caller accepted the answer. */
  'reported',
  /** The caller refused the answer for good (token rejected, check gone) or retries ran out. */
  'undeliverable',
]);
export type CheckStatus = z.infer<typeof checkStatusSchema>;

export const checkDecisionSchema = z.object({
  result: z.enum(['succeeded', 'failed']),
  /** snake_case: why (condition_met, run_stopped, token_expiring, ...). */
  code: z.string(),
  message: z.string().max(2000),
  /** Sluice's evidence for it (the run or the model). */
  evidenceUrl: z.string(),
  decidedAt: z.iso.datetime(),
});
export type CheckDecision = z.infer<typeof checkDecisionSchema>;

const checkBase = {
  id: z.string(),
  /** Absent only when a GitHub deployment named none: then the check is rejected at once. */
  condition: checkConditionSchema.optional(),
  status: checkStatusSchema,
  receivedAt: z.iso.datetime(),
  /** The last moment an answer can still reach the caller (token life minus the margin). */
  answerBy: z.iso.datetime(),
  decision: checkDecisionSchema.optional(),
  /** Failed attempts to deliver the answer; bounded by MAX_REPORT_ATTEMPTS. */
  attempts: z.number().int().min(0).default(0),
  lastError: z.string().max(2000).optional(),
  reportedAt: z.iso.datetime().optional(),
};

export const checkDocumentSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('azureDevOps'), ...checkBase, azureDevOps: azureDevOpsCallbackSchema }),
  z.object({ kind: z.literal('github'), ...checkBase, github: githubCallbackSchema }),
]);
export type CheckDocument = z.infer<typeof checkDocumentSchema>;
export type CheckKind = CheckDocument['kind'];

/** Delivery attempts (one per timer tick, each with its own bounded HTTP retries) before giving up. */
export const MAX_REPORT_ATTEMPTS = 10;

/** The Azure DevOps job access token lives 48 hours (docs/delivery.md). */
export const AZURE_DEVOPS_TOKEN_LIFE_MS = 48 * 3600_000;
/** GitHub fails a deployment whose protection rule has not answered in 30 days. */
export const GITHUB_RULE_LIFE_MS = 30 * 24 * 3600_000;

/**
 * A check's id, from what identifies it at the caller, so a repeated delivery (Azure DevOps tries up
 * to 10 times; GitHub redelivers) finds the same document: one check per stage attempt's task, one
 * per workflow run, environment and deployment.
 */
export function checkIdOf(kind: CheckKind, key: string): string {
  return `${kind}-${createHash('sha256').update(`${kind}\n${key}`).digest('hex').slice(0, 40)}`;
}

export function azureDevOpsCheckId(
  cb: Pick<AzureDevOpsCallback, 'planId' | 'jobId' | 'taskInstanceId'>,
): string {
  return checkIdOf('azureDevOps', `${cb.planId}/${cb.jobId}/${cb.taskInstanceId}`.toLowerCase());
}

export function githubCheckId(
  cb: Pick<GitHubCallback, 'callbackUrl' | 'environment' | 'deploymentId'>,
): string {
  // A re-run of the workflow keeps its run id (and so the callback URL) but makes a new deployment.
  return checkIdOf('github', `${cb.callbackUrl}\n${cb.environment}\n${cb.deploymentId ?? ''}`);
}

/**
 * Where a deployed commit names its condition when the deployment's payload does not (GitHub
 * Actions jobs create their deployments without a payload): the model version the code needs.
 */
export const CONDITION_FILE = '.sluice/deployment.json';

/** A readable name of the condition, for messages. */
export function describeCondition(c: CheckCondition | undefined): string {
  if (!c) return 'no condition';
  return 'run' in c
    ? `run ${c.run} succeeded`
    : `model ${c.model} version ${c.version} approved and deployed`;
}
