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

/**
 * The version's recorded holdout reference, scored and recorded on first use. A concurrent first
 * use records the same bytes (the scoring is deterministic), so either write is the record.
 */
export async function versionReference(
  deps: ReferenceDeps,
  version: ModelVersion,
): Promise<{ reference: PredictionReference | undefined; rows: number }> {
  const ref = { container: REFERENCES_CONTAINER, path: referencePath(version) };
  const stored = await deps.artifacts.tryGetJson(ref, recordedSchema).catch(() => undefined);
  if (stored && stored.value.modelDigest === version.modelDigest)
    return { reference: stored.value.reference, rows: stored.value.holdoutRows };
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
