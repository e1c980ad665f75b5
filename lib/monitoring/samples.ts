import { createHash } from 'node:crypto';
import { z } from 'zod';
import resources from '../resources.json';
import type { ArtifactStore } from '../storage/blob';

/**
 * Sampled predict requests in Blob (container `reports`, under `monitoring/samples/`): one JSON
 * Lines blob per model per flush of an instance's buffer, named by the hour its first sample was
 * taken in, so a window is read by listing the hours it covers.
 *
 *   monitoring/samples/<model>/<YYYY-MM-DDTHH>/<instance>-<flush>.jsonl
 */

export const SAMPLES_CONTAINER = resources.blobContainers.reports;
const ROOT = 'monitoring/samples';

export const predictionSampleSchema = z.object({
  predictionId: z.string(),
  at: z.string(),
  modelName: z.string(),
  version: z.int().positive(),
  variant: z.string(),
  /** The request's rows as validated, with hashed features replaced by their hash and dropped ones left out. */
  rows: z.array(z.record(z.string(), z.unknown())),
  predictions: z.array(z.union([z.number(), z.string()])),
  latencyMs: z.number().optional(),
});
export type PredictionSample = z.infer<typeof predictionSampleSchema>;

/** `sha256:` and the first 16 hex digits of SHA-256 over the model name and the value (stable per model). */
export function hashFeature(modelName: string, value: unknown): string {
  return `sha256:${createHash('sha256')
    .update(`${modelName}\u0000${JSON.stringify(value)}`)
    .digest('hex')
    .slice(0, 16)}`;
}

/**
 * A prediction id names when the prediction was made (`p` + epoch milliseconds in base 36 + `-` +
 * 16 random hex digits), so feedback finds the sample in the hour's blobs without an index.
 */
export function newPredictionId(ms: number, random: string): string {
  return `p${ms.toString(36)}-${random}`;
}

const PREDICTION_ID = /^p([0-9a-z]{1,11})-([0-9a-f]{16})$/;

/** When a prediction id was made, or undefined when it is not one. */
export function predictionTime(id: string): number | undefined {
  const m = PREDICTION_ID.exec(id);
  if (!m) return undefined;
  const ms = parseInt(m[1]!, 36);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

function hourOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13);
}

export function samplesPrefix(modelName: string, hour?: string): string {
  return `${ROOT}/${modelName}/${hour ? `${hour}/` : ''}`;
}

export class SampleStore {
  constructor(private readonly store: Pick<ArtifactStore, 'put' | 'list' | 'getBuffer'>) {}

  /** Writes one flush of a model's samples as one blob; a retried write of the same bytes is success. */
  async write(
    modelName: string,
    source: string,
    seq: number,
    samples: readonly PredictionSample[],
  ): Promise<void> {
    if (samples.length === 0) return;
    const first = Date.parse(samples[0]!.at);
    const path = `${samplesPrefix(modelName, hourOf(first))}${source}-${seq}.jsonl`;
    const body = samples.map((s) => JSON.stringify(s)).join('\n') + '\n';
    const res = await this.store.put({ container: SAMPLES_CONTAINER, path }, body, {
      contentType: 'application/x-ndjson',
    });
    if (!res.ok) throw new Error(`samples blob ${path} exists with other content`);
  }

  /**
   * The samples of a model taken in [from, to), read from the hours the window covers (and the hour
   * before, whose blobs may hold samples up to a flush interval later). Lines that do not parse are
   * skipped. A sample is counted once however many blobs hold it: a write that was stored but
   * reported failed is written again under the next flush number.
   */
  async read(modelName: string, from: Date, to: Date, maxSamples = 200_000): Promise<PredictionSample[]> {
    const out: PredictionSample[] = [];
    const seen = new Set<string>();
    const hourMs = 3_600_000;
    const start = Math.floor(from.getTime() / hourMs) * hourMs - hourMs;
    for (let h = start; h < to.getTime(); h += hourMs) {
      for await (const blob of this.store.list(SAMPLES_CONTAINER, samplesPrefix(modelName, hourOf(h)))) {
        const { data } = await this.store.getBuffer({ container: SAMPLES_CONTAINER, path: blob.path });
        for (const line of Buffer.from(data).toString('utf8').split('\n')) {
          if (!line) continue;
          let parsed;
          try {
            parsed = predictionSampleSchema.safeParse(JSON.parse(line));
          } catch {
            continue;
          }
          if (!parsed.success) continue;
          const at = Date.parse(parsed.data.at);
          if (at < from.getTime() || at >= to.getTime() || seen.has(parsed.data.predictionId)) continue;
          seen.add(parsed.data.predictionId);
          out.push(parsed.data);
          if (out.length >= maxSamples) return out;
        }
      }
    }
    return out;
  }
}
