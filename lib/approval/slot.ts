import type { Container } from '@azure/cosmos';
import { NonRetriableError, TransientError } from '../errors';
import { cosmosStatus } from './store';

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
  _etag?: string;
}

export type SlotClaim = { granted: true } | { granted: false; holder: string; claimedAt?: string };

export class ApprovalSlots {
  constructor(private readonly container: Container) {}

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
    const partition = slotPartition(pipeline);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.read(pipeline);
      if (!current) {
        const doc: SlotDoc = {
          id: SLOT_ID,
          type: 'slot',
          runId: partition,
          pipeline,
          holder: runId,
          claimedAt: at,
        };
        try {
          await this.container.items.create(doc);
          return { granted: true };
        } catch (err) {
          if (cosmosStatus(err) === 409) continue; // someone created it first: read it again
          throw wrap(err, 'claim approval slot');
        }
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

  private async read(pipeline: string): Promise<SlotDoc | undefined> {
    try {
      const { resource } = await this.container.item(SLOT_ID, slotPartition(pipeline)).read<SlotDoc>();
      return resource ?? undefined;
    } catch (err) {
      if (cosmosStatus(err) === 404) return undefined;
      throw wrap(err, 'read approval slot');
    }
  }

  /** ETag-conditioned replace; false when someone else changed the slot first. */
  private async replace(current: SlotDoc, change: Partial<SlotDoc>): Promise<boolean> {
    const { _etag: etag, ...rest } = current;
    const next: SlotDoc = { ...stripSystem(rest), ...change };
    if (next.holder === null) delete next.claimedAt;
    try {
      await this.container
        .item(SLOT_ID, current.runId)
        .replace(next, { accessCondition: { type: 'IfMatch', condition: etag ?? '' } });
      return true;
    } catch (err) {
      if (cosmosStatus(err) === 412) return false;
      throw wrap(err, 'write approval slot');
    }
  }
}

function stripSystem(doc: Omit<SlotDoc, '_etag'>): SlotDoc {
  const out = { ...doc } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (k.startsWith('_')) delete out[k];
  return out as unknown as SlotDoc;
}

function wrap(err: unknown, what: string): Error {
  const code = cosmosStatus(err);
  const message = `${what}: ${(err as Error)?.message ?? String(err)}`;
  if (code === undefined || code === 408 || code === 429 || code >= 500)
    return new TransientError('cosmos_unavailable', message, { cause: err });
  return new NonRetriableError('cosmos_rejected', message, { cause: err });
}
