import { z } from 'zod';
import { candidateSchema } from './approvalRecord';
import { defineActivity } from './activity';

/**
 * Deployment: move the registry's `production` alias to the approved version. Input names the
 * approval and the exact candidate; the activity checks both against Cosmos before moving.
 */
export const deployModelActivity = defineActivity(
  'deployModel',
  z.object({
    runId: z.string().min(1),
    pipeline: z.string().min(1),
    approvalId: z.string().min(1),
    /**
     * This deployment's id: the orchestration execution's (deterministic on replay, new for a
     * restarted or duplicated execution). The approval is consumed by exactly one deployment id.
     */
    deploymentId: z.string().min(1).max(200),
    candidate: candidateSchema,
    /**
     * The production version the candidate was evaluated and approved against (null: none). If the
     * alias has moved since, the deployment is refused rather than replacing someone else's model.
     */
    expectedProduction: z.int().positive().nullable(),
  }),
  z.object({
    modelName: z.string(),
    version: z.int().positive(),
    previous: z.int().positive().nullable(),
    /** False when the alias already pointed at the version (a retried activity). */
    moved: z.boolean(),
    aliasMoveSeq: z.int().positive().nullable(),
    deployedAt: z.iso.datetime(),
    recordedOnRun: z.boolean(),
  }),
);
export type DeployModelInput = z.input<typeof deployModelActivity.input>;
export type DeployModelOutput = z.infer<typeof deployModelActivity.output>;

/**
 * Takes the model's deployment lock for a run (lib/registry/deployLock.ts): one deployment of a
 * model at a time, held until the run ends. Not granted: the run that holds it, and why it waits.
 */
export const takeDeploymentLockActivity = defineActivity(
  'takeDeploymentLock',
  z.object({
    runId: z.string().min(1),
    pipeline: z.string().min(1),
    modelName: z.string().min(1),
    at: z.iso.datetime(),
  }),
  z.object({
    granted: z.boolean(),
    /** Not granted: the run holding the lock. */
    holder: z.object({ runId: z.string(), pipeline: z.string() }).optional(),
    /** Granted by taking over from a run that had ended without releasing. */
    tookOverFrom: z.object({ runId: z.string(), pipeline: z.string() }).optional(),
    reason: z.string().max(1_000).optional(),
  }),
);
export type TakeDeploymentLockOutput = z.infer<typeof takeDeploymentLockActivity.output>;
