import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { TrafficFigures } from '../contracts/rollout';
import type { CosmosStore } from '../storage/cosmos';
import { BatchWriter } from '../storage/batchWriter';
import { LATENCY_EDGES_MS, binOf, bucketQuantile, latencyBucket, predictionPsi } from './figures';
import type { PredictionReference } from './records';

/**
 * Traffic stats of predict: per model, version and variant (and rollout step, while a rollout
 * runs), counts, errors, a latency histogram, a prediction histogram and shadow agreement. Each
 * instance sums requests in memory and writes one record per key every `flushEveryMs` or
 * `flushEveryRequests` (container `traffic`, partition `/modelName`): never a write per request,
 * never on a request's path. The rollout guards sum a step's records; live-traffic monitoring reads
 * the same records by model and time window (their `from`/`to`), with or without a rollout.
 */

export const variants = ['production', 'candidate', 'shadow'] as const;

/** Records of failed flushes an instance keeps for the next flush, at most. */
export const MAX_UNWRITTEN = 1_000;
/** Accumulators of a batch found by field comparison before the string-keyed Map (see `recent`). */
const MAX_RECENT = 4;
export type Variant = (typeof variants)[number];

/**
 * Seconds a traffic record is kept (30 days): Cosmos deletes it after that (the container's time to
 * live is on, lib/resources.json `defaultTtl: -1`; only documents with a `ttl` expire, so the
 * monitoring documents, labels and proposals in the same container stay).
 */
export const TRAFFIC_TTL_SECONDS = 30 * 24 * 3600;

export const trafficRecordSchema = z.object({
  id: z.string(),
  ttl: z.int().optional(),
  kind: z.literal('traffic'),
  modelName: z.string(),
  version: z.int().positive(),
  variant: z.enum(variants),
  rolloutId: z.string().optional(),
  step: z.int().min(0).optional(),
  /** The instance that recorded it, and its flush number there. */
  source: z.string(),
  seq: z.int().min(0),
  /** The window the counts cover (first and last request). */
  from: z.string(),
  to: z.string(),
  requests: z.int().min(0),
  /** Failed requests (a candidate's failure fell back to production, and counts here). */
  errors: z.int().min(0),
  rows: z.int().min(0),
  /** Scoring latency counts per bucket of LATENCY_EDGES_MS (one more bucket for slower). */
  latency: z.array(z.int().min(0)),
  /** Prediction histogram: counts per reference bin, or per predicted class. */
  predictions: z
    .object({ bins: z.array(z.int().min(0)).optional(), classes: z.record(z.string(), z.int()).optional() })
    .optional(),
  /** Shadow: rows scored by both models, and how many agreed. */
  shadow: z.object({ compared: z.int().min(0), agreed: z.int().min(0) }).optional(),
});
export type TrafficRecord = z.infer<typeof trafficRecordSchema>;

/** One request's contribution. */
export interface TrafficSample {
  modelName: string;
  version: number;
  variant: Variant;
  rolloutId?: string;
  step?: number;
  /** Scoring time of a successful request. */
  latencyMs?: number;
  error?: boolean;
  rows: number;
  /** The predictions, binned by `reference` (when there is one). */
  predictions?: ArrayLike<number> | readonly string[];
  reference?: PredictionReference;
  compared?: number;
  agreed?: number;
}

interface Acc {
  key: Omit<
    TrafficRecord,
    | 'id'
    | 'kind'
    | 'source'
    | 'seq'
    | 'from'
    | 'to'
    | 'requests'
    | 'errors'
    | 'rows'
    | 'latency'
    | 'predictions'
    | 'shadow'
  >;
  from: number;
  to: number;
  requests: number;
  errors: number;
  rows: number;
  latency: number[];
  bins?: number[];
  classes?: Record<string, number>;
  compared: number;
  agreed: number;
}

export interface TrafficRecorderDeps {
  write(records: TrafficRecord[]): Promise<void>;
  flushEveryMs: number;
  flushEveryRequests: number;
  now?: () => number;
  log?: (message: string) => void;
}

/** Sums samples per key in memory and writes them in batches (see the module comment). */
export class TrafficRecorder {
  private buffer = new Map<string, Acc>();
  /**
   * Records of failed flushes are kept by the writer exactly as built (same ids) and written again
   * with the next flush: a record the failed write did store answers 409 and counts as written, so
   * a partly failed flush is never counted twice (merging its counts into a new record would be).
   */
  private readonly writer: BatchWriter<TrafficRecord>;
  private readonly source = randomUUID();
  private readonly now: () => number;
  /**
   * The accumulators of the current batch, for a lookup by field: a request almost always meets
   * one of a few keys (production and candidate of one model), and comparing five fields costs less
   * than building and hashing the joined string key per request. The Map stays the one place a
   * key's accumulator is made; this only finds it again (and is cleared when a flush takes it).
   */
  private readonly recent: Acc[] = [];

  constructor(deps: TrafficRecorderDeps) {
    this.now = deps.now ?? (() => Date.now());
    this.writer = new BatchWriter<TrafficRecord>({
      take: (seq) => {
        const taken = [...this.buffer.values()].map((a, i) => toRecord(a, this.source, seq, i));
        this.buffer = new Map();
        this.recent.length = 0;
        return taken;
      },
      write: (records) => deps.write(records),
      flushEveryMs: deps.flushEveryMs,
      flushEvery: deps.flushEveryRequests,
      maxUnwritten: MAX_UNWRITTEN,
      log: (m) => deps.log?.(`traffic stats: ${m}`),
    });
  }

  /** Adds one request; cheap and synchronous. A flush starts in the background when due. */
  record(s: TrafficSample): void {
    const t = this.now();
    let acc = this.found(s);
    if (!acc) {
      const k = `${s.modelName}\u0000${s.version}\u0000${s.variant}\u0000${s.rolloutId ?? ''}\u0000${s.step ?? ''}`;
      acc = this.buffer.get(k) ?? this.create(k, s, t);
    }
    acc.to = t;
    acc.requests++;
    acc.rows += s.rows;
    if (s.error) acc.errors++;
    if (s.latencyMs !== undefined) acc.latency[latencyBucket(s.latencyMs)]!++;
    if (s.predictions && s.reference) addPredictions(acc, s.predictions, s.reference);
    if (s.compared) {
      acc.compared += s.compared;
      acc.agreed += s.agreed ?? 0;
    }
    this.writer.added(1);
  }

  /** The current batch's accumulator of the sample's key among the recent ones, if it is one. */
  private found(s: TrafficSample): Acc | undefined {
    for (const acc of this.recent) {
      const k = acc.key;
      if (
        k.modelName === s.modelName &&
        k.version === s.version &&
        k.variant === s.variant &&
        k.rolloutId === s.rolloutId &&
        k.step === s.step
      )
        return acc;
    }
    return undefined;
  }

  private create(k: string, s: TrafficSample, t: number): Acc {
    const acc: Acc = {
      key: {
        modelName: s.modelName,
        version: s.version,
        variant: s.variant,
        ...(s.rolloutId !== undefined ? { rolloutId: s.rolloutId } : {}),
        ...(s.step !== undefined ? { step: s.step } : {}),
      },
      from: t,
      to: t,
      ...zeroTotals(),
    };
    this.buffer.set(k, acc);
    if (this.recent.length < MAX_RECENT) this.recent.push(acc);
    return acc;
  }

  /**
   * Writes what is buffered (one flush at a time), with the records of earlier failed flushes. A
   * failed write keeps its records, ids and all, for the next flush (at most MAX_UNWRITTEN; the
   * oldest are dropped beyond, and logged).
   */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Writes what is left and stops the timer (shutdown, tests). */
  close(): Promise<void> {
    return this.writer.close();
  }
}

function addPredictions(acc: Acc, p: ArrayLike<number> | readonly string[], ref: PredictionReference): void {
  if (ref.kind === 'bins') {
    const bins = (acc.bins ??= new Array<number>(ref.edges.length + 1).fill(0));
    for (let i = 0; i < p.length; i++) {
      const v = p[i];
      if (typeof v === 'number' && Number.isFinite(v)) bins[binOf(ref.edges, v)]!++;
    }
  } else {
    const classes = (acc.classes ??= {});
    for (let i = 0; i < p.length; i++) {
      const c = String(p[i]);
      classes[c] = (classes[c] ?? 0) + 1;
    }
  }
}

function toRecord(a: Acc, source: string, seq: number, i: number): TrafficRecord {
  return {
    id: `${source}-${seq}-${i}`,
    ttl: TRAFFIC_TTL_SECONDS,
    kind: 'traffic',
    ...a.key,
    source,
    seq,
    from: new Date(a.from).toISOString(),
    to: new Date(a.to).toISOString(),
    requests: a.requests,
    errors: a.errors,
    rows: a.rows,
    latency: a.latency,
    ...(a.bins || a.classes
      ? { predictions: { ...(a.bins ? { bins: a.bins } : {}), ...(a.classes ? { classes: a.classes } : {}) } }
      : {}),
    ...(a.compared > 0 ? { shadow: { compared: a.compared, agreed: a.agreed } } : {}),
  };
}

/** The sums of a set of records. */
export interface TrafficTotals {
  requests: number;
  errors: number;
  rows: number;
  latency: number[];
  bins?: number[];
  classes?: Record<string, number>;
  compared: number;
  agreed: number;
}

/** Totals of no traffic: what an accumulator or a sum starts from. */
function zeroTotals(): TrafficTotals {
  return {
    requests: 0,
    errors: 0,
    rows: 0,
    latency: new Array<number>(LATENCY_EDGES_MS.length + 1).fill(0),
    compared: 0,
    agreed: 0,
  };
}

export function sumRecords(records: readonly TrafficRecord[]): TrafficTotals {
  const t = zeroTotals();
  for (const r of records) {
    t.requests += r.requests;
    t.errors += r.errors;
    t.rows += r.rows;
    r.latency.forEach((c, i) => (t.latency[i] = (t.latency[i] ?? 0) + c));
    const b = r.predictions?.bins;
    if (b) t.bins = b.map((c, i) => c + (t.bins?.[i] ?? 0));
    const cl = r.predictions?.classes;
    if (cl) {
      t.classes ??= {};
      for (const [k, v] of Object.entries(cl)) t.classes[k] = (t.classes[k] ?? 0) + v;
    }
    t.compared += r.shadow?.compared ?? 0;
    t.agreed += r.shadow?.agreed ?? 0;
  }
  return t;
}

/** A step's figures: the candidate's totals (canary: `candidate`, shadow: `shadow`) and production's requests. */
export function figuresOf(
  candidate: TrafficTotals,
  production: TrafficTotals,
  reference: PredictionReference | undefined,
): TrafficFigures {
  const predictedRows = candidate.bins
    ? candidate.bins.reduce((a, b) => a + b, 0)
    : Object.values(candidate.classes ?? {}).reduce((a, b) => a + b, 0);
  return {
    requests: candidate.requests,
    errors: candidate.errors,
    errorRate: candidate.requests > 0 ? candidate.errors / candidate.requests : null,
    latencyP99Ms: bucketQuantile(candidate.latency, 0.99),
    predictedRows,
    psi: reference
      ? predictionPsi(
          reference,
          {
            ...(candidate.bins ? { bins: candidate.bins } : {}),
            ...(candidate.classes ? { classes: candidate.classes } : {}),
          },
          // An empty bin by chance must not decide the guard (docs/rollout.md, PSI and sample size).
          { smoothed: true },
        )
      : null,
    compared: candidate.compared,
    agreement: candidate.compared > 0 ? candidate.agreed / candidate.compared : null,
    productionRequests: production.requests,
  };
}

/** Traffic records in Cosmos (container `traffic`). */
export class TrafficStore {
  constructor(private readonly cosmos: Pick<CosmosStore, 'create' | 'query'>) {}

  /** Writes a flush's records; a record already there (a retried write) counts as written. */
  async write(records: TrafficRecord[]): Promise<void> {
    await Promise.all(
      records.map(async (r) => {
        const res = await this.cosmos.create('traffic', r);
        if (!res.ok && res.conflict.code !== 'COSMOS_CONFLICT') throw res.conflict;
      }),
    );
  }

  /** Every record of one step of a rollout. */
  async ofStep(modelName: string, rolloutId: string, step: number): Promise<TrafficRecord[]> {
    const docs = await this.cosmos.query<TrafficRecord>(
      'traffic',
      {
        query:
          'SELECT * FROM c WHERE c.modelName = @m AND c.kind = "traffic" AND c.rolloutId = @r AND c.step = @s',
        parameters: [
          { name: '@m', value: modelName },
          { name: '@r', value: rolloutId },
          { name: '@s', value: step },
        ],
      },
      modelName,
    );
    return docs.flatMap((d) => {
      const parsed = trafficRecordSchema.safeParse(d);
      return parsed.success ? [parsed.data] : [];
    });
  }
}
