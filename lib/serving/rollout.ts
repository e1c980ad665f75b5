import { performance } from 'node:perf_hooks';
import { TransientError } from '../errors';
import { agrees } from '../rollout/figures';
import type { LiveRollout, RolloutDoc } from '../rollout/records';
import { LIVE_STATES } from '../rollout/records';
import { bucketOf, BUCKETS } from '../rollout/routing';
import type { TrafficSample, Variant } from '../rollout/traffic';
import type { Prediction, ProductionModels, ServedModel } from './production';
import { scoreServed } from './production';
import type { RowWarning } from './rows';

/**
 * Predict with rollouts: production answers unless the model has a live rollout (lib/rollout),
 * whose state is read with one point read and kept `stateTtlMs` per instance (a stale state keeps
 * answering while one background read refreshes it, as the production alias does).
 *
 * - canary: `percent` of requests go to the candidate, chosen by the request key's hash when one
 *   is given (sticky: the same key lands on the same side for a step) or at random. A candidate
 *   that fails (loading or scoring) is answered by production and counted as a candidate error.
 * - shadow: production answers; `percent` of requests are scored again by the candidate after the
 *   answer, off the request's path (at most `maxShadowInFlight` at once; the rest are skipped), and
 *   compared.
 *
 * Rows are validated against production's features first: a bad request is the client's error
 * (400), never the candidate's. The candidate is only ever the approved version the rollout
 * document names, with the digest it names; nothing else is served besides production.
 * Every request under a live rollout adds a sample to the traffic recorder (in memory).
 */

export interface RolloutPrediction extends Prediction {
  /** The version that answered (also `version`). */
  modelVersion: number;
  variant: Exclude<Variant, 'shadow'>;
  /** Names this answer for feedback (docs/monitoring.md); set when monitoring's sampler is wired in. */
  predictionId?: string;
}

/** One answered request, for live-traffic monitoring's sampler (it decides whether to keep it). */
export interface AnsweredRequest {
  modelName: string;
  version: number;
  variant: string;
  rows: readonly Record<string, unknown>[];
  predictions: readonly (string | number)[];
  latencyMs?: number;
}

export interface RolloutServingDeps {
  models: Pick<ProductionModels, 'get' | 'version' | 'invalidate'>;
  /** Reads the model's rollout document (undefined: none). */
  readRollout: (modelName: string) => Promise<RolloutDoc | undefined>;
  record: (sample: TrafficSample) => void;
  /** Live-traffic monitoring: synchronous and cheap; returns the answer's prediction id. */
  sample?: (request: AnsweredRequest) => string;
  stateTtlMs: number;
  maxShadowInFlight?: number;
  now?: () => number;
  /** Random bucket for requests without a key. */
  random?: () => number;
  log?: (message: string) => void;
}

interface StateEntry {
  rollout: LiveRollout | undefined;
  checkedAt: number;
  refreshing?: Promise<LiveRollout | undefined>;
}

export class RolloutServing {
  private readonly states = new Map<string, StateEntry>();
  private shadowInFlight = 0;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly deps: RolloutServingDeps) {
    this.now = deps.now ?? (() => Date.now());
    this.random = deps.random ?? Math.random;
  }

  /** The model's rollout as this instance knows it (cached; see the class comment). */
  rollout(modelName: string): LiveRollout | undefined | Promise<LiveRollout | undefined> {
    const entry = this.states.get(modelName);
    if (entry && !entry.refreshing && this.now() - entry.checkedAt >= this.deps.stateTtlMs) {
      this.refresh(modelName, entry).catch(() => undefined);
    }
    if (entry && entry.checkedAt > 0) return entry.rollout;
    return this.refresh(modelName, entry ?? { rollout: undefined, checkedAt: 0 });
  }

  private refresh(modelName: string, entry: StateEntry): Promise<LiveRollout | undefined> {
    if (entry.refreshing) return entry.refreshing;
    const before = entry.rollout;
    entry.refreshing = this.deps
      .readRollout(modelName)
      .then((doc) => {
        const rollout = doc ? live(doc) : undefined;
        // Production just moved to the candidate: look the alias up now rather than serve the
        // previous version until its own cache expires.
        if (rollout?.state === 'completed' && before?.state !== 'completed' && before !== undefined)
          this.deps.models.invalidate(modelName);
        this.states.set(modelName, { rollout, checkedAt: this.now() });
        return rollout;
      })
      .catch((err: unknown) => {
        // Cosmos blipped: keep what we knew (production serves if we knew nothing).
        this.states.set(modelName, { rollout: before, checkedAt: this.now() });
        this.deps.log?.(`rollout state of ${modelName}: ${(err as Error).message}`);
        if (before === undefined && !(err instanceof TransientError)) return undefined;
        return before;
      });
    this.states.set(modelName, entry);
    return entry.refreshing;
  }

  /** Validates and scores a request; `key` makes the canary assignment sticky. */
  async predict(modelName: string, body: unknown, key?: string): Promise<RolloutPrediction> {
    const production = await this.deps.models.get(modelName);
    const warnings: RowWarning[] = [];
    const rows = production.validate(body, warnings);
    // Cached (the usual case): no await, so no extra turn of the microtask queue per request.
    const state = this.rollout(modelName);
    const r = state instanceof Promise ? await state : state;
    if (!r || !LIVE_STATES.has(r.state) || r.percent <= 0) {
      if (!this.deps.sample) return this.answer(await scoreServed(production, rows, warnings), 'production');
      // Monitored: production's own traffic stats (volume, errors, latency) as well.
      const t0 = performance.now();
      const version = production.version;
      let result: Prediction;
      try {
        result = await scoreServed(production, rows, warnings);
      } catch (err) {
        this.deps.record({ modelName, version, variant: 'production', error: true, rows: rows.length });
        throw err;
      }
      const latencyMs = performance.now() - t0;
      this.deps.record({ modelName, version, variant: 'production', latencyMs, rows: rows.length });
      return this.answer(result, 'production', rows, latencyMs);
    }
    const bucket = key !== undefined ? bucketOf(key, r.rolloutId) : Math.floor(this.random() * BUCKETS);
    const chosen = bucket < (r.percent / 100) * BUCKETS;
    if (r.strategy === 'canary' && chosen) {
      try {
        const candidate = await this.deps.models.version(modelName, r.candidate.version, r.candidate.digest);
        // Scoring time only, as for production: the first request also loads the model.
        const t0 = performance.now();
        const own: RowWarning[] = [];
        const candidateRows = candidate.validate(body, own);
        const result = await scoreServed(candidate, candidateRows, own);
        const latencyMs = performance.now() - t0;
        // One literal of one shape (no spreads): this runs per request; the recorder reads an
        // undefined `step` or `reference` as absent.
        this.deps.record({
          modelName: r.modelName,
          version: r.candidate.version,
          variant: 'candidate',
          rolloutId: r.rolloutId,
          step: r.step >= 0 ? r.step : undefined,
          latencyMs,
          rows: rows.length,
          predictions: result.predictions as number[] | string[],
          reference: r.reference,
        });
        return this.answer(result, 'candidate', candidateRows, latencyMs);
      } catch (err) {
        this.deps.record({ ...sampleKey(r, 'candidate'), error: true, rows: rows.length });
        this.deps.log?.(
          `candidate ${modelName} v${r.candidate.version} failed, production answered: ${(err as Error).message}`,
        );
      }
    }
    const t0 = performance.now();
    const result = await scoreServed(production, rows, warnings);
    const latencyMs = performance.now() - t0;
    this.deps.record({
      modelName: r.modelName,
      version: production.version,
      variant: 'production',
      rolloutId: r.rolloutId,
      step: r.step >= 0 ? r.step : undefined,
      latencyMs,
      rows: rows.length,
    });
    if (r.strategy === 'shadow' && chosen) this.shadow(r, modelName, body, result);
    return this.answer(result, 'production', rows, latencyMs);
  }

  private answer(
    p: Prediction,
    variant: RolloutPrediction['variant'],
    rows?: readonly Record<string, unknown>[],
    latencyMs?: number,
  ): RolloutPrediction {
    // `p` is this request's own (scoreServed built it): named in place rather than copied again.
    const answered = p as RolloutPrediction;
    answered.modelVersion = p.version;
    answered.variant = variant;
    if (this.deps.sample && rows) {
      try {
        answered.predictionId = this.deps.sample({
          modelName: p.model,
          version: p.version,
          variant,
          rows,
          predictions: p.predictions,
          latencyMs,
        });
      } catch (err) {
        // Monitoring never fails a prediction.
        this.deps.log?.(`monitoring sample of ${p.model}: ${(err as Error).message}`);
      }
    }
    return answered;
  }

  /** Scores the candidate after the answer went out, and compares (skipped when too many are running). */
  private shadow(r: LiveRollout, modelName: string, body: unknown, answered: Prediction): void {
    if (this.shadowInFlight >= (this.deps.maxShadowInFlight ?? 4)) return;
    this.shadowInFlight++;
    setImmediate(() => {
      this.deps.models
        .version(modelName, r.candidate.version, r.candidate.digest)
        .then(async (candidate: ServedModel) => {
          const t0 = performance.now();
          const result = await scoreServed(candidate, candidate.validate(body, []), []);
          const latencyMs = performance.now() - t0;
          let agreed = 0;
          const n = Math.min(result.predictions.length, answered.predictions.length);
          for (let i = 0; i < n; i++) {
            if (agrees(result.predictions[i]!, answered.predictions[i]!, r.agreementTolerance)) agreed++;
          }
          this.deps.record({
            ...sampleKey(r, 'shadow'),
            latencyMs,
            rows: n,
            predictions: result.predictions as number[] | string[],
            ...(r.reference ? { reference: r.reference } : {}),
            compared: n,
            agreed,
          });
        })
        .catch(() => {
          this.deps.record({ ...sampleKey(r, 'shadow'), error: true, rows: 0 });
        })
        .finally(() => {
          this.shadowInFlight--;
        });
    });
  }

  /** Forget cached rollout states (tests; the operator endpoint after an action). */
  invalidate(modelName?: string): void {
    if (modelName) this.states.delete(modelName);
    else this.states.clear();
  }
}

function live(doc: RolloutDoc): LiveRollout {
  return {
    modelName: doc.modelName,
    rolloutId: doc.rolloutId,
    strategy: doc.strategy,
    state: doc.state,
    step: doc.step,
    percent: doc.percent,
    candidate: doc.candidate,
    ...(doc.reference ? { reference: doc.reference } : {}),
    agreementTolerance: doc.agreementTolerance,
    ...(doc.endedAt ? { endedAt: doc.endedAt } : {}),
  };
}

function sampleKey(
  r: LiveRollout,
  variant: Variant,
  version = r.candidate.version,
): Pick<TrafficSample, 'modelName' | 'version' | 'variant' | 'rolloutId' | 'step'> {
  return {
    modelName: r.modelName,
    version,
    variant,
    rolloutId: r.rolloutId,
    ...(r.step >= 0 ? { step: r.step } : {}),
  };
}
