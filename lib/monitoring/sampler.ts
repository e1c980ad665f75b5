import { randomFillSync, randomUUID } from 'node:crypto';
import type { PredictionSample } from './samples';
import { hashFeature, newPredictionId } from './samples';
import type { AnsweredRequest } from '../serving/rollout';
import { BatchWriter } from '../storage/batchWriter';

/**
 * Samples predict requests for live-traffic monitoring (docs/monitoring.md). `sample` is cheap and
 * synchronous: it always returns a prediction id for the answer, and keeps the request (rows with
 * hashed features hashed and dropped ones left out, predictions, latency) in this instance's buffer
 * when the model's pipeline samples it. The buffer is written as one JSON Lines blob per model every
 * `flushEveryMs` or `flushEveryRows` sampled rows, whichever comes first: never a blob per request,
 * never on the request's path, through the shared batching writer (lib/storage/batchWriter.ts). A
 * failed write keeps its samples for the next flush (up to `maxBuffered` rows; beyond that the
 * oldest are dropped and counted).
 *
 * A model's sampling settings come from its pipeline, looked up in the background and kept
 * `settingsTtlMs`: until the first lookup has answered, requests are not sampled.
 */

export interface SamplingSettings {
  sampleRate: number;
  hashFeatures: readonly string[];
  dropFeatures: readonly string[];
}

/** What the sampler is handed: the answered request serving reports (lib/serving/rollout.ts). */
export type SampleInput = AnsweredRequest;

export interface PredictionSamplerDeps {
  /** The model's sampling settings (undefined: not monitored). */
  settingsOf(modelName: string): Promise<SamplingSettings | undefined>;
  write(modelName: string, source: string, seq: number, samples: PredictionSample[]): Promise<void>;
  flushEveryMs: number;
  flushEveryRows: number;
  settingsTtlMs: number;
  maxBuffered?: number;
  now?: () => number;
  random?: () => number;
  log?: (message: string) => void;
}

interface SettingsEntry {
  settings: SamplingSettings | undefined;
  /** The feature lists as sets (undefined: none), built once per lookup, not per sampled request. */
  hashed: ReadonlySet<string> | undefined;
  dropped: ReadonlySet<string> | undefined;
  checkedAt: number;
  refreshing: boolean;
}

/**
 * Random bytes drawn a pool at a time: one `randomBytes(8)` per request costs a call into OpenSSL
 * each (the largest part of sampling's cost per request, profiled in bench/scoring/rollout.ts);
 * filling 4 KiB at once and handing out 8 bytes each gives the same cryptographically random,
 * never reused bytes for 512 ids per call. Per sampler instance (no module state in lib/).
 */
const ID_POOL_BYTES = 4096;
const ID_BYTES = 8;

class RandomHex {
  private readonly pool = Buffer.allocUnsafe(ID_POOL_BYTES);
  private offset = ID_POOL_BYTES;

  /** 16 hex digits no earlier call of this instance handed out. */
  next(): string {
    if (this.offset + ID_BYTES > ID_POOL_BYTES) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const hex = this.pool.toString('hex', this.offset, this.offset + ID_BYTES);
    this.offset += ID_BYTES;
    return hex;
  }
}

export class PredictionSampler {
  private buffer = new Map<string, PredictionSample[]>();
  private readonly writer: BatchWriter<PredictionSample>;
  private readonly settings = new Map<string, SettingsEntry>();
  private readonly source = randomUUID();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly ids = new RandomHex();
  /** The id prefix of the last millisecond seen: base 36 of a 13-digit time costs more than the rest of an id. */
  private idAt = NaN;
  private idPrefix = '';

  constructor(private readonly deps: PredictionSamplerDeps) {
    this.now = deps.now ?? (() => Date.now());
    this.random = deps.random ?? Math.random;
    this.writer = new BatchWriter<PredictionSample>({
      take: () => {
        const taken = [...this.buffer.values()].flat();
        this.buffer = new Map();
        return taken;
      },
      write: (samples, seq) => this.write(samples, seq),
      flushEveryMs: deps.flushEveryMs,
      flushEvery: deps.flushEveryRows,
      weight: (sample) => sample.rows.length,
      maxUnwritten: deps.maxBuffered ?? 100_000,
      log: (m) => deps.log?.(`monitoring samples: ${m}`),
    });
  }

  /** Samples dropped because too many were kept after failed writes. */
  get dropped(): number {
    return this.writer.dropped;
  }

  /** The answer's prediction id; the request is buffered when the model is sampled and the draw says so. */
  sample(input: SampleInput): string {
    const t = this.now();
    if (t !== this.idAt) {
      // newPredictionId with no random part is the id's time prefix; the random hex follows it.
      this.idPrefix = newPredictionId(t, '');
      this.idAt = t;
    }
    const predictionId = this.idPrefix + this.ids.next();
    const entry = this.settingsFor(input.modelName, t);
    const settings = entry.settings;
    if (!settings || settings.sampleRate <= 0 || this.random() >= settings.sampleRate) return predictionId;
    const { hashed, dropped } = entry;
    const plain = !hashed && !dropped;
    const rows = input.rows.map((row) => {
      const out: Record<string, unknown> = {};
      // Own enumerable keys, as Object.entries gives them, without an array of pairs per row.
      for (const k in row) {
        if (!Object.prototype.hasOwnProperty.call(row, k)) continue;
        const v = row[k];
        if (plain) {
          out[k] = v;
          continue;
        }
        if (dropped?.has(k)) continue;
        out[k] = hashed?.has(k) && v !== null && v !== undefined ? hashFeature(input.modelName, v) : v;
      }
      return out;
    });
    const sample: PredictionSample = {
      predictionId,
      at: new Date(t).toISOString(),
      modelName: input.modelName,
      version: input.version,
      variant: input.variant,
      rows,
      predictions: [...input.predictions],
      ...(input.latencyMs !== undefined ? { latencyMs: input.latencyMs } : {}),
    };
    this.add(sample);
    return predictionId;
  }

  private settingsFor(modelName: string, now: number): SettingsEntry {
    let entry = this.settings.get(modelName);
    if (!entry) {
      entry = {
        settings: undefined,
        hashed: undefined,
        dropped: undefined,
        checkedAt: -Infinity,
        refreshing: false,
      };
      this.settings.set(modelName, entry);
    }
    if (!entry.refreshing && now - entry.checkedAt >= this.deps.settingsTtlMs) {
      const e = entry;
      e.refreshing = true;
      this.deps
        .settingsOf(modelName)
        .then((s) => {
          e.settings = s;
          e.hashed = s && s.hashFeatures.length > 0 ? new Set(s.hashFeatures) : undefined;
          e.dropped = s && s.dropFeatures.length > 0 ? new Set(s.dropFeatures) : undefined;
        })
        .catch((err: unknown) => {
          this.deps.log?.(`monitoring settings of ${modelName}: ${(err as Error).message}`);
        })
        .finally(() => {
          e.checkedAt = this.now();
          e.refreshing = false;
        });
    }
    return entry;
  }

  private add(sample: PredictionSample): void {
    const list = this.buffer.get(sample.modelName) ?? [];
    list.push(sample);
    this.buffer.set(sample.modelName, list);
    this.writer.added(sample.rows.length);
  }

  /** One blob per model; resolves with the samples of the models whose write failed. */
  private async write(samples: PredictionSample[], seq: number): Promise<PredictionSample[]> {
    const byModel = new Map<string, PredictionSample[]>();
    for (const sample of samples) {
      const list = byModel.get(sample.modelName) ?? [];
      list.push(sample);
      byModel.set(sample.modelName, list);
    }
    const left = await Promise.all(
      [...byModel].map(async ([model, list]) => {
        try {
          await this.deps.write(model, this.source, seq, list);
          return [];
        } catch (err) {
          this.deps.log?.(`monitoring samples of ${model}: write failed, kept: ${(err as Error).message}`);
          return list;
        }
      }),
    );
    return left.flat();
  }

  /** Writes what is buffered, one blob per model (one flush at a time). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Writes what is left (shutdown, tests). */
  close(): Promise<void> {
    return this.writer.close();
  }
}
