import { randomUUID } from 'node:crypto';
import type { Container } from '@azure/cosmos';
import { z } from 'zod';
import type { AuditSink } from '../audit/log';
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

interface DelegationsDoc {
  id: 'delegations';
  runId: string;
  type: 'delegations';
  reviewer: string;
  items: Delegation[];
  _etag?: string;
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
    change: (items: Delegation[]) => { items: Delegation[]; result: T },
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const doc = await this.readDoc(reviewer);
      const { items, result } = change(doc?.items ?? []);
      const next: DelegationsDoc = {
        id: 'delegations',
        runId: delegationPartition(reviewer),
        type: 'delegations',
        reviewer,
        items: items.slice(-MAX_KEPT),
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

  /** Sets a delegation (refused when it overlaps, is expired or to self) and audits `delegation.set`. */
  async set(reviewerRaw: string, bodyRaw: unknown, ctx: { now: Date; by: string }): Promise<Delegation> {
    const reviewer = reviewerSchema.parse(reviewerRaw);
    const body = delegationBodySchema.parse(bodyRaw);
    const id = randomUUID();
    const d = await this.change(reviewer, (items) => {
      const planned = planDelegation(reviewer, body, items, { ...ctx, id });
      return { items: [...items, planned], result: planned };
    });
    await this.audit?.record({
      kind: 'delegation.set',
      actor: ctx.by,
      subject: `reviewer/${reviewer}`,
      data: { id: d.id, reviewer, to: d.to, from: d.from, until: d.until, reason: d.reason },
      key: `delegation:${reviewer}:${d.id}:set`,
    });
    return d;
  }

  /**
   * Ends the reviewer's current delegation (the one in force, else the next scheduled one) and
   * audits `delegation.ended`. Returns undefined when there is none.
   */
  async end(reviewerRaw: string, ctx: { now: Date; by: string }): Promise<Delegation | undefined> {
    const reviewer = reviewerSchema.parse(reviewerRaw);
    const ended = await this.change(reviewer, (items) => {
      const target = activeAt(items, ctx.now) ?? currentAndScheduled(items, ctx.now)[0];
      if (!target) return { items, result: undefined };
      const done: Delegation = { ...target, endedAt: ctx.now.toISOString(), endedBy: ctx.by };
      return { items: items.map((d) => (d.id === target.id ? done : d)), result: done };
    });
    if (ended) {
      await this.audit?.record({
        kind: 'delegation.ended',
        actor: ctx.by,
        subject: `reviewer/${reviewer}`,
        data: {
          id: ended.id,
          reviewer,
          to: ended.to,
          from: ended.from,
          until: ended.until,
          endedAt: ended.endedAt,
        },
        key: `delegation:${reviewer}:${ended.id}:ended`,
      });
    }
    return ended;
  }
}
