import { randomBytes, randomUUID } from 'node:crypto';
import type { PredictionSample } from './samples';
import { hashFeature, newPredictionId } from './samples';
import type { AnsweredRequest } from '../serving/rollout';

/**
 * Samples predict requests for live-traffic monitoring (docs/monitoring.md). `sample` is cheap and
 * synchronous: it always returns a prediction id for the answer, and keeps the request (rows with
 * hashed features hashed and dropped ones left out, predictions, latency) in this instance's buffer
 * when the model's pipeline samples it. The buffer is written as one JSON Lines blob per model every
 * `flushEveryMs` or `flushEveryRows` sampled rows, whichever comes first: never a blob per request,
 * never on the request's path. A failed write keeps its samples for the next flush (up to
 * `maxBuffered` rows; beyond that the oldest are dropped and counted).
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
  checkedAt: number;
  refreshing: boolean;
}

export class PredictionSampler {
  private buffer = new Map<string, PredictionSample[]>();
  private rows = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly settings = new Map<string, SettingsEntry>();
  private readonly source = randomUUID();
  private readonly now: () => number;
  private readonly random: () => number;
  /** Samples dropped because the buffer was full (writes failing). */
  dropped = 0;

  constructor(private readonly deps: PredictionSamplerDeps) {
    this.now = deps.now ?? (() => Date.now());
    this.random = deps.random ?? Math.random;
  }

  /** The answer's prediction id; the request is buffered when the model is sampled and the draw says so. */
  sample(input: SampleInput): string {
    const t = this.now();
    const predictionId = newPredictionId(t, randomBytes(8).toString('hex'));
    const settings = this.settingsFor(input.modelName);
    if (!settings || settings.sampleRate <= 0 || this.random() >= settings.sampleRate) return predictionId;
    const hashed = new Set(settings.hashFeatures);
    const dropped = new Set(settings.dropFeatures);
    const rows = input.rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) {
        if (dropped.has(k)) continue;
        out[k] = hashed.has(k) && v !== null && v !== undefined ? hashFeature(input.modelName, v) : v;
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

  private settingsFor(modelName: string): SamplingSettings | undefined {
    let entry = this.settings.get(modelName);
    if (!entry) {
      entry = { settings: undefined, checkedAt: -Infinity, refreshing: false };
      this.settings.set(modelName, entry);
    }
    if (!entry.refreshing && this.now() - entry.checkedAt >= this.deps.settingsTtlMs) {
      const e = entry;
      e.refreshing = true;
      this.deps
        .settingsOf(modelName)
        .then((s) => {
          e.settings = s;
        })
        .catch((err: unknown) => {
          this.deps.log?.(`monitoring settings of ${modelName}: ${(err as Error).message}`);
        })
        .finally(() => {
          e.checkedAt = this.now();
          e.refreshing = false;
        });
    }
    return entry.settings;
  }

  private add(sample: PredictionSample): void {
    const list = this.buffer.get(sample.modelName) ?? [];
    list.push(sample);
    this.buffer.set(sample.modelName, list);
    this.rows += sample.rows.length;
    const max = this.deps.maxBuffered ?? 100_000;
    while (this.rows > max && list.length > 1) {
      this.rows -= list.shift()!.rows.length;
      this.dropped++;
    }
    if (this.rows >= this.deps.flushEveryRows) void this.flush();
    else this.arm();
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.deps.flushEveryMs);
    this.timer.unref();
  }

  /** Writes what is buffered, one blob per model (one flush at a time). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.buffer.size === 0) return Promise.resolve();
    const taken = this.buffer;
    this.buffer = new Map();
    this.rows = 0;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const seq = this.seq++;
    let failed = false;
    this.flushing = Promise.all(
      [...taken].map(async ([model, samples]) => {
        try {
          await this.deps.write(model, this.source, seq, samples);
        } catch (err) {
          failed = true;
          this.deps.log?.(`monitoring samples of ${model}: write failed, kept: ${(err as Error).message}`);
          const now = this.buffer.get(model) ?? [];
          this.buffer.set(model, [...samples, ...now]);
          this.rows += samples.reduce((a, s) => a + s.rows.length, 0);
        }
      }),
    )
      .then(() => undefined)
      .finally(() => {
        this.flushing = undefined;
        // Samples that came during the write: flush now when due, else on the timer (always the
        // timer after a failed write, so a storage outage is not retried in a tight loop).
        if (!failed && this.rows >= this.deps.flushEveryRows) void this.flush();
        else if (this.buffer.size > 0) this.arm();
      });
    return this.flushing;
  }

  /** Writes what is left (shutdown, tests). */
  async close(): Promise<void> {
    if (this.flushing) await this.flushing;
    await this.flush();
  }
}
