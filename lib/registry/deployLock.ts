import { TransientError } from '../errors';
import type { CosmosStore, Stored } from '../storage/cosmos';

/**
 * The deployment lock of a model: at most one run deploys a model at a time (its direct deploy or
 * its whole staged rollout), whichever pipelines the runs belong to. One small lease document per
 * model in the `models` container (partition = the model name, id `deployment-lock`, kind
 * `deploymentLock`, so the registry's and rollouts' queries never see it), taken with a
 * conditional create or an ETag-conditioned replace: of two concurrent takes exactly one wins.
 *
 * The holder's run releases it when the run ends, whoever ends it (lib/runs/ending.ts `endRun`:
 * the orchestration's finishRun, a cancel, reconciliation). A holder whose run has ended without
 * releasing (a crash between the two writes, a terminated orchestration nobody reconciled yet) is
 * taken over by the next taker, so a lost release never wedges a model.
 */

export const DEPLOYMENT_LOCK_ID = 'deployment-lock';
const MAX_ATTEMPTS = 8;

/** The run holding (or asking for) a model's deployment lock. */
export interface LockHolder {
  runId: string;
  pipeline: string;
}

interface LockDoc {
  id: typeof DEPLOYMENT_LOCK_ID;
  kind: 'deploymentLock';
  modelName: string;
  /** The run holding the lock, or null when free. */
  holder: string | null;
  holderPipeline?: string;
  takenAt?: string;
}

export type LockTake =
  { granted: true; tookOverFrom?: LockHolder } | { granted: false; holder: LockHolder; takenAt?: string };

export class DeploymentLocks {
  constructor(private readonly cosmos: Pick<CosmosStore, 'read' | 'create' | 'replace'>) {}

  /**
   * Takes the lock of `modelName` for `who`. Granted when free, already held by this run (a
   * retried activity), or held by a run `isActive` says has ended (a takeover, named in the
   * answer); otherwise names the holder.
   */
  async take(
    modelName: string,
    who: LockHolder,
    at: string,
    isActive: (holder: LockHolder) => Promise<boolean>,
  ): Promise<LockTake> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(modelName);
      if (!current) {
        const doc: LockDoc = {
          id: DEPLOYMENT_LOCK_ID,
          kind: 'deploymentLock',
          modelName,
          holder: who.runId,
          holderPipeline: who.pipeline,
          takenAt: at,
        };
        if ((await this.cosmos.create('models', doc)).ok) return { granted: true };
        continue; // someone created it first: read it again
      }
      if (current.holder === who.runId) return { granted: true };
      const held = current.holder !== null ? holderOf(current) : undefined;
      if (held && (await isActive(held))) {
        return { granted: false, holder: held, ...(current.takenAt ? { takenAt: current.takenAt } : {}) };
      }
      const change = { holder: who.runId, holderPipeline: who.pipeline, takenAt: at };
      if (await this.replace(current, change)) {
        return { granted: true, ...(held ? { tookOverFrom: held } : {}) };
      }
    }
    throw new TransientError(
      'deployment_lock_busy',
      `deployment lock of ${modelName}: too many concurrent takes`,
    );
  }

  /**
   * Frees the lock if `runId` holds it; false (and nothing changes) otherwise, so a run that does
   * not hold it can never free someone else's. Idempotent.
   */
  async release(modelName: string, runId: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(modelName);
      if (!current || current.holder !== runId) return false;
      if (await this.replace(current, { holder: null })) return true;
    }
    throw new TransientError(
      'deployment_lock_busy',
      `deployment lock of ${modelName}: too many concurrent changes`,
    );
  }

  /** The run holding the lock of `modelName`, or null when it is free. */
  async holder(modelName: string): Promise<(LockHolder & { takenAt?: string }) | null> {
    const current = await this.read(modelName);
    if (!current || current.holder === null) return null;
    return { ...holderOf(current), ...(current.takenAt ? { takenAt: current.takenAt } : {}) };
  }

  private read(modelName: string): Promise<Stored<LockDoc> | undefined> {
    return this.cosmos.read<LockDoc>('models', DEPLOYMENT_LOCK_ID, modelName);
  }

  /** ETag-conditioned replace; false when someone else changed the lock first. */
  private async replace(current: Stored<LockDoc>, change: Partial<LockDoc>): Promise<boolean> {
    const { id, kind, modelName, holder, holderPipeline, takenAt } = current;
    const next: LockDoc = {
      id,
      kind,
      modelName,
      holder,
      ...(holderPipeline ? { holderPipeline } : {}),
      ...(takenAt ? { takenAt } : {}),
      ...change,
    };
    if (next.holder === null) {
      delete next.holderPipeline;
      delete next.takenAt;
    }
    return (await this.cosmos.replace('models', next, current._etag)).ok;
  }
}

const holderOf = (doc: LockDoc): LockHolder => ({
  runId: doc.holder ?? '',
  pipeline: doc.holderPipeline ?? '',
});
