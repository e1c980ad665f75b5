import type { DatasetContract } from '../contracts/datasetContract';
import { datasetContractDigest } from '../data/checking/report';
import type { ReferenceProfile, ReferenceProfileKey } from '../data/profiling/referenceProfile';
import {
  buildReferenceProfile,
  decodeReferenceProfile,
  encodeReferenceProfile,
} from '../data/profiling/referenceProfile';
import { loadReferenceProfile, storeReferenceProfile } from '../data/profiling/referenceStore';
import { decodeColumnar } from '../data/reading/columnar';
import { metricIntervals } from '../evaluation/bootstrap';
import type { PipelineDefinition, MonitoringSpec } from '../pipelines/definition';
import { modelNameOf } from '../pipelines/definition';
import type { ModelVersion } from '../registry/records';
import { columnarReferenceOf } from '../registry/records';
import { bucketQuantile, psiRowsNeeded, referenceBins } from '../rollout/figures';
import type { RolloutDoc } from '../rollout/records';
import type { TrafficRecord } from '../rollout/traffic';
import { sumRecords, trafficRecordSchema } from '../rollout/traffic';
import type { MonitoredReference, ReferenceFailure } from '../serving/reference';
import type { ArtifactStore } from '../storage/blob';
import type { CosmosStore } from '../storage/cosmos';
import { liveFeatureDrift, livePredictionPsi } from './drift';
import type { FeatureDriftSummary, LabelDoc, LiveMetric, MonitoringDoc } from './records';
import { MONITORING_DOC_ID } from './records';
import type { SampleStore } from './samples';
import type { MonitoringStore } from './store';

/**
 * One monitoring window of one model (docs/monitoring.md): the window's sampled requests against the
 * production model's training data (feature drift) and holdout predictions (prediction drift), the
 * traffic records' volume, error rate and latency, and the live metric of the labels received. The
 * result is the model's monitoring document; whether it is a finding is judged by the pipeline's
 * policy here, and proposals.ts decides what a finding leads to.
 */

export interface MonitoringDeps {
  artifacts: Pick<ArtifactStore, 'getBuffer' | 'put'>;
  cosmos: Pick<CosmosStore, 'query'>;
  samples: Pick<SampleStore, 'read'>;
  store: Pick<MonitoringStore, 'labelsSince'>;
  /** The production version of a model (undefined: none yet). */
  production(modelName: string): Promise<ModelVersion | undefined>;
  /** The model's rollout document (its prediction reference, when the production version was rolled out). */
  rollout(modelName: string): Promise<RolloutDoc | undefined>;
  /**
   * The recorded holdout prediction reference of a version with the holdout rows it was built from
   * (lib/serving/reference.ts monitoredReference), for a version that reached production without a
   * rollout (`direct`, a rollback); `failure` when it could not be made (remembered, backed off).
   * Undefined, or no `reference`: none can be made.
   */
  reference(version: ModelVersion, now: Date): Promise<MonitoredReference | undefined>;
}

/** Days of labels the live metric counts. */
export const LIVE_LABEL_DAYS = 7;
const BOOTSTRAP = { resamples: 1000, confidence: 0.95, seed: 20 };

/** The traffic records of a model whose time span meets [from, to). */
export async function trafficIn(
  cosmos: Pick<CosmosStore, 'query'>,
  modelName: string,
  from: Date,
  to: Date,
): Promise<TrafficRecord[]> {
  const docs = await cosmos.query<TrafficRecord>(
    'traffic',
    {
      query:
        'SELECT * FROM c WHERE c.modelName = @m AND c.kind = "traffic" AND c["to"] >= @start AND c["from"] < @end',
      parameters: [
        { name: '@m', value: modelName },
        { name: '@start', value: from.toISOString() },
        { name: '@end', value: to.toISOString() },
      ],
    },
    modelName,
  );
  return docs.flatMap((d) => {
    const p = trafficRecordSchema.safeParse(d);
    return p.success ? [p.data] : [];
  });
}

/** The reference profile of the data a version was trained on: the stored one, else built from its columnar form (and stored). */
export async function trainingReference(
  artifacts: Pick<ArtifactStore, 'getBuffer' | 'put'>,
  contract: DatasetContract,
  version: ModelVersion,
): Promise<ReferenceProfile | undefined> {
  const columnar = columnarReferenceOf(version.tags)?.columnar;
  if (!columnar) return undefined;
  const key: ReferenceProfileKey = {
    dataSha256: columnar.sha256,
    contractSha256: datasetContractDigest(contract),
  };
  const stored = await loadReferenceProfile(artifacts as ArtifactStore, key);
  if (stored) {
    try {
      return decodeReferenceProfile(stored, key);
    } catch {
      // Damaged or of another format version: rebuild below.
    }
  }
  const { data } = await artifacts.getBuffer(columnar.uri, { sha256: columnar.sha256 });
  const profile = buildReferenceProfile(decodeColumnar(data));
  await storeReferenceProfile(artifacts as ArtifactStore, key, encodeReferenceProfile(profile, key)).catch(
    () => undefined,
  );
  return profile;
}

/** The live metric of labels: accuracy for classes, mean absolute error for numbers, with a bootstrap CI. */
export function liveMetric(labels: readonly LabelDoc[], classes: boolean, since: string): LiveMetric {
  const n = labels.length;
  const metric = classes ? 'accuracy' : 'mae';
  const per = labels.map((l) =>
    classes
      ? String(l.prediction) === String(l.label)
        ? 1
        : 0
      : Math.abs(Number(l.prediction) - Number(l.label)),
  );
  const value = n > 0 ? per.reduce((a, b) => a + b, 0) / n : null;
  const fn = (w?: ArrayLike<number>): number => {
    let s = 0;
    let c = 0;
    for (let i = 0; i < n; i++) {
      const k = w ? w[i]! : 1;
      s += k * per[i]!;
      c += k;
    }
    return c > 0 ? s / c : NaN;
  };
  const ci = n > 1 ? metricIntervals(n, [{ m: fn }], BOOTSTRAP)[0]!.m! : { lower: null, upper: null };
  return { metric, labels: n, value, ci: { ...ci, confidence: BOOTSTRAP.confidence }, since };
}

function notTestable(reason: string): FeatureDriftSummary {
  return {
    status: 'notTestable',
    reason,
    driftedShare: 0,
    driftedColumns: [],
    criticalDrifted: [],
    rule: '',
    columns: [],
  };
}

/** Computes the monitoring document of one window (nothing is written). */
export async function computeMonitoring(
  deps: MonitoringDeps,
  pipeline: { name: string; definition: PipelineDefinition },
  window: { from: Date; to: Date },
  now: Date,
): Promise<MonitoringDoc> {
  const def = pipeline.definition;
  const spec = def.monitoring as MonitoringSpec;
  const modelName = modelNameOf(def);
  const production = await deps.production(modelName);
  const [samples, records, rollout] = await Promise.all([
    deps.samples.read(modelName, window.from, window.to),
    trafficIn(deps.cosmos, modelName, window.from, window.to),
    deps.rollout(modelName),
  ]);
  // Production's own answers only: a canary's candidate has its own guards.
  const served = samples.filter((s) => production === undefined || s.version === production.version);
  const rows = served.flatMap((s) => s.rows);
  const predictions = served.flatMap((s) => s.predictions);

  const t = sumRecords(records.filter((r) => r.variant !== 'shadow'));
  const traffic = {
    requests: t.requests,
    errors: t.errors,
    errorRate: t.requests > 0 ? t.errors / t.requests : null,
    latencyP50Ms: bucketQuantile(t.latency, 0.5),
    latencyP99Ms: bucketQuantile(t.latency, 0.99),
  };

  let featureDrift: FeatureDriftSummary;
  if (!production) featureDrift = notTestable('no production version');
  else if (rows.length === 0) featureDrift = notTestable('no sampled requests in the window');
  else {
    const reference = await trainingReference(deps.artifacts, def.dataset, production);
    featureDrift = reference
      ? liveFeatureDrift(def.dataset, reference, rows, {
          target: def.training.target,
          hashed: spec.hashFeatures,
          dropped: spec.dropFeatures,
        })
      : notTestable('the production version names no training data (no columnar reference)');
  }

  // A reference that cannot be read or scored now (storage down, a scorer failing) costs this
  // window its prediction drift only, said why; the rest of the document still stands.
  // A failure to make it is remembered and backed off (lib/serving/reference.ts), said here with
  // when it is tried again.
  let refFailure: string | undefined;
  let remembered: ReferenceFailure | undefined;
  const made: MonitoredReference | undefined = !production
    ? undefined
    : rollout?.reference && rollout.candidate.version === production.version
      ? { reference: rollout.reference, rows: rollout.holdoutRows }
      : await deps.reference(production, now).catch((err: unknown) => {
          refFailure = err instanceof Error ? err.message : String(err);
          return undefined;
        });
  if (made?.failure) remembered = made.failure;
  const ref = made?.reference;
  const max = spec.policy.maxPredictionPsi;
  let predictionDrift: MonitoringDoc['predictionDrift'];
  if (!ref) {
    predictionDrift = {
      psi: null,
      reason: !production
        ? 'no production version'
        : refFailure !== undefined
          ? `the holdout prediction reference of version ${production.version} could not be made: ${refFailure}`
          : remembered
            ? `the holdout prediction reference of version ${production.version} could not be made: ${remembered.reason} (failed ${remembered.failures} time${remembered.failures === 1 ? '' : 's'} in a row since ${remembered.firstAt}; not tried again before ${remembered.retryAfter})`
            : 'no holdout predictions for the production version (no columnar dataset, or not scored in process)',
      ...(remembered ? { retryAfter: remembered.retryAfter } : {}),
    };
  } else if (predictions.length === 0) {
    predictionDrift = { psi: null, reason: 'no sampled predictions in the window' };
  } else {
    // Noise-aware, as the rollout's PSI guard (docs/rollout.md, PSI and sample size): smoothed
    // shares, and judged only from the rows at which an unshifted model crosses the limit by
    // sampling noise in at most 5 % of windows.
    const live = livePredictionPsi(ref, predictions);
    const minRows =
      max === undefined
        ? null
        : psiRowsNeeded(max, referenceBins(ref), made?.rows ?? 0, spec.policy.minSamples);
    const judged = minRows !== null && live.rows >= minRows;
    predictionDrift = {
      psi: live.psi,
      rows: live.rows,
      minRows,
      judged,
      ...(minRows !== null && !judged
        ? {
            reason: `not judged: ${live.rows} of ${minRows} predicted rows (the PSI of fewer rows is mostly sampling noise at this limit and holdout size)`,
          }
        : {}),
    };
  }

  const since = new Date(now.getTime() - LIVE_LABEL_DAYS * 86_400_000).toISOString();
  const labels = await deps.store.labelsSince(modelName, since);
  const classes =
    labels.some((l) => typeof l.prediction === 'string') ||
    def.dataset.task === 'binary' ||
    def.dataset.task === 'multiclass';
  const live = labels.length > 0 ? liveMetric(labels, classes, since) : undefined;

  const reasons: string[] = [];
  const judged = rows.length >= spec.policy.minSamples;
  if (!judged) reasons.push(`${rows.length} sampled rows; the policy judges from ${spec.policy.minSamples}`);
  else {
    if (spec.policy.featureDrift && featureDrift.status === 'drifted')
      reasons.push(`feature drift: ${featureDrift.driftedColumns.join(', ')} drifted (${featureDrift.rule})`);
    if (
      max !== undefined &&
      predictionDrift.judged === true &&
      predictionDrift.psi !== null &&
      predictionDrift.psi > max
    )
      reasons.push(`prediction drift: PSI ${predictionDrift.psi.toFixed(3)} > ${max}`);
  }
  return {
    id: MONITORING_DOC_ID,
    kind: 'monitoring',
    modelName,
    pipeline: pipeline.name,
    version: production?.version ?? null,
    window: { from: window.from.toISOString(), to: window.to.toISOString() },
    computedAt: now.toISOString(),
    samples: { requests: served.length, rows: rows.length },
    traffic,
    featureDrift,
    predictionDrift,
    ...(live ? { live } : {}),
    finding: { drifted: judged && reasons.length > 0, reasons },
  };
}
