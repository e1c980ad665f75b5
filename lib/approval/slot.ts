import { TransientError } from '../errors';
import type { CosmosStore, Stored } from '../storage/cosmos';

/**
 * The approval slot of a pipeline: at most one run of a pipeline at a time asks people to approve
 * (and then deploys). One small document per pipeline in the `approvals` container (partition
 * `slot:<pipeline>`, never a run id), claimed with a conditional create or an ETag-conditioned
 * replace, so of two concurrent claims exactly one wins. The holder releases it when its run
 * ends; a holder whose run has ended without releasing (a crash, a terminated orchestration) is
 * taken over, so a lost release never blocks a pipeline.
 */

const SLOT_ID = 'approval-slot';
const MAX_ATTEMPTS = 8;

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
  constructor(private readonly cosmos: Pick<CosmosStore, 'read' | 'create' | 'replace'>) {}

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
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(pipeline);
      if (!current) {
        const doc: SlotDoc = {
          id: SLOT_ID,
          type: 'slot',
          runId: slotPartition(pipeline),
          pipeline,
          holder: runId,
          claimedAt: at,
        };
        if ((await this.cosmos.create('approvals', doc)).ok) return { granted: true };
        continue; // someone created it first: read it again
      }
      if (current.holder === runId) return { granted: true };
      if (current.holder !== null && (await isActive(current.holder))) {
        return {
          granted: false,
          holder: current.holder,
          ...(current.claimedAt ? { claimedAt: current.claimedAt } : {}),
        };
      }
      if (await this.replace(current, { holder: runId, claimedAt: at })) return { granted: true };
    }
    throw new TransientError(
      'approval_slot_busy',
      `approval slot of ${pipeline}: too many concurrent claims`,
    );
  }

  /** Frees the slot if `runId` holds it; a no-op otherwise (idempotent). */
  async release(pipeline: string, runId: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(pipeline);
      if (!current || current.holder !== runId) return false;
      if (await this.replace(current, { holder: null })) return true;
    }
    throw new TransientError(
      'approval_slot_busy',
      `approval slot of ${pipeline}: too many concurrent changes`,
    );
  }

  async holder(pipeline: string): Promise<string | null> {
    return (await this.read(pipeline))?.holder ?? null;
  }

  private read(pipeline: string): Promise<Stored<SlotDoc> | undefined> {
    return this.cosmos.read<SlotDoc>('approvals', SLOT_ID, slotPartition(pipeline));
  }

  /** ETag-conditioned replace; false when someone else changed the slot first. */
  private async replace(current: Stored<SlotDoc>, change: Partial<SlotDoc>): Promise<boolean> {
    const { id, type, runId, pipeline, holder, claimedAt } = current;
    const next: SlotDoc = {
      id,
      type,
      runId,
      pipeline,
      holder,
      ...(claimedAt ? { claimedAt } : {}),
      ...change,
    };
    if (next.holder === null) delete next.claimedAt;
    return (await this.cosmos.replace('approvals', next, current._etag)).ok;
  }
}
