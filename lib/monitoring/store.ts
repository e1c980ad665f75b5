import { TransientError } from '../errors';
import type { CosmosStore } from '../storage/cosmos';
import type { LabelDoc, MonitoringDoc, ProposalDoc, ProposalSlot } from './records';
import {
  MONITORING_DOC_ID,
  PROPOSAL_SLOT_ID,
  labelDocSchema,
  monitoringDocSchema,
  proposalDocSchema,
  proposalSlotSchema,
} from './records';

const MAX_ATTEMPTS = 8;

/** Monitoring documents, labels and proposals in the `traffic` container (see records.ts). */
export class MonitoringStore {
  constructor(
    private readonly cosmos: Pick<CosmosStore, 'read' | 'create' | 'replace' | 'upsert' | 'query'>,
  ) {}

  async get(modelName: string): Promise<MonitoringDoc | undefined> {
    const raw = await this.cosmos.read<MonitoringDoc>('traffic', MONITORING_DOC_ID, modelName);
    const parsed = raw ? monitoringDocSchema.safeParse(raw) : undefined;
    return parsed?.success ? parsed.data : undefined;
  }

  async put(doc: MonitoringDoc): Promise<void> {
    await this.cosmos.upsert('traffic', monitoringDocSchema.parse(doc));
  }

  /** Stores labels (a second label for the same prediction row replaces the first). */
  async putLabels(labels: readonly LabelDoc[]): Promise<void> {
    await Promise.all(labels.map((l) => this.cosmos.upsert('traffic', labelDocSchema.parse(l))));
  }

  /** Labels of a model received at or after `since` (at most `limit`, newest first). */
  async labelsSince(modelName: string, since: string, limit = 50_000): Promise<LabelDoc[]> {
    const docs = await this.cosmos.query<LabelDoc>(
      'traffic',
      {
        query:
          'SELECT TOP @n * FROM c WHERE c.modelName = @m AND c.kind = "label" AND c.receivedAt >= @s ORDER BY c.receivedAt DESC',
        parameters: [
          { name: '@n', value: limit },
          { name: '@m', value: modelName },
          { name: '@s', value: since },
        ],
      },
      modelName,
    );
    return docs.flatMap((d) => {
      const p = labelDocSchema.safeParse(d);
      return p.success ? [p.data] : [];
    });
  }

  async proposals(modelName: string): Promise<ProposalDoc[]> {
    const docs = await this.cosmos.query<ProposalDoc>(
      'traffic',
      {
        query: 'SELECT * FROM c WHERE c.modelName = @m AND c.kind = "proposal"',
        parameters: [{ name: '@m', value: modelName }],
      },
      modelName,
    );
    return docs
      .flatMap((d) => {
        const p = proposalDocSchema.safeParse(d);
        return p.success ? [p.data] : [];
      })
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async proposal(modelName: string, id: string): Promise<ProposalDoc | undefined> {
    const raw = await this.cosmos.read<ProposalDoc>('traffic', id, modelName);
    const parsed = raw ? proposalDocSchema.safeParse(raw) : undefined;
    return parsed?.success ? parsed.data : undefined;
  }

  /** Creates a proposal; false when one with its id exists (a retried timer). */
  async createProposal(doc: ProposalDoc): Promise<boolean> {
    const res = await this.cosmos.create('traffic', proposalDocSchema.parse(doc));
    return res.ok;
  }

  /** Applies `change` to a proposal, ETag-conditioned; undefined from `change` writes nothing. */
  async updateProposal(
    modelName: string,
    id: string,
    change: (current: ProposalDoc) => ProposalDoc | undefined,
  ): Promise<ProposalDoc | undefined> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const raw = await this.cosmos.read<ProposalDoc>('traffic', id, modelName);
      if (!raw) return undefined;
      const current = proposalDocSchema.parse(raw);
      const next = change(current);
      if (!next) return current;
      const res = await this.cosmos.replace('traffic', proposalDocSchema.parse(next), raw._etag);
      if (res.ok) return next;
    }
    throw new TransientError('proposal_busy', `proposal ${id} of ${modelName}: too many concurrent changes`);
  }

  /**
   * Takes a proposal slot for `id` at `at`, or says why not: the last proposal is within the
   * cool-down, or the budget window already holds `maxPerWindow`. One ETag-conditioned write, so
   * two timers deciding at once take at most what the policy allows. Taking the same id twice is
   * success (a retry).
   */
  async reserve(
    modelName: string,
    id: string,
    at: Date,
    policy: { coolDownHours: number; maxPerWindow: number; budgetWindowHours: number },
  ): Promise<{ ok: true } | { ok: false; skipped: 'cool_down' | 'budget'; detail: string }> {
    const hour = 3_600_000;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const raw = await this.cosmos.read<ProposalSlot>('traffic', PROPOSAL_SLOT_ID, modelName);
      const current: ProposalSlot = raw
        ? proposalSlotSchema.parse(raw)
        : { id: PROPOSAL_SLOT_ID, kind: 'proposal-slot', modelName, recent: [] };
      if (current.recent.some((r) => r.id === id)) return { ok: true };
      const now = at.getTime();
      const last = current.recent[current.recent.length - 1];
      if (last && now - Date.parse(last.at) < policy.coolDownHours * hour) {
        return {
          ok: false,
          skipped: 'cool_down',
          detail: `the last proposal (${last.id}, ${last.at}) is within the ${policy.coolDownHours} h cool-down`,
        };
      }
      const inWindow = current.recent.filter((r) => now - Date.parse(r.at) < policy.budgetWindowHours * hour);
      if (inWindow.length >= policy.maxPerWindow) {
        return {
          ok: false,
          skipped: 'budget',
          detail: `${inWindow.length} proposal(s) in the last ${policy.budgetWindowHours} h; the budget is ${policy.maxPerWindow}`,
        };
      }
      const next: ProposalSlot = { ...current, recent: [...inWindow, { id, at: at.toISOString() }] };
      const res = raw
        ? await this.cosmos.replace('traffic', next, raw._etag)
        : await this.cosmos.create('traffic', next);
      if (res.ok) return { ok: true };
    }
    throw new TransientError('proposal_busy', `proposal slot of ${modelName}: too many concurrent changes`);
  }
}
