import { createHash } from 'node:crypto';
import type { Container } from '@azure/cosmos';
import { z } from 'zod';
import type { AuditEvent, AuditSink } from '../audit/log';
import { NonRetriableError, TransientError, ValidationError } from '../errors';
import { reviewerSchema } from '../contracts/approvalPolicy';
import { cosmosStatus } from './store';

/**
 * Reviewer delegation (docs/governance.md, "Delegation"): reviewer B hands their approvals to A for
 * a time window. While it is active, B's approval links also go to A, A's link is B's link with A
 * named in it, and A's decision is stored as B's (it counts toward the quorum as B) with
 * `onBehalfOf`.
 *
 * Stored in the `approvals` container, one document per reviewer in its own logical partition
 * (`runId` = `reviewer:<id>`, `type: "delegations"`): a delegation is read where approvals are
 * decided, needs no new container (Bicep, emulator setup) and no approval query matches it (they
 * select by run or by `type = "approval"`). One document per reviewer holding every delegation
 * makes the overlap rule one ETag-conditioned read-modify-write: two concurrent PUTs that overlap
 * cannot both land.
 *
 * Audit without loss: the change and a note of its audit event (`pending`) are written together;
 * the event is recorded next (under a key from the delegation's deterministic id, so recording
 * it twice writes it once) and only then is the note cleared. A failed audit write fails the
 * request; its retry finds the identical delegation (set) or the noted end (end), returns it and
 * records the event then, and any later change of that reviewer's delegations records it too.
 */

export const MAX_DELEGATION_DAYS = 90;
const MAX_KEPT = 50;
const MAX_CONFLICT_RETRIES = 8;

export const delegationSchema = z.object({
  id: z.string().min(1).max(64),
  reviewer: reviewerSchema,
  to: reviewerSchema,
  from: z.iso.datetime(),
  until: z.iso.datetime(),
  reason: z.string().max(2000),
  setBy: z.string().max(320),
  setAt: z.iso.datetime(),
  endedAt: z.iso.datetime().optional(),
  endedBy: z.string().max(320).optional(),
});
export type Delegation = z.infer<typeof delegationSchema>;

export const delegationBodySchema = z
  .object({
    to: reviewerSchema,
    /** Start; default now. */
    from: z.iso.datetime({ offset: true }).optional(),
    until: z.iso.datetime({ offset: true }),
    reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(2000),
  })
  .strict();
export type DelegationBody = z.input<typeof delegationBodySchema>;

/** An audit event written with the change and not yet recorded in the audit log. */
interface PendingAudit {
  id: string;
  kind: 'set' | 'ended';
}

interface DelegationsDoc {
  id: 'delegations';
  runId: string;
  type: 'delegations';
  reviewer: string;
  items: Delegation[];
  pending?: PendingAudit[];
  _etag?: string;
}

/**
 * A delegation's id: a digest of what it says, so the same delegation set again (a retried PUT)
 * has the same id, and so the same audit key.
 */
export function delegationId(
  reviewer: string,
  d: Pick<Delegation, 'to' | 'from' | 'until' | 'reason'>,
): string {
  return createHash('sha256')
    .update(JSON.stringify([reviewer, d.to, d.from, d.until, d.reason]))
    .digest('hex')
    .slice(0, 32);
}

/**
 * The delegation a retried PUT already made: same `to`, `until` and `reason`, not ended, and the
 * same `from` (or, when the body named none, one that has started: its `from` was the first
 * attempt's "now").
 */
function sameDelegation(
  items: readonly Delegation[],
  body: z.output<typeof delegationBodySchema>,
  now: Date,
): Delegation | undefined {
  const until = new Date(body.until).getTime();
  const from = body.from ? new Date(body.from).getTime() : undefined;
  return items.find(
    (d) =>
      !d.endedAt &&
      d.to === body.to &&
      Date.parse(d.until) === until &&
      d.reason === body.reason &&
      (from === undefined ? Date.parse(d.from) <= now.getTime() : Date.parse(d.from) === from),
  );
}

function auditEvent(reviewer: string, d: Delegation, kind: PendingAudit['kind']): AuditEvent {
  const base = { id: d.id, reviewer, to: d.to, from: d.from, until: d.until };
  return kind === 'set'
    ? {
        kind: 'delegation.set',
        actor: d.setBy,
        subject: `reviewer/${reviewer}`,
        data: { ...base, reason: d.reason },
        key: `delegation:${reviewer}:${d.id}:set`,
      }
    : {
        kind: 'delegation.ended',
        actor: d.endedBy ?? d.setBy,
        subject: `reviewer/${reviewer}`,
        data: { ...base, endedAt: d.endedAt },
        key: `delegation:${reviewer}:${d.id}:ended`,
      };
}

export const delegationPartition = (reviewer: string) => `reviewer:${reviewer}`;

/** When a delegation stops counting: its end, or when it was ended early. */
function endOf(d: Delegation): number {
  const until = Date.parse(d.until);
  return d.endedAt ? Math.min(until, Date.parse(d.endedAt)) : until;
}

/** The delegation in force at `now`, if any. */
export function activeAt(items: readonly Delegation[], now: Date): Delegation | undefined {
  const t = now.getTime();
  return items.find((d) => Date.parse(d.from) <= t && t < endOf(d));
}

/** Delegations in force now or starting later (what GET shows and what a new one may not overlap). */
export function currentAndScheduled(items: readonly Delegation[], now: Date): Delegation[] {
  return items.filter((d) => endOf(d) > now.getTime());
}

function refuse(code: string, message: string, field: string, status = 400): ValidationError {
  return new ValidationError(code, message, { status, field });
}

/**
 * Checks a new delegation against the rules and the reviewer's other delegations; returns it.
 * Pure: the store runs it inside its conditional write.
 */
export function planDelegation(
  reviewer: string,
  body: z.output<typeof delegationBodySchema>,
  existing: readonly Delegation[],
  ctx: { now: Date; by: string; id: string },
): Delegation {
  const from = body.from ? new Date(body.from) : ctx.now;
  const until = new Date(body.until);
  if (body.to === reviewer) {
    throw refuse(
      'delegation_to_self',
      `${reviewer} cannot delegate to themselves: name another person in "to".`,
      'to',
    );
  }
  if (until.getTime() <= ctx.now.getTime()) {
    throw refuse(
      'delegation_expired',
      `"until" (${body.until}) has already passed: a delegation must end in the future.`,
      'until',
    );
  }
  if (until.getTime() <= from.getTime()) {
    throw refuse(
      'delegation_window_invalid',
      `"until" (${body.until}) must be after "from" (${from.toISOString()}).`,
      'until',
    );
  }
  if (until.getTime() - from.getTime() > MAX_DELEGATION_DAYS * 86_400_000) {
    throw refuse(
      'delegation_too_long',
      `A delegation lasts at most ${MAX_DELEGATION_DAYS} days; set an earlier "until".`,
      'until',
    );
  }
  const clash = currentAndScheduled(existing, ctx.now).find(
    (d) => Date.parse(d.from) < until.getTime() && from.getTime() < endOf(d),
  );
  if (clash) {
    throw refuse(
      'delegation_overlaps',
      `${reviewer} already delegates to ${clash.to} from ${clash.from} until ${clash.until}; end it (DELETE) or choose a window that does not overlap.`,
      'from',
      409,
    );
  }
  return {
    id: ctx.id,
    reviewer,
    to: body.to,
    from: from.toISOString(),
    until: until.toISOString(),
    reason: body.reason,
    setBy: ctx.by,
    setAt: ctx.now.toISOString(),
  };
}

function mapError(err: unknown, what: string): Error {
  if (err instanceof ValidationError || err instanceof NonRetriableError || err instanceof TransientError)
    return err;
  const code = cosmosStatus(err);
  const message = `${what}: ${(err as Error)?.message ?? String(err)}`;
  if (code === undefined || code === 408 || code === 429 || code >= 500) {
    return new TransientError('cosmos_unavailable', message, { cause: err });
  }
  return new NonRetriableError('cosmos_rejected', message, { cause: err });
}

export class DelegationStore {
  constructor(
    private readonly container: Container,
    private readonly audit?: AuditSink,
  ) {}

  private async readDoc(reviewer: string): Promise<DelegationsDoc | undefined> {
    try {
      const { resource } = await this.container
        .item('delegations', delegationPartition(reviewer))
        .read<DelegationsDoc>();
      return resource ?? undefined;
    } catch (err) {
      if (cosmosStatus(err) === 404) return undefined;
      throw mapError(err, 'read delegations');
    }
  }

  /** Every delegation of a reviewer kept (ended ones included, newest last). */
  async list(reviewerRaw: string): Promise<Delegation[]> {
    const reviewer = reviewerSchema.parse(reviewerRaw);
    return (await this.readDoc(reviewer))?.items.map((d) => delegationSchema.parse(d)) ?? [];
  }

  /** The delegation of `reviewer` in force at `now`. */
  async active(reviewer: string, now: Date): Promise<Delegation | undefined> {
    return activeAt(await this.list(reviewer), now);
  }

  /** Conditional read-modify-write of the reviewer's document; `change` may run more than once. */
  private async change<T>(
    reviewer: string,
    change: (
      items: Delegation[],
      pending: PendingAudit[],
    ) => { items: Delegation[]; pending?: PendingAudit[]; result: T; unchanged?: boolean },
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const doc = await this.readDoc(reviewer);
      const { items, pending, result, unchanged } = change(doc?.items ?? [], doc?.pending ?? []);
      if (unchanged) return result;
      const kept = items.slice(-MAX_KEPT);
      const next: DelegationsDoc = {
        id: 'delegations',
        runId: delegationPartition(reviewer),
        type: 'delegations',
        reviewer,
        items: kept,
        ...((pending ?? doc?.pending)?.length
          ? { pending: (pending ?? doc?.pending ?? []).filter((p) => kept.some((d) => d.id === p.id)) }
          : {}),
      };
      try {
        if (doc?._etag) {
          await this.container
            .item('delegations', next.runId)
            .replace(next, { accessCondition: { type: 'IfMatch', condition: doc._etag } });
        } else {
          await this.container.items.create(next);
        }
        return result;
      } catch (err) {
        const code = cosmosStatus(err);
        if (code === 412 || code === 409) continue;
        throw mapError(err, 'write delegations');
      }
    }
    throw new TransientError(
      'delegation_busy',
      `delegations of ${reviewer} changed too often concurrently; try again`,
    );
  }

  /**
   * Records every audit event noted in the reviewer's document, then clears the notes it recorded.
   * Recording is idempotent by key, so a crash between the two records nothing twice.
   */
  private async flushAudit(reviewer: string): Promise<void> {
    const audit = this.audit;
    if (!audit) return;
    const doc = await this.readDoc(reviewer);
    const pending = doc?.pending ?? [];
    if (pending.length === 0) return;
    for (const p of pending) {
      const d = doc?.items.find((x) => x.id === p.id);
      if (d) await audit.record(auditEvent(reviewer, delegationSchema.parse(d), p.kind));
    }
    const done = (p: PendingAudit) => pending.some((q) => q.id === p.id && q.kind === p.kind);
    await this.change(reviewer, (items, current) => ({
      items,
      pending: current.filter((p) => !done(p)),
      result: undefined,
      unchanged: !current.some(done),
    }));
  }

  /**
   * Sets a delegation (refused when it overlaps, is expired or to self) and audits `delegation.set`.
   * Setting the identical delegation again (a retried PUT) returns the one stored and records its
   * audit event if the first attempt could not.
   */
  async set(reviewerRaw: string, bodyRaw: unknown, ctx: { now: Date; by: string }): Promise<Delegation> {
    const reviewer = reviewerSchema.parse(reviewerRaw);
    const body = delegationBodySchema.parse(bodyRaw);
    const audited = this.audit !== undefined;
    const d = await this.change(reviewer, (items, pending) => {
      const again = sameDelegation(items, body, ctx.now);
      if (again) return { items, result: again, unchanged: true };
      const from = body.from ? new Date(body.from).toISOString() : ctx.now.toISOString();
      const id = delegationId(reviewer, { ...body, from, until: new Date(body.until).toISOString() });
      const planned = planDelegation(reviewer, body, items, { ...ctx, id });
      return {
        items: [...items, planned],
        ...(audited ? { pending: [...pending, { id, kind: 'set' as const }] } : {}),
        result: planned,
      };
    });
    await this.flushAudit(reviewer);
    return d;
  }

  /**
   * Ends the reviewer's current delegation (the one in force, else the next scheduled one) and
   * audits `delegation.ended`. Returns undefined when there is none. When an earlier end's audit
   * event is still unrecorded (that request failed), a retry returns that end and records it,
   * rather than ending the next scheduled delegation.
   */
  async end(reviewerRaw: string, ctx: { now: Date; by: string }): Promise<Delegation | undefined> {
    const reviewer = reviewerSchema.parse(reviewerRaw);
    const audited = this.audit !== undefined;
    const ended = await this.change(reviewer, (items, pending) => {
      const unrecorded = [...pending].reverse().find((p) => p.kind === 'ended');
      const earlier = unrecorded && items.find((d) => d.id === unrecorded.id);
      if (earlier) return { items, result: earlier, unchanged: true };
      const target = activeAt(items, ctx.now) ?? currentAndScheduled(items, ctx.now)[0];
      if (!target) return { items, result: undefined, unchanged: true };
      const done: Delegation = { ...target, endedAt: ctx.now.toISOString(), endedBy: ctx.by };
      return {
        items: items.map((d) => (d.id === target.id ? done : d)),
        ...(audited ? { pending: [...pending, { id: done.id, kind: 'ended' as const }] } : {}),
        result: done,
      };
    });
    await this.flushAudit(reviewer);
    return ended ? delegationSchema.parse(ended) : undefined;
  }
}
