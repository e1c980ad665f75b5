import { TransientError } from '../errors';
import type { FeatureColumn, OnnxModelOptions, Scores } from './onnxModel';
import { OnnxModel } from './onnxModel';

/** A model to score: its digest (the cache key) and how to get its ONNX bytes the first time. */
export interface OnnxModelSource extends Omit<OnnxModelOptions, 'batchSize' | 'sessionOptions'> {
  digest: string;
  load: () => Promise<Uint8Array>;
}

export interface OnnxModelsOptions {
  /** Sessions kept loaded (default 8); the least recently used is released beyond that. */
  maxSessions?: number;
  batchSize?: number;
  sessionOptions?: OnnxModelOptions['sessionOptions'];
}

/**
 * ONNX sessions cached by model digest, least recently used first out. An instance belongs to
 * whoever builds it (the composition root, an evaluation); there is no module-level cache. An
 * evicted session is released once its runs in flight finish; concurrent first uses of a digest
 * share one load, and a failed load is not cached.
 */
export class OnnxModels {
  private readonly entries = new Map<string, Promise<OnnxModel>>();
  private readonly maxSessions: number;

  constructor(private readonly options: OnnxModelsOptions = {}) {
    this.maxSessions = Math.max(1, options.maxSessions ?? 8);
  }

  /** Digests loaded or loading, least recently used first. */
  get digests(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * The model for this digest, loading it on first use. A digest names one model folder, so the
   * features, task and classes of the first use stand for every later one.
   */
  model(source: OnnxModelSource): Promise<OnnxModel> {
    const cached = this.entries.get(source.digest);
    if (cached) {
      this.entries.delete(source.digest);
      this.entries.set(source.digest, cached);
      return cached;
    }
    const loading = source.load().then((bytes) =>
      OnnxModel.load(bytes, {
        features: source.features,
        task: source.task,
        classes: source.classes,
        batchSize: this.options.batchSize,
        sessionOptions: this.options.sessionOptions,
      }),
    );
    this.entries.set(source.digest, loading);
    loading.catch(() => {
      if (this.entries.get(source.digest) === loading) this.entries.delete(source.digest);
    });
    while (this.entries.size > this.maxSessions) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Promise<OnnxModel>];
      this.entries.delete(oldest);
      entry.then((m) => m.release()).catch(() => undefined);
    }
    return loading;
  }

  /** Scores rows with the model of this digest (see `OnnxModel.score`). */
  async score(source: OnnxModelSource, rows: readonly Record<string, unknown>[]): Promise<Scores> {
    // A model evicted between its load and this call is loaded again, a bounded number of times.
    for (let attempt = 0; attempt < 3; attempt++) {
      const m = await this.model(source);
      if (m.usable) return m.score(rows);
    }
    throw new TransientError(
      'onnx_cache_thrashing',
      `the ONNX session cache keeps evicting ${source.digest}`,
    );
  }

  /** Scores rows given as one column per feature with the model of this digest (see `OnnxModel.scoreColumns`). */
  async scoreColumns(source: OnnxModelSource, columns: readonly FeatureColumn[], n: number): Promise<Scores> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const m = await this.model(source);
      if (m.usable) return m.scoreColumns(columns, n);
    }
    throw new TransientError(
      'onnx_cache_thrashing',
      `the ONNX session cache keeps evicting ${source.digest}`,
    );
  }

  /** Releases one digest's session (after its runs in flight). */
  async evict(digest: string): Promise<void> {
    const entry = this.entries.get(digest);
    if (!entry) return;
    this.entries.delete(digest);
    await entry.then((m) => m.release()).catch(() => undefined);
  }

  /** Releases every session. */
  async dispose(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.then((m) => m.release()).catch(() => undefined)));
  }
}
