import type { ItemDefinition } from '@azure/cosmos';
import { NonRetriableError, TransientError } from '../errors';
import type { CosmosStore } from '../storage/cosmos';
import type { RunDocument, RunStatus, StopReason } from '../contracts/runDocument';
import { terminalRunStatuses } from './document';
import { runDocumentSchema, runStatusSchema } from '../contracts/runDocument';

/** Every status of a run that has not ended, derived so a new status is never left out of the sweep. */
const activeRunStatuses = runStatusSchema.options.filter((s) => !terminalRunStatuses.has(s));

const MAX_CONFLICT_RETRIES = 8;

type Stored = RunDocument & ItemDefinition;

/** What a list of runs shows of each run (the console's Runs page): no steps, no outputs. */
export type RunSummary = Pick<
  RunDocument,
  | 'id'
  | 'pipeline'
  | 'pipelineVersion'
  | 'status'
  | 'stopReason'
  | 'reason'
  | 'createdAt'
  | 'endedAt'
  | 'trigger'
>;
const SUMMARY_FIELDS = [
  'id',
  'pipeline',
  'pipelineVersion',
  'status',
  'stopReason',
  'reason',
  'createdAt',
  'endedAt',
  'trigger',
];

export interface RunPageFilter {
  pipeline?: string;
  status?: RunStatus;
  stopReason?: StopReason;
  /** Created at or after this ISO instant. */
  from?: string;
  /** Created before this ISO instant. */
  to?: string;
  /** The cursor of the previous page: runs created strictly before this ISO instant. */
  before?: string;
}

export interface RunPage {
  runs: RunSummary[];
  /** The cursor of the next page (`before`), when there may be more. */
  next?: string;
}

function summaryOf(doc: Record<string, unknown>): RunSummary {
  const out: Record<string, unknown> = {};
  for (const f of SUMMARY_FIELDS) if (doc[f] !== undefined) out[f] = doc[f];
  return out as RunSummary;
}

function strip(doc: Stored): RunDocument {
  return runDocumentSchema.parse(doc);
}

/**
 * Run documents in Cosmos DB (container `runs`, partition key `/pipeline`), on the shared
 * CosmosStore's conditional operations: every write is either a conditional create (deterministic
 * id) or an ETag-conditioned replace, so activities that run twice leave the same state.
 */
export class RunStore {
  constructor(private readonly cosmos: Pick<CosmosStore, 'create' | 'read' | 'replace' | 'container'>) {}

  /** Creates the run; when it already exists (a retried start), returns the existing document. */
  async create(doc: RunDocument): Promise<{ created: boolean; run: RunDocument }> {
    const result = await this.cosmos.create('runs', doc);
    if (result.ok) return { created: true, run: strip(result.doc) };
    const existing = await this.get(doc.pipeline, doc.id);
    if (!existing) throw new TransientError('run_conflict', `run ${doc.id} conflicted but cannot be read`);
    return { created: false, run: existing };
  }

  async get(pipeline: string, id: string): Promise<RunDocument | undefined> {
    const r = await this.cosmos.read<Stored>('runs', id, pipeline);
    return r ? strip(r) : undefined;
  }

  /** Finds a run by id alone (the API's `/runs/{id}` does not name the pipeline). */
  async find(id: string): Promise<RunDocument | undefined> {
    const { resources } = await this.cosmos
      .container('runs')
      .items.query<Stored>({
        query: 'SELECT * FROM c WHERE c.id = @id',
        parameters: [{ name: '@id', value: id }],
      })
      .fetchAll();
    const first = resources[0];
    return first ? strip(first) : undefined;
  }

  async list(filter: { pipeline?: string; status?: RunStatus; limit?: number }): Promise<RunDocument[]> {
    const where: string[] = [];
    const parameters: { name: string; value: string }[] = [];
    if (filter.pipeline) {
      where.push('c.pipeline = @pipeline');
      parameters.push({ name: '@pipeline', value: filter.pipeline });
    }
    if (filter.status) {
      where.push('c.status = @status');
      parameters.push({ name: '@status', value: filter.status });
    }
    const query = `SELECT * FROM c${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
    const { resources } = await this.cosmos
      .container('runs')
      .items.query<Stored>({ query, parameters })
      .fetchAll();
    const runs = resources.map(strip).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return runs.slice(0, filter.limit ?? 100);
  }

  /**
   * One page of runs, newest first (then by id, descending), as summaries: keyset paging on `createdAt` (ORDER BY on the
   * range index, TOP n+1, and `createdAt < cursor` for the next page), so a page costs the same at
   * the 10,000th run as at the first, and runs created meanwhile do not shift later pages. Runs that
   * share the page's last instant all go on this page (a second, point query), so none is skipped.
   */
  async page(filter: RunPageFilter, size: number): Promise<RunPage> {
    const where: string[] = [];
    const parameters: { name: string; value: string | number }[] = [];
    const add = (clause: string, name: string, value: string | undefined): void => {
      if (value === undefined) return;
      where.push(clause);
      parameters.push({ name, value });
    };
    add('c.pipeline = @pipeline', '@pipeline', filter.pipeline);
    add('c.status = @status', '@status', filter.status);
    add('c.stopReason = @stopReason', '@stopReason', filter.stopReason);
    add('c.createdAt >= @from', '@from', filter.from);
    add('c.createdAt < @to', '@to', filter.to);
    add('c.createdAt < @before', '@before', filter.before);
    const fields = SUMMARY_FIELDS.map((f) => `c.${f}`).join(', ');
    const cond = where.length ? ` WHERE ${where.join(' AND ')}` : '';
    const options = filter.pipeline ? { partitionKey: filter.pipeline } : {};
    const { resources } = await this.cosmos
      .container('runs')
      .items.query<Record<string, unknown>>(
        {
          query: `SELECT TOP @n ${fields} FROM c${cond} ORDER BY c.createdAt DESC`,
          parameters: [...parameters, { name: '@n', value: size + 1 }],
        },
        options,
      )
      .fetchAll();
    // Newest first; runs of one instant by id, descending (they always share a page, see below).
    const order = (a: RunSummary, b: RunSummary) =>
      b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);
    const rows = resources.map(summaryOf);
    if (rows.length <= size) return { runs: rows.sort(order) };
    const last = rows[size - 1]!.createdAt;
    if (rows[size]!.createdAt !== last) return { runs: rows.slice(0, size).sort(order), next: last };
    // The page ends inside a group of runs created at the same instant: take the whole group.
    const { resources: tied } = await this.cosmos
      .container('runs')
      .items.query<Record<string, unknown>>(
        {
          query: `SELECT ${fields} FROM c${cond ? `${cond} AND` : ' WHERE'} c.createdAt = @at`,
          parameters: [...parameters, { name: '@at', value: last }],
        },
        options,
      )
      .fetchAll();
    const runs = [...rows.slice(0, size).filter((r) => r.createdAt !== last), ...tied.map(summaryOf)].sort(
      order,
    );
    return { runs, next: last };
  }

  /** Runs that have not ended (queued, running, waiting for approval), oldest first: the sweep's work. */
  async listActive(limit = 500): Promise<RunDocument[]> {
    const { resources } = await this.cosmos
      .container('runs')
      .items.query<Stored>({
        query: 'SELECT * FROM c WHERE ARRAY_CONTAINS(@statuses, c.status)',
        parameters: [{ name: '@statuses', value: activeRunStatuses }],
      })
      .fetchAll();
    return resources
      .map(strip)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .slice(0, limit);
  }

  /**
   * Runs the MLflow mirror has to sync now (docs/mlflow.md), oldest first, at most `limit`: never
   * mirrored, or `pending`, or `failed` fewer than `maxFailedAttempts` times, and past their backoff
   * (`nextAttemptAt`, an ISO instant, compared as a string).
   */
  async listUnmirrored(maxFailedAttempts: number, now: Date, limit = 100): Promise<RunDocument[]> {
    const { resources } = await this.cosmos
      .container('runs')
      .items.query<Stored>({
        query: [
          'SELECT TOP @limit * FROM c WHERE',
          "(NOT IS_DEFINED(c.mlflow) OR c.mlflow.status = 'pending' OR (c.mlflow.status = 'failed' AND c.mlflow.attempts < @max))",
          'AND (NOT IS_DEFINED(c.mlflow.nextAttemptAt) OR c.mlflow.nextAttemptAt <= @now)',
          'ORDER BY c.createdAt',
        ].join(' '),
        parameters: [
          { name: '@max', value: maxFailedAttempts },
          { name: '@now', value: now.toISOString() },
          { name: '@limit', value: limit },
        ],
      })
      .fetchAll();
    return resources.map(strip).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Runs synced to MLflow since `since`, whose train step ran a job and whose training curve is not logged yet (`curves` not in
   * `mlflow.done`), oldest first: the MLflow mirror tries their curve again for a while after a
   * failed read, without holding up their sync.
   */
  async listCurvesDue(since: Date, limit = 25): Promise<RunDocument[]> {
    const { resources } = await this.cosmos
      .container('runs')
      .items.query<Stored>({
        query: [
          'SELECT TOP @limit * FROM c WHERE',
          "c.mlflow.status = 'synced' AND c.mlflow.syncedAt >= @since",
          "AND NOT ARRAY_CONTAINS(c.mlflow.done, 'curves')",
          "AND EXISTS(SELECT VALUE s FROM s IN c.steps WHERE s.name = 'train' AND IS_DEFINED(s.outputs.jobId))",
          'ORDER BY c.createdAt',
        ].join(' '),
        parameters: [
          { name: '@since', value: since.toISOString() },
          { name: '@limit', value: limit },
        ],
      })
      .fetchAll();
    return resources.map(strip).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Read-modify-write with an ETag condition, retried on conflict. `change` must be pure: it may
   * run more than once. Returns the stored document.
   */
  async update(
    pipeline: string,
    id: string,
    change: (run: RunDocument) => RunDocument,
  ): Promise<RunDocument> {
    for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
      const current = await this.cosmos.read<Stored>('runs', id, pipeline);
      if (!current)
        throw new NonRetriableError('run_not_found', `run ${id} of pipeline ${pipeline} not found`);
      const next = runDocumentSchema.parse(change(strip(current)));
      const replaced = await this.cosmos.replace('runs', next, current._etag);
      if (replaced.ok) return strip(replaced.doc);
    }
    throw new TransientError('run_update_conflict', `run ${id}: too many concurrent updates`);
  }
}
