import { z } from 'zod';
import { ValidationError } from '../errors';
import type { LabelDoc } from './records';
import type { PredictionSample, SampleStore } from './samples';
import { predictionTime } from './samples';
import type { MonitoringStore } from './store';

/**
 * `POST /api/models/{name}/feedback`: true labels for earlier predictions, by prediction id (and row,
 * for a request of several rows). Each label is joined to its sampled prediction, found in the
 * blobs of the hour its id names, and stored with it; the monitoring timer's live metric reads them.
 * A prediction that was not sampled (or whose sample is not written yet: up to a flush interval)
 * cannot be joined and is answered as such; send it again later.
 */

export const MAX_LABELS = 1000;

export const feedbackBodySchema = z
  .object({
    labels: z
      .array(
        z
          .object({
            predictionId: z.string().min(1).max(64),
            row: z.int().min(0).max(100_000).default(0),
            label: z.union([z.string().max(1000), z.number()]),
          })
          .strict(),
      )
      .min(1)
      .max(MAX_LABELS),
  })
  .strict();

export interface FeedbackResult {
  accepted: number;
  unmatched: { predictionId: string; row: number; reason: string }[];
}

export async function acceptFeedback(
  deps: { samples: Pick<SampleStore, 'read'>; store: Pick<MonitoringStore, 'putLabels'> },
  modelName: string,
  body: unknown,
  now: Date,
): Promise<FeedbackResult> {
  const parsed = feedbackBodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ValidationError('invalid_feedback', `${issue.path.join('.') || '(body)'}: ${issue.message}`, {
      field: issue.path.join('.') || '(body)',
    });
  }
  const hour = 3_600_000;
  const unmatched: FeedbackResult['unmatched'] = [];
  const hours = new Set<number>();
  for (const l of parsed.data.labels) {
    const t = predictionTime(l.predictionId);
    if (t === undefined)
      unmatched.push({ predictionId: l.predictionId, row: l.row, reason: 'not a prediction id' });
    else hours.add(Math.floor(t / hour) * hour);
  }
  const found = new Map<string, PredictionSample>();
  for (const h of hours) {
    for (const s of await deps.samples.read(modelName, new Date(h), new Date(h + hour)))
      found.set(s.predictionId, s);
  }
  const docs: LabelDoc[] = [];
  for (const l of parsed.data.labels) {
    if (predictionTime(l.predictionId) === undefined) continue;
    const s = found.get(l.predictionId);
    const prediction = s?.predictions[l.row];
    if (!s || prediction === undefined) {
      unmatched.push({
        predictionId: l.predictionId,
        row: l.row,
        reason: !s
          ? 'no sampled prediction with this id (not sampled, or not written yet)'
          : `the prediction has no row ${l.row}`,
      });
      continue;
    }
    docs.push({
      id: `label-${l.predictionId}-${l.row}`,
      kind: 'label',
      modelName,
      predictionId: l.predictionId,
      row: l.row,
      label: l.label,
      prediction,
      version: s.version,
      variant: s.variant,
      predictedAt: s.at,
      receivedAt: now.toISOString(),
    });
  }
  await deps.store.putLabels(docs);
  return { accepted: docs.length, unmatched };
}
