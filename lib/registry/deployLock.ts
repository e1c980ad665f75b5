import type { AuditEvent, AuditSink } from '../audit/log';
import type { CosmosStore, Stored } from '../storage/cosmos';
import { CosmosLease } from '../storage/lease';

/**
 * The deployment lock of a model: at most one run deploys a model at a time (its direct deploy or
 * its whole staged rollout), whichever pipelines the runs belong to. One small lease document per
 * model in the `models` container (partition = the model name, id `deployment-lock`, kind
 * `deploymentLock`, so the registry's and rollouts' queries never see it), a lease
 * (lib/storage/lease.ts): of two concurrent takes exactly one wins.
 *
 * The holder's run releases it when the run ends, whoever ends it (lib/runs/ending.ts `endRun`:
 * the orchestration's finishRun, a cancel, reconciliation). A holder whose run has ended without
 * releasing (a crash between the two writes, a terminated orchestration nobody reconciled yet) is
 * taken over by the next taker, so a lost release never wedges a model.
 *
 * Waiters are served in arrival order. A run refused the lock takes a ticket (a document
 * `deployment-lock-ticket:<run>` beside the lock, kind `deploymentLockTicket`) holding the time it
 * first asked; a free lock goes to the waiter with the earliest ticket whose run is live: a later
 * asker is refused, naming the run ahead. A ticket whose run has ended is removed by whoever finds
 * it (and by the run's own ending, through {@link DeploymentLocks.release}); a waiter that has not
 * asked for {@link LOCK_AWAY_MS} (it waits for its deployment window) is passed over but keeps its
 * place. With an audit sink, each wait is two audit entries: {@link LOCK_WAIT_BEGAN} when the
 * ticket is taken, {@link LOCK_WAIT_ENDED} when it goes (granted, or the run ended).
 */

export const DEPLOYMENT_LOCK_ID = 'deployment-lock';
const TICKET_PREFIX = 'deployment-lock-ticket:';

/** Audit event: a run began waiting for a model's deployment lock (holder run, reason). */
export const LOCK_WAIT_BEGAN = 'deployment_lock.wait_began';
/** Audit event: a run's wait for the lock ended (granted, or its run ended), with the seconds waited. */
export const LOCK_WAIT_ENDED = 'deployment_lock.wait_ended';

/**
 * A waiter that has not asked again for this long is passed over (it keeps its place). Waiting
 * runs ask at least once a minute (orchestrators/trainingPipeline.ts LOCK_POLLING); one that
 * stopped asking waits for its deployment window and must not hold up the runs behind it.
 */
export const LOCK_AWAY_MS = 3 * 60_000;

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

/** A waiter's place in line. */
interface TicketDoc {
  id: string;
  kind: 'deploymentLockTicket';
  modelName: string;
  runId: string;
  pipeline: string;
  /** When the run first asked: its place in line (ties: the run id). */
  since: string;
  /** When the run last asked. */
  askedAt: string;
  /** The audit subject of the wait (`model/<name>/<version>`). */
  subject: string;
  /** Why it waits, as first told: the run holding the lock (or ahead in line) and the reason. */
  began: { holder: LockHolder; reason: string };
  /** True once the wait_began audit entry is written. */
  recorded: boolean;
}

/** A run waiting for a model's deployment lock, in line. */
export interface LockWaiter extends LockHolder {
  since: string;
  askedAt: string;
}

export type LockTake =
  | { granted: true; tookOverFrom?: LockHolder }
  | { granted: false; holder: LockHolder; takenAt?: string }
  /** The lock is free (or its holder ended), but `holder` asked earlier and goes first. */
  | { granted: false; holder: LockHolder; ahead: true };

export interface DeploymentLockOptions {
  /** Where lock waits are recorded (docs/governance.md); without it nothing is. */
  audit?: AuditSink;
  now?: () => Date;
}

/** The one line that says why a deployment waits for the lock (run pages, custom status, audit). */
export function lockWaitReason(modelName: string, refused: Extract<LockTake, { granted: false }>): string {
  const h = refused.holder;
  const why =
    'ahead' in refused
      ? `run ${h.runId} of ${h.pipeline} asked for it earlier and goes first`
      : `run ${h.runId} of ${h.pipeline} is deploying it${refused.takenAt ? ` (since ${refused.takenAt})` : ''}`;
  return `waiting for the deployment lock of ${modelName}: ${why}`.slice(0, 1_000);
}

type LockCosmos = Pick<CosmosStore, 'read' | 'create' | 'replace' | 'query' | 'delete'>;

const byPlace = (a: Pick<TicketDoc, 'since' | 'runId'>, b: Pick<TicketDoc, 'since' | 'runId'>): number =>
  Date.parse(a.since) - Date.parse(b.since) || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0);

export class DeploymentLocks {
  private readonly lease: CosmosLease<LockDoc, LockHolder>;
  private readonly now: () => Date;

  constructor(
    private readonly cosmos: LockCosmos,
    private readonly options: DeploymentLockOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.lease = new CosmosLease<LockDoc, LockHolder>(cosmos, {
      container: 'models',
      id: DEPLOYMENT_LOCK_ID,
      partition: (modelName) => modelName,
      fresh: (modelName, who, at) => ({
        id: DEPLOYMENT_LOCK_ID,
        kind: 'deploymentLock',
        modelName,
        holder: who.runId,
        holderPipeline: who.pipeline,
        takenAt: at,
      }),
      hold: ({ id, kind, modelName }, who, at) => ({
        id,
        kind,
        modelName,
        ...(who
          ? { holder: who.runId, holderPipeline: who.pipeline, ...(at ? { takenAt: at } : {}) }
          : { holder: null }),
      }),
      holderOf: (doc) => ({ runId: doc.holder ?? '', pipeline: doc.holderPipeline ?? '' }),
      idOf: (who) => who.runId,
      busyCode: 'deployment_lock_busy',
      describe: (modelName) => `deployment lock of ${modelName}`,
    });
  }

  /**
   * Takes the lock of `modelName` for `who`. Granted when free and nobody live asked earlier,
   * already held by this run (a retried activity), or held by a run `isActive` says has ended (a
   * takeover, named in the answer); otherwise names the holder, or the waiter ahead (`ahead`). A
   * refused run keeps (or takes) its ticket; a granted one gives its ticket back. `subject` is the
   * audit subject of the wait (default `model/<name>`).
   */
  async take(
    modelName: string,
    who: LockHolder,
    at: string,
    isActive: (holder: LockHolder) => Promise<boolean>,
    options: { subject?: string } = {},
  ): Promise<LockTake> {
    let seen: Stored<TicketDoc>[] | undefined;
    const turn = async (): Promise<LockHolder | undefined> => {
      seen = await this.tickets(modelName);
      const place = seen.find((t) => t.runId === who.runId) ?? { since: at, runId: who.runId };
      for (const t of seen) {
        if (t.runId === who.runId) continue;
        if (byPlace(t, place) > 0) break;
        const waiter = { runId: t.runId, pipeline: t.pipeline };
        if (!(await isActive(waiter))) {
          await this.endWait(t, 'run_ended', at); // a waiter that ended loses its ticket
          continue;
        }
        if (Date.parse(at) - Date.parse(t.askedAt) > LOCK_AWAY_MS) continue; // away: passed over
        return waiter;
      }
      return undefined;
    };
    const taken = await this.lease.take(modelName, who, at, isActive, turn);
    if (taken.granted) {
      const mine = seen ? seen.find((t) => t.runId === who.runId) : await this.ticket(modelName, who.runId);
      if (mine) await this.endWait(mine, 'granted', at, taken.tookOverFrom);
      return { granted: true, ...(taken.tookOverFrom ? { tookOverFrom: taken.tookOverFrom } : {}) };
    }
    const refused: Extract<LockTake, { granted: false }> =
      'ahead' in taken
        ? { granted: false, holder: taken.ahead, ahead: true }
        : {
            granted: false,
            holder: taken.holder,
            ...(taken.current.takenAt ? { takenAt: taken.current.takenAt } : {}),
          };
    await this.wait(modelName, who, at, refused, options.subject ?? `model/${modelName}`);
    return refused;
  }

  /**
   * Frees the lock if `runId` holds it; false (and nothing changes) otherwise, so a run that does
   * not hold it can never free someone else's. Idempotent. A run that was waiting in line (ended
   * while it waited) gives its own ticket back either way.
   */
  async release(modelName: string, runId: string): Promise<boolean> {
    const released = await this.lease.release(modelName, runId);
    const mine = await this.ticket(modelName, runId);
    if (mine) await this.endWait(mine, 'run_ended', this.now().toISOString());
    return released;
  }

  /** The run holding the lock of `modelName`, or null when it is free. */
  async holder(modelName: string): Promise<(LockHolder & { takenAt?: string }) | null> {
    const current = await this.lease.read(modelName);
    if (!current || current.holder === null) return null;
    return {
      runId: current.holder,
      pipeline: current.holderPipeline ?? '',
      ...(current.takenAt ? { takenAt: current.takenAt } : {}),
    };
  }

  /** The runs waiting for the lock of `modelName`, first in line first. */
  async waiting(modelName: string): Promise<LockWaiter[]> {
    return (await this.tickets(modelName)).map(({ runId, pipeline, since, askedAt }) => ({
      runId,
      pipeline,
      since,
      askedAt,
    }));
  }

  /** Takes (or keeps) `who`'s ticket, records the wait's beginning once, and notes that it asked. */
  private async wait(
    modelName: string,
    who: LockHolder,
    at: string,
    refused: Extract<LockTake, { granted: false }>,
    subject: string,
  ): Promise<void> {
    let ticket = await this.ticket(modelName, who.runId);
    if (!ticket) {
      const doc: TicketDoc = {
        id: `${TICKET_PREFIX}${who.runId}`,
        kind: 'deploymentLockTicket',
        modelName,
        runId: who.runId,
        pipeline: who.pipeline,
        since: at,
        askedAt: at,
        subject,
        began: { holder: refused.holder, reason: lockWaitReason(modelName, refused) },
        recorded: false,
      };
      const created = await this.cosmos.create('models', doc);
      ticket = created.ok ? created.doc : await this.ticket(modelName, who.runId);
      if (!ticket) return; // taken and removed at once by a racer that found this run ended
    }
    if (!ticket.recorded && this.options.audit) await this.options.audit.record(beganEvent(ticket));
    // The entry first, then the note: a failed write between them records the entry again (same key).
    const noted = await this.cosmos.replace(
      'models',
      { ...fieldsOf(ticket), askedAt: at, recorded: true },
      ticket._etag,
    );
    if (noted.ok) return;
    // Lost a race with this run's own retry (or a taker removing the ticket): read it again and note
    // the ask once more, so a live waiter's askedAt stays fresh and it is not passed over as away.
    const again = await this.ticket(modelName, who.runId);
    if (again)
      await this.cosmos.replace('models', { ...fieldsOf(again), askedAt: at, recorded: true }, again._etag);
  }

  /** Ends a wait: its audit entries (once each), then the ticket removed. */
  private async endWait(
    t: TicketDoc,
    outcome: 'granted' | 'run_ended',
    at: string,
    tookOverFrom?: LockHolder,
  ): Promise<void> {
    const audit = this.options.audit;
    if (audit) {
      if (!t.recorded) await audit.record(beganEvent(t));
      await audit.record(
        waitEvent(t, LOCK_WAIT_ENDED, 'ended', {
          outcome,
          endedAt: at,
          waitedSeconds: Math.max(0, Math.round((Date.parse(at) - Date.parse(t.since)) / 1000)),
          ...(tookOverFrom ? { tookOverFrom } : {}),
        }),
      );
    }
    await this.cosmos.delete('models', t.id, t.modelName);
  }

  private ticket(modelName: string, runId: string): Promise<Stored<TicketDoc> | undefined> {
    return this.cosmos.read<TicketDoc>('models', `${TICKET_PREFIX}${runId}`, modelName);
  }

  /** Every ticket of the model, first in line first. */
  private async tickets(modelName: string): Promise<Stored<TicketDoc>[]> {
    const found = await this.cosmos.query<TicketDoc>(
      'models',
      {
        query: 'SELECT * FROM c WHERE c.modelName = @m AND c.kind = "deploymentLockTicket"',
        parameters: [{ name: '@m', value: modelName }],
      },
      modelName,
    );
    return found.sort(byPlace);
  }
}

const waitKey = (t: Pick<TicketDoc, 'modelName' | 'runId' | 'since'>) =>
  `lockwait:${t.modelName}:${t.runId}:${t.since}`;

/**
 * A wait's audit entry (began or ended, written once each under its key): the waiting run, under
 * the candidate's subject, with what it waited behind (`holder`, `reason`) and `more`.
 */
const waitEvent = (
  t: TicketDoc,
  kind: typeof LOCK_WAIT_BEGAN | typeof LOCK_WAIT_ENDED,
  end: 'began' | 'ended',
  more: Record<string, unknown> = {},
): AuditEvent => ({
  kind,
  actor: `run:${t.runId}`,
  subject: t.subject,
  data: {
    model: t.modelName,
    runId: t.runId,
    pipeline: t.pipeline,
    since: t.since,
    holder: t.began.holder,
    reason: t.began.reason,
    ...more,
  },
  key: `${waitKey(t)}:${end}`,
});

const beganEvent = (t: TicketDoc): AuditEvent => waitEvent(t, LOCK_WAIT_BEGAN, 'began');

/** The ticket's own fields, without Cosmos's. */
const fieldsOf = (t: TicketDoc): TicketDoc => {
  const { id, kind, modelName, runId, pipeline, since, askedAt, subject, began, recorded } = t;
  return { id, kind, modelName, runId, pipeline, since, askedAt, subject, began, recorded };
};
