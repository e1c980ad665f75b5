import { NonRetriableError, TransientError, ValidationError } from '../errors';
import type { ModelRegistry } from '../registry/registry';
import type { ModelVersion } from '../registry/records';
import type { Scorer, ScorerDeps } from '../scoring/scorer';
import { loadScorer } from '../scoring/scorer';
import type { ContractLimits, FeatureSpec, RowValidator, RowWarning } from './rows';
import { compileRowValidator } from './rows';

/**
 * The production models the scoring endpoint serves, in process. The `production` alias is looked
 * up again after `aliasTtlMs`, so a promotion or rollback is served within that time without a
 * restart; a version's model is loaded once, and only if it hashes to the digest the registry
 * recorded (a swapped artifact is refused, never served). A model folder is served through ONNX
 * (the process's shared session cache); a legacy JSON version through the TS predict; a
 * python_function-only version is not served (409 `model_not_servable`).
 */

/** The production version has no ONNX flavor: it is registered and deployed, but not served here. */
export class ModelNotServableError extends ValidationError {
  constructor(
    readonly modelName: string,
    readonly version: number,
    why: string,
  ) {
    super('model_not_servable', why, { status: 409 });
  }
}

import { PRODUCTION_ALIAS } from '../registry/records';

export interface ServedModel {
  modelName: string;
  version: number;
  digest: string;
  scorer: Scorer;
  validate: RowValidator;
}

export interface ProductionModelsDeps {
  registry: Pick<ModelRegistry, 'getHead' | 'getVersion'>;
  /** The artifact store and the process's ONNX sessions (python_function models are not served). */
  scorers: Omit<ScorerDeps, 'pythonFunction'>;
  aliasTtlMs: number;
  now?: () => number;
  /**
   * The dataset contract's bounds and categories for a version's features, and whether the
   * pipeline refuses rows outside them (its `serving.outOfContract`); undefined: types only.
   */
  contractLimitsOf?: (version: ModelVersion) => Promise<ContractLimits | undefined>;
}

interface Entry {
  served?: ServedModel;
  error?: Error;
  checkedAt: number;
  refreshing?: Promise<ServedModel>;
}

export interface Prediction {
  model: string;
  version: number;
  classes?: readonly string[];
  predictions: (string | number)[];
  probabilities?: number[][];
  /** Rows scored with a value the model did not see in training (absent when there are none). */
  warnings?: RowWarning[];
}

/** Versions other than production (rollout candidates) kept loaded at once. */
const MAX_CACHED_VERSIONS = 4;

/** Scores validated rows with a loaded model: values, or classes with their probabilities. */
export async function scoreServed(
  served: ServedModel,
  rows: Record<string, unknown>[],
  warnings: RowWarning[],
): Promise<Prediction> {
  const m = served.scorer;
  const modelName = served.modelName;
  const scores = await m.scoreRows(rows);
  const warned = warnings.length > 0 ? { warnings } : {};
  if (!m.classes) {
    return {
      model: modelName,
      version: served.version,
      predictions: Array.from(scores.values!),
      ...warned,
    };
  }
  const K = m.classes.length;
  const P = scores.probabilities!;
  const predictions: string[] = new Array<string>(rows.length);
  const probabilities: number[][] = new Array<number[]>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    let best = 0;
    const p = new Array<number>(K);
    for (let k = 0; k < K; k++) {
      p[k] = P[i * K + k]!;
      if (p[k]! > p[best]!) best = k;
    }
    predictions[i] = m.classes[best]!;
    probabilities[i] = p;
  }
  return {
    model: modelName,
    version: served.version,
    classes: m.classes,
    predictions,
    probabilities,
    ...warned,
  };
}

export class ProductionModels {
  private readonly entries = new Map<string, Entry>();
  private readonly versions = new Map<string, Promise<ServedModel>>();
  private readonly now: () => number;
  constructor(private readonly deps: ProductionModelsDeps) {
    this.now = deps.now ?? (() => Date.now());
  }

  /**
   * The model now behind `production`. Within `aliasTtlMs` of the last lookup it comes from cache;
   * after that the cached model still answers while one background lookup runs (so requests never
   * queue behind the registry), and the next request sees the result.
   */
  get(modelName: string): Promise<ServedModel> {
    const entry = this.entries.get(modelName);
    const fresh = entry !== undefined && this.now() - entry.checkedAt < this.deps.aliasTtlMs;
    if (entry?.served) {
      if (!fresh) this.startRefresh(modelName, entry).catch(() => undefined);
      return Promise.resolve(entry.served);
    }
    if (fresh && entry?.error) return Promise.reject(entry.error);
    return this.startRefresh(modelName, entry ?? { checkedAt: 0 });
  }

  private startRefresh(modelName: string, entry: Entry): Promise<ServedModel> {
    if (entry.refreshing) return entry.refreshing;
    const previous = entry.served;
    entry.refreshing = this.refresh(modelName, previous)
      .then((served) => {
        this.entries.set(modelName, { served, checkedAt: this.now() });
        return served;
      })
      .catch((err: unknown) => {
        const error = err as Error;
        // The registry blipped: keep serving the version we have rather than failing every request.
        if (error instanceof TransientError && previous) {
          this.entries.set(modelName, { served: previous, checkedAt: this.now() });
          return previous;
        }
        this.entries.set(modelName, { error, checkedAt: this.now() });
        throw error;
      });
    this.entries.set(modelName, entry);
    return entry.refreshing;
  }

  private async refresh(modelName: string, current: ServedModel | undefined): Promise<ServedModel> {
    const head = await this.deps.registry.getHead(modelName);
    if (!head)
      throw new ValidationError('model_not_found', `No model named "${modelName}" is registered.`, {
        status: 404,
        field: 'name',
      });
    const version = head.aliases[PRODUCTION_ALIAS]?.version;
    if (version === undefined) {
      throw new ValidationError(
        'no_production_model',
        `Model "${modelName}" has no production version yet.`,
        { status: 404, field: 'name' },
      );
    }
    if (current && current.version === version) return current;
    const doc: ModelVersion | undefined = await this.deps.registry.getVersion(modelName, version);
    if (!doc)
      throw new NonRetriableError('version_not_found', `model "${modelName}" version ${version} is missing`);
    return this.load(modelName, doc);
  }

  private async load(modelName: string, doc: ModelVersion): Promise<ServedModel> {
    const version = doc.version;
    if (doc.artifact && doc.artifact.flavor !== 'onnx') {
      throw new ModelNotServableError(
        modelName,
        version,
        `version ${version} of ${modelName} has no ONNX flavor; Sluice serves ONNX models only`,
      );
    }
    const scorer = await loadScorer(this.deps.scorers, {
      uri: doc.artifactUri,
      digest: doc.modelDigest,
      ...(doc.artifact ? { artifact: doc.artifact } : {}),
    }).catch((err: unknown) => {
      // The store's own check (bytes that do not hash to the recorded digest) says the same thing.
      if ((err as { code?: string }).code === 'BLOB_DIGEST_MISMATCH') {
        throw new NonRetriableError(
          'model_digest_mismatch',
          `version ${version} of ${modelName}: ${(err as Error).message}; refusing to serve it`,
          { cause: err },
        );
      }
      throw err;
    });
    // A built-in model (its JSON at hand) is checked as before, categories included; any other
    // model by the names and kinds of its features.
    const features: FeatureSpec[] = scorer.definition
      ? scorer.definition.features
      : scorer.features.map((f) => ({ name: f.name, type: f.kind === 'number' ? 'numeric' : 'categorical' }));
    const limits = await this.deps.contractLimitsOf?.(doc);
    return {
      modelName,
      version,
      digest: doc.modelDigest,
      scorer,
      validate: compileRowValidator(features, limits),
    };
  }

  /** Validates the body's rows and scores them with the production model. */
  async predict(modelName: string, body: unknown): Promise<Prediction> {
    const served = await this.get(modelName);
    const warnings: RowWarning[] = [];
    const rows = served.validate(body, warnings);
    return scoreServed(served, rows, warnings);
  }

  /**
   * One version of a model, loaded like production's (digest checked, ONNX only), whatever the
   * aliases say: the candidate of a rollout. `digest` must be the digest the caller trusts (the
   * approved one); a version whose registry record names another is refused. Kept per version
   * (a few at most) until {@link invalidate}.
   */
  version(modelName: string, version: number, digest: string): Promise<ServedModel> {
    const key = `${modelName}@${version}`;
    let found = this.versions.get(key);
    if (!found) {
      found = this.loadVersion(modelName, version, digest);
      // At most a few candidates at once (one rollout per model); the oldest goes first.
      if (this.versions.size >= MAX_CACHED_VERSIONS) this.versions.delete(this.versions.keys().next().value!);
      this.versions.set(key, found);
      found.catch(() => {
        if (this.versions.get(key) === found) this.versions.delete(key);
      });
    }
    return found;
  }

  private async loadVersion(modelName: string, version: number, digest: string): Promise<ServedModel> {
    const doc = await this.deps.registry.getVersion(modelName, version);
    if (!doc)
      throw new NonRetriableError('version_not_found', `model "${modelName}" version ${version} is missing`);
    if (doc.modelDigest !== digest) {
      throw new NonRetriableError(
        'model_digest_mismatch',
        `version ${version} of ${modelName} has digest ${doc.modelDigest}, not the approved ${digest}; refusing to serve it`,
      );
    }
    return this.load(modelName, doc);
  }

  /** Forget cached models (tests; a rollback handler calls it so its own instance answers at once). */
  invalidate(modelName?: string): void {
    if (modelName) {
      this.entries.delete(modelName);
      for (const k of [...this.versions.keys()]) if (k.startsWith(`${modelName}@`)) this.versions.delete(k);
    } else {
      this.entries.clear();
      this.versions.clear();
    }
  }
}
