import type { Container } from '@azure/cosmos';
import type { AuditEvent, AuditSink } from '../audit/log';
import { NonRetriableError, TransientError, ValidationError } from '../errors';
import type { ApprovalDecision, ApprovalRecord } from '../contracts/approvalRecord';
import type { ApprovalState } from './record';
import { decisionId } from './record';
import { approvalRecordSchema, decisionSchema } from '../contracts/approvalRecord';

/**
 * Approval records and decisions in Cosmos DB (container `approvals`, partition key `/runId`).
 *
 * - The record is created once with a deterministic id (the approvalGate instance id): a retried
 *   activity finds the existing one.
 * - A decision is a separate document with id `<approvalId>:<reviewer>`, written with a plain
 *   create: Cosmos refuses a second document with the same id in a partition (409), so the first
 *   write wins and a replayed or second POST cannot change it.
 * - Record changes (escalation, reminder, close) are ETag-conditioned read-modify-writes.
 */

const MAX_CONFLICT_RETRIES = 8;

/** A second decision by the same reviewer (replay, double click, two tabs): 409. */
export class DecisionExistsError extends ValidationError {
  readonly existing: ApprovalDecision | undefined;
  constructor(existing: ApprovalDecision | undefined) {
    super(
      'decision_exists',
      existing
        ? `${existing.reviewer} already ${existing.decision === 'approve' ? 'approved' : 'rejected'} at ${existing.decidedAt}; a decision cannot be changed.`
        : 'A decision was already recorded for this reviewer.',
      { status: 409, field: 'decision' },
    );
    this.existing = existing;
  }
}

export function cosmosStatus(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

function mapError(err: unknown, what: string): Error {
  const code = cosmosStatus(err);
  const message = `${what}: ${(err as Error)?.message ?? String(err)}`;
  if (code === undefined || code === 408 || code === 429 || code >= 500) {
    return new TransientError('cosmos_unavailable', message, { cause: err });
  }
  return new NonRetriableError('cosmos_rejected', message, { cause: err });
}

type Stored<T> = T & { _etag?: string };

/** The audit subject of an approval: the model version it is for. */
const subjectOf = (record: ApprovalRecord) =>
  `model/${record.candidate.modelName}/${record.candidate.modelVersion}`;

/**
 * The audit events a record's state implies (each keyed, so recording them again is a no-op):
 * requested, reminded per stage, escalated, closed.
 */
function recordEvents(record: ApprovalRecord): AuditEvent[] {
  const base = {
    subject: subjectOf(record),
    data: { runId: record.runId, approvalId: record.id, pipeline: record.pipeline },
  };
  const key = (what: string) => `approval:${record.runId}:${record.id}:${what}`;
  const events: AuditEvent[] = [
    {
      ...base,
      kind: 'approval.requested',
      actor: record.requestedBy,
      data: {
        ...base.data,
        candidate: record.candidate,
        policy: record.policy,
        requestedAt: record.createdAt,
      },
      key: key('requested'),
    },
  ];
  for (const stage of record.remindedStages) {
    events.push({
      ...base,
      kind: 'approval.reminded',
      actor: 'system',
      data: { ...base.data, stage },
      key: key(`reminded:${stage}`),
    });
  }
  if (record.stage === 'escalated') {
    events.push({
      ...base,
      kind: 'approval.escalated',
      actor: 'system',
      data: { ...base.data, at: record.stageStartedAt, deadline: record.deadline },
      key: key('escalated'),
    });
  }
  if (record.status !== 'pending') {
    events.push({
      ...base,
      kind: `approval.${record.status}`,
      actor: 'system',
      data: {
        ...base.data,
        status: record.status,
        reasons: record.reasons ?? [],
        at: record.closedAt ?? null,
      },
      key: key('closed'),
    });
  }
  return events;
}

export class ApprovalStore {
  constructor(
    private readonly container: Container,
    /**
     * Records requests, reminders, escalations, decisions and closings. A failed audit write fails
     * the operation after its Cosmos write; the retry finds the write done and records the event
     * then (events are keyed, so at most once).
     */
    private readonly audit?: AuditSink,
  ) {}

  private async recordAll(events: AuditEvent[]): Promise<void> {
    if (!this.audit) return;
    for (const e of events) await this.audit.record(e);
  }

  /** Creates the record, or returns the one a previous attempt created. */
  async createRecord(record: ApprovalRecord): Promise<{ created: boolean; record: ApprovalRecord }> {
    const doc = approvalRecordSchema.parse(record);
    try {
      await this.container.items.create(doc);
    } catch (err) {
      if (cosmosStatus(err) !== 409) throw mapError(err, 'create approval');
      const existing = await this.getRecord(doc.runId, doc.id);
      if (!existing)
        throw new TransientError('approval_conflict', `approval ${doc.id} conflicted but cannot be read`);
      await this.recordAll(recordEvents(existing).slice(0, 1));
      return { created: false, record: existing };
    }
    await this.recordAll(recordEvents(doc).slice(0, 1));
    return { created: true, record: doc };
  }

  async getRecord(runId: string, approvalId: string): Promise<ApprovalRecord | undefined> {
    const raw = await this.readRaw<ApprovalRecord>(runId, approvalId);
    return raw ? approvalRecordSchema.parse(raw) : undefined;
  }

  /** The record and every decision for it: one single-partition query. */
  async readState(runId: string, approvalId: string): Promise<ApprovalState | undefined> {
    let docs: unknown[];
    try {
      const { resources } = await this.container.items
        .query(
          {
            // The run id is in the filter too: the emulator does not scope queries by partition key.
            query:
              'SELECT * FROM c WHERE c.runId = @runId AND (c.id = @id OR (c.type = "decision" AND c.approvalId = @id))',
            parameters: [
              { name: '@runId', value: runId },
              { name: '@id', value: approvalId },
            ],
          },
          { partitionKey: runId },
        )
        .fetchAll();
      docs = resources;
    } catch (err) {
      throw mapError(err, 'read approval');
    }
    let record: ApprovalRecord | undefined;
    const decisions: ApprovalDecision[] = [];
    for (const d of docs) {
      const type = (d as { type?: unknown }).type;
      if (type === 'approval') record = approvalRecordSchema.parse(d);
      else if (type === 'decision') decisions.push(decisionSchema.parse(d));
    }
    if (!record) return undefined;
    decisions.sort((a, b) => a.decidedAt.localeCompare(b.decidedAt) || a.reviewer.localeCompare(b.reviewer));
    return { record, decisions };
  }

  /**
   * Records one reviewer's decision. The id is `<approvalId>:<reviewer>`, so the first write wins;
   * any later attempt gets {@link DecisionExistsError} (409) carrying the decision that stands.
   */
  async createDecision(decision: ApprovalDecision): Promise<ApprovalDecision> {
    const doc = decisionSchema.parse({ ...decision, id: decisionId(decision.approvalId, decision.reviewer) });
    try {
      await this.container.items.create(doc);
    } catch (err) {
      if (cosmosStatus(err) !== 409) throw mapError(err, 'record decision');
      const raw = await this.readRaw<ApprovalDecision>(doc.runId, doc.id);
      const existing = raw ? decisionSchema.parse(raw) : undefined;
      if (existing) await this.auditDecision(existing);
      throw new DecisionExistsError(existing);
    }
    await this.auditDecision(doc);
    return doc;
  }

  private async auditDecision(d: ApprovalDecision): Promise<void> {
    if (!this.audit) return;
    const record = await this.getRecord(d.runId, d.approvalId);
    await this.audit.record({
      kind: 'approval.decided',
      actor: d.delegate ? `${d.delegate} on behalf of ${d.reviewer}` : d.reviewer,
      subject: record ? subjectOf(record) : `run/${d.runId}`,
      data: {
        runId: d.runId,
        approvalId: d.approvalId,
        decision: d.decision,
        comment: d.comment,
        decidedAt: d.decidedAt,
        stage: d.stage,
        modelDigest: d.modelDigest,
        datasetDigest: d.datasetDigest,
        ...(d.principal ? { principal: d.principal } : {}),
        ...(d.delegate ? { delegate: d.delegate, onBehalfOf: d.reviewer } : {}),
      },
      key: `decision:${d.runId}:${d.id}`,
    });
  }

  /**
   * ETag-conditioned read-modify-write of the record, retried on a lost race. `change` must be
   * pure (it may run more than once) and return the same object when there is nothing to do.
   */
  async updateRecord(
    runId: string,
    approvalId: string,
    change: (record: ApprovalRecord) => ApprovalRecord,
  ): Promise<ApprovalRecord> {
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const raw = await this.readRaw<ApprovalRecord>(runId, approvalId);
      if (!raw)
        throw new NonRetriableError('approval_not_found', `approval ${approvalId} of run ${runId} not found`);
      const current = approvalRecordSchema.parse(raw);
      const next = change(current);
      if (next === current) {
        // Nothing to change: a retry, maybe of a change whose audit entry failed. Record what the
        // record says happened (keyed: already recorded events are no-ops).
        await this.recordAll(recordEvents(current).slice(1));
        return current;
      }
      try {
        await this.container.item(approvalId, runId).replace(approvalRecordSchema.parse(next), {
          accessCondition: { type: 'IfMatch', condition: raw._etag ?? '' },
        });
      } catch (err) {
        if (cosmosStatus(err) === 412) continue;
        throw mapError(err, 'update approval');
      }
      const before = new Set(recordEvents(current).map((e) => e.key));
      await this.recordAll(recordEvents(next).filter((e) => !before.has(e.key)));
      return next;
    }
    throw new TransientError(
      'approval_update_conflict',
      `approval ${approvalId}: too many concurrent updates`,
    );
  }

  /** Every approval record for one registry version (a cross-partition query; rollback checks). */
  async findByCandidate(modelName: string, modelVersion: number): Promise<ApprovalRecord[]> {
    try {
      const { resources } = await this.container.items
        .query({
          query:
            'SELECT * FROM c WHERE c.type = "approval" AND c.candidate.modelName = @name AND c.candidate.modelVersion = @version',
          parameters: [
            { name: '@name', value: modelName },
            { name: '@version', value: modelVersion },
          ],
        })
        .fetchAll();
      return resources.map((d) => approvalRecordSchema.parse(d));
    } catch (err) {
      throw mapError(err, 'find approvals');
    }
  }

  private async readRaw<T>(runId: string, id: string): Promise<Stored<T> | undefined> {
    try {
      const { resource } = await this.container.item(id, runId).read<Stored<T>>();
      return resource ?? undefined;
    } catch (err) {
      if (cosmosStatus(err) === 404) return undefined;
      throw mapError(err, 'read approval');
    }
  }
}
