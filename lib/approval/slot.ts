import type { CosmosStore } from '../storage/cosmos';
import { CosmosLease } from '../storage/lease';

/**
 * The approval slot of a pipeline: at most one run of a pipeline at a time asks people to approve
 * (and then deploys). One small document per pipeline in the `approvals` container (partition
 * `slot:<pipeline>`, never a run id), a lease (lib/storage/lease.ts): claimed with a conditional
 * create or an ETag-conditioned replace, so of two concurrent claims exactly one wins. The holder
 * releases it when its run ends; a holder whose run has ended without releasing (a crash, a
 * terminated orchestration) is taken over, so a lost release never blocks a pipeline.
 */

const SLOT_ID = 'approval-slot';

export const slotPartition = (pipeline: string): string => `slot:${pipeline}`;

interface SlotDoc {
  id: typeof SLOT_ID;
  type: 'slot';
  runId: string;
  pipeline: string;
  /** The run holding the slot, or null when free. */
  holder: string | null;
  claimedAt?: string;
}

export type SlotClaim = { granted: true } | { granted: false; holder: string; claimedAt?: string };

export class ApprovalSlots {
  private readonly lease: CosmosLease<SlotDoc, string>;

  constructor(cosmos: Pick<CosmosStore, 'read' | 'create' | 'replace'>) {
    this.lease = new CosmosLease<SlotDoc, string>(cosmos, {
      container: 'approvals',
      id: SLOT_ID,
      partition: slotPartition,
      fresh: (pipeline, runId, at) => ({
        id: SLOT_ID,
        type: 'slot',
        runId: slotPartition(pipeline),
        pipeline,
        holder: runId,
        claimedAt: at,
      }),
      hold: ({ id, type, runId, pipeline, claimedAt }, holder, at) => ({
        id,
        type,
        runId,
        pipeline,
        holder,
        ...(holder === null ? {} : at ? { claimedAt: at } : claimedAt ? { claimedAt } : {}),
      }),
      holderOf: (doc) => doc.holder ?? '',
      idOf: (runId) => runId,
      busyCode: 'approval_slot_busy',
      describe: (pipeline) => `approval slot of ${pipeline}`,
    });
  }

  /**
   * Claims the slot for `runId`. Granted when free, already held by this run (a retried activity),
   * or held by a run `isActive` says has ended; otherwise names the holder.
   */
  async claim(
    pipeline: string,
    runId: string,
    at: string,
    isActive: (holder: string) => Promise<boolean>,
  ): Promise<SlotClaim> {
    const taken = await this.lease.take(pipeline, runId, at, isActive);
    if (taken.granted) return { granted: true };
    if ('ahead' in taken) return { granted: false, holder: taken.ahead }; // no turn is given: never
    const { claimedAt } = taken.current;
    return { granted: false, holder: taken.holder, ...(claimedAt ? { claimedAt } : {}) };
  }

  /** Frees the slot if `runId` holds it; a no-op otherwise (idempotent). */
  release(pipeline: string, runId: string): Promise<boolean> {
    return this.lease.release(pipeline, runId);
  }

  async holder(pipeline: string): Promise<string | null> {
    return (await this.lease.read(pipeline))?.holder ?? null;
  }
}
