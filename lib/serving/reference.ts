import { z } from 'zod';
import { isCustomSpec, trainingSpecSchema } from '../contracts/trainingSpec';
import { loadColumnar } from '../data/datasets';
import type { OnnxModels } from '../mlmodel/onnxModels';
import type { ModelVersion } from '../registry/records';
import { columnarReferenceOf } from '../registry/records';
import { loadScorer } from '../scoring/scorer';
import type { ArtifactStore } from '../storage/blob';
import { datasetFromTable, selectRows } from '../training/dataset';
import { splitForSpec } from '../training/models/train';
import { buildReference } from '../rollout/figures';
import type { PredictionReference } from '../rollout/records';
import { predictionReferenceSchema } from '../rollout/records';

/**
 * The reference of a model version's holdout predictions: the version's predictions on the holdout
 * rows evaluation scored it on (its columnar dataset, split as its training spec split it). A
 * rollout's PSI guard judges the candidate against it, and monitoring judges a production version's
 * live predictions against it, however the version reached production (rollout, `direct`, rollback).
 *
 * `versionReference` records it once per version in Blob (`reports/monitoring/references/<model>/
 * v<version>-<digest>.json`, written once with If-None-Match), so it is scored once, not per window.
 *
 * `monitoredReference` (monitoring's way in) also remembers a failure to make it, keyed by the
 * model's digest and the digest of the data the holdout comes from (`…/v<version>-<digest>.failed.json`),
 * and backs off (1 h after the first failure, doubling to at most 24 h) instead of paying the
 * scoring again every window; the failure, how often and when it is tried next are its answer.
 */

export interface ReferenceDeps {
  artifacts: ArtifactStore;
  onnx: OnnxModels;
}

export const REFERENCES_CONTAINER = 'reports';

/** Where a version's holdout prediction reference is recorded. */
export function referencePath(version: Pick<ModelVersion, 'modelName' | 'version' | 'modelDigest'>): string {
  const digest = version.modelDigest.replace(/^sha256:/, '').slice(0, 16);
  return `monitoring/references/${version.modelName}/v${version.version}-${digest}.json`;
}

const recordedSchema = z.object({
  modelName: z.string(),
  version: z.int(),
  modelDigest: z.string(),
  holdoutRows: z.int().nonnegative(),
  /** Absent: the version has no in-process scorer or names no holdout (no prediction drift). */
  reference: predictionReferenceSchema.optional(),
});

/**
 * The version's predictions on its holdout rows as a reference. Undefined (no PSI) when the version
 * records no columnar dataset or training spec, or is scored by a command rather than in process.
 */
export async function holdoutReference(
  deps: ReferenceDeps,
  version: ModelVersion,
): Promise<{ reference: PredictionReference | undefined; rows: number }> {
  const columnar = columnarReferenceOf(version.tags);
  const spec = trainingSpecSchema.safeParse(version.trainingSpec);
  if (!columnar || !spec.success || (isCustomSpec(spec.data) && version.artifact?.flavor !== 'onnx'))
    return { reference: undefined, rows: 0 };
  const full = datasetFromTable(await loadColumnar(deps.artifacts, columnar.columnar));
  const holdout = selectRows(full, splitForSpec(full, spec.data).holdout);
  const scorer = await loadScorer(
    { store: deps.artifacts, onnx: deps.onnx },
    {
      uri: version.artifactUri,
      digest: version.modelDigest,
      ...(version.artifact ? { artifact: version.artifact } : {}),
    },
  );
  const scores = await scorer.scoreDataset(holdout);
  let predictions: number[] | string[];
  if (scorer.classes && scores.probabilities) {
    const K = scorer.classes.length;
    const P = scores.probabilities;
    predictions = Array.from({ length: holdout.rowCount }, (_, i) => {
      let best = 0;
      for (let k = 1; k < K; k++) if (P[i * K + k]! > P[i * K + best]!) best = k;
      return scorer.classes![best]!;
    });
  } else {
    predictions = Array.from(scores.values ?? []);
  }
  return { reference: buildReference(predictions), rows: holdout.rowCount };
}

/** The version's recorded reference, if it has one (a read failure counts as none). */
async function recordedReference(
  deps: ReferenceDeps,
  version: ModelVersion,
): Promise<{ reference: PredictionReference | undefined; rows: number } | undefined> {
  const ref = { container: REFERENCES_CONTAINER, path: referencePath(version) };
  const stored = await deps.artifacts.tryGetJson(ref, recordedSchema).catch(() => undefined);
  return stored && stored.value.modelDigest === version.modelDigest
    ? { reference: stored.value.reference, rows: stored.value.holdoutRows }
    : undefined;
}

/**
 * The version's recorded holdout reference, scored and recorded on first use. A concurrent first
 * use records the same bytes (the scoring is deterministic), so either write is the record.
 */
export async function versionReference(
  deps: ReferenceDeps,
  version: ModelVersion,
): Promise<{ reference: PredictionReference | undefined; rows: number }> {
  return (await recordedReference(deps, version)) ?? scoreAndRecord(deps, version);
}

async function scoreAndRecord(
  deps: ReferenceDeps,
  version: ModelVersion,
): Promise<{ reference: PredictionReference | undefined; rows: number }> {
  const ref = { container: REFERENCES_CONTAINER, path: referencePath(version) };
  const { reference, rows } = await holdoutReference(deps, version);
  const record: z.infer<typeof recordedSchema> = {
    modelName: version.modelName,
    version: version.version,
    modelDigest: version.modelDigest,
    holdoutRows: rows,
    ...(reference ? { reference } : {}),
  };
  // Best effort: an unrecorded reference is scored again next time, never wrong.
  await deps.artifacts
    .put(ref, JSON.stringify(record), { contentType: 'application/json' })
    .catch(() => undefined);
  return { reference, rows };
}

/** After the first failure the reference is tried again this much later, doubling each time up to `maxMs`. */
export const REFERENCE_RETRY = { firstMs: 3_600_000, maxMs: 24 * 3_600_000 } as const;

/** Where a version's failure to make its reference is remembered. */
export function referenceFailurePath(
  version: Pick<ModelVersion, 'modelName' | 'version' | 'modelDigest'>,
): string {
  return referencePath(version).replace(/\.json$/, '.failed.json');
}

const failureSchema = z.object({
  modelName: z.string(),
  version: z.int(),
  modelDigest: z.string(),
  /** SHA-256 of the columnar data the holdout rows come from (null: the version names none). */
  dataDigest: z.string().nullable(),
  failures: z.int().positive(),
  firstAt: z.string(),
  lastAt: z.string(),
  reason: z.string(),
  retryAfter: z.string(),
});

/** Why a version has no reference for now, and when it is tried again. */
export interface ReferenceFailure {
  reason: string;
  /** Failures in a row for this model and data digest. */
  failures: number;
  firstAt: string;
  lastAt: string;
  /** Not scored again before this time. */
  retryAfter: string;
  /** True when this answer did not try (the last failure is recent); false: it tried now and failed. */
  backedOff: boolean;
}

export interface MonitoredReference {
  reference: PredictionReference | undefined;
  rows: number;
  /** Set when no reference could be made: the remembered failure. */
  failure?: ReferenceFailure;
}

const dataDigestOf = (version: ModelVersion): string | null =>
  columnarReferenceOf(version.tags)?.columnar.sha256 ?? null;

/** The wait after `failures` failures in a row. */
export function referenceRetryDelayMs(failures: number): number {
  return Math.min(REFERENCE_RETRY.firstMs * 2 ** Math.max(0, failures - 1), REFERENCE_RETRY.maxMs);
}

/**
 * The version's reference for monitoring: the recorded one; else, unless a failure to make it is
 * remembered for the same model and data digests and its retry time has not come, scored now. A
 * failure (other than a transient one: storage unavailable, throttling, which is tried again next
 * window and rethrown) is remembered with its reason, the count in a row and the next retry time,
 * and answered as `failure`. A success is recorded as usual, which supersedes the failure record.
 */
export async function monitoredReference(
  deps: ReferenceDeps,
  version: ModelVersion,
  now: Date,
): Promise<MonitoredReference> {
  const recorded = await recordedReference(deps, version);
  if (recorded) return recorded;
  const at = { container: REFERENCES_CONTAINER, path: referenceFailurePath(version) };
  const dataDigest = dataDigestOf(version);
  const stored = await deps.artifacts.tryGetJson(at, failureSchema).catch(() => undefined);
  const previous =
    stored && stored.value.modelDigest === version.modelDigest && stored.value.dataDigest === dataDigest
      ? stored.value
      : undefined;
  if (previous && now.getTime() < Date.parse(previous.retryAfter)) {
    const { reason, failures, firstAt, lastAt, retryAfter } = previous;
    return {
      reference: undefined,
      rows: 0,
      failure: { reason, failures, firstAt, lastAt, retryAfter, backedOff: true },
    };
  }
  try {
    return await scoreAndRecord(deps, version);
  } catch (err) {
    if ((err as { name?: string }).name === 'TransientError') throw err;
    const failures = (previous?.failures ?? 0) + 1;
    const record: z.infer<typeof failureSchema> = {
      modelName: version.modelName,
      version: version.version,
      modelDigest: version.modelDigest,
      dataDigest,
      failures,
      firstAt: previous?.firstAt ?? now.toISOString(),
      lastAt: now.toISOString(),
      reason: (err instanceof Error ? err.message : String(err)).slice(0, 1_000),
      retryAfter: new Date(now.getTime() + referenceRetryDelayMs(failures)).toISOString(),
    };
    // Best effort: unremembered, it is only tried again next window. A concurrent writer's record
    // (the ETag moved) stands.
    await deps.artifacts
      .put(at, JSON.stringify(record), {
        contentType: 'application/json',
        condition: stored ? { ifMatch: stored.etag } : 'create',
      })
      .catch(() => undefined);
    const { reason, firstAt, lastAt, retryAfter } = record;
    return {
      reference: undefined,
      rows: 0,
      failure: { reason, failures, firstAt, lastAt, retryAfter, backedOff: false },
    };
  }
}
