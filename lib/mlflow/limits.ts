/**
 * MLflow's documented limits, respected before a request is sent (docs/mlflow.md "Limits"):
 * `runs/log-batch` takes at most 1,000 metrics, 100 params and 100 tags, 1,000 entities in all and
 * 1 MB per request; every backing store is guaranteed to take keys of 250 bytes and tag values of
 * 5,000 bytes; Databricks takes param values of 500 bytes (MLflow servers take more, so 500 is the
 * value that fits everywhere). Pure: the same input always gives the same requests, so a retried
 * section sends byte-identical batches.
 */
export const LOG_BATCH_LIMITS = {
  metrics: 1_000,
  params: 100,
  tags: 100,
  entities: 1_000,
  /** Request body bytes; kept under 1 MB with room for the envelope. */
  bytes: 1_000_000,
} as const;
export const MAX_KEY_BYTES = 250;
export const MAX_PARAM_VALUE_BYTES = 500;
export const MAX_TAG_VALUE_BYTES = 5_000;
/**
 * `runs/log-inputs` (mlflow/utils/validation.py): a dataset digest is at most 36 characters (MLflow's
 * own digests are 8), a name 500, a source 65,535; an input tag's key 255 and value 500.
 */
export const MAX_DATASET_DIGEST_CHARS = 36;
export const MAX_DATASET_NAME_CHARS = 500;
export const MAX_DATASET_SOURCE_CHARS = 65_535;
export const MAX_INPUT_TAG_VALUE_CHARS = 500;

export interface Metric {
  key: string;
  value: number;
  /** Milliseconds since the epoch. */
  timestamp: number;
  step: number;
}
export interface KeyValue {
  key: string;
  value: string;
}
export interface LogBatch {
  metrics: Metric[];
  params: KeyValue[];
  tags: KeyValue[];
}

/** Cuts `s` to at most `max` UTF-8 bytes without splitting a character; a cut value ends with `…`. */
export function cutBytes(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  const ellipsis = '…';
  let out = '';
  let bytes = Buffer.byteLength(ellipsis);
  for (const ch of s) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > max) break;
    out += ch;
    bytes += b;
  }
  return out + ellipsis;
}

/** MLflow keys: letters, digits, `_ - . / space` only, at most 250 bytes. Other characters become `_`. */
export function safeKey(key: string): string {
  return cutBytes(key.replace(/[^A-Za-z0-9_\-./ ]/g, '_'), MAX_KEY_BYTES);
}

/**
 * Splits a log into `runs/log-batch` requests within {@link LOG_BATCH_LIMITS}. Keys are made safe,
 * values cut to their limits, non-finite metric values dropped (JSON has no NaN), and a param or
 * tag key that appears twice keeps its first value (params are write-once: a second, different
 * value would be refused with INVALID_PARAMETER_VALUE).
 */
export function toBatches(log: LogBatch): LogBatch[] {
  const seenParams = new Set<string>();
  const params = log.params
    .map((p) => ({ key: safeKey(p.key), value: cutBytes(p.value, MAX_PARAM_VALUE_BYTES) }))
    .filter((p) => !seenParams.has(p.key) && seenParams.add(p.key));
  const seenTags = new Map<string, KeyValue>();
  for (const t of log.tags) {
    const key = safeKey(t.key);
    if (!seenTags.has(key)) seenTags.set(key, { key, value: cutBytes(t.value, MAX_TAG_VALUE_BYTES) });
  }
  const metrics = log.metrics
    .filter((m) => Number.isFinite(m.value))
    .map((m) => ({ ...m, key: safeKey(m.key) }));

  const out: LogBatch[] = [];
  let cur: LogBatch = { metrics: [], params: [], tags: [] };
  let bytes = 0;
  const count = () => cur.metrics.length + cur.params.length + cur.tags.length;
  const add = <K extends keyof LogBatch>(kind: K, item: LogBatch[K][number]) => {
    const size = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (
      count() > 0 &&
      (cur[kind].length >= LOG_BATCH_LIMITS[kind] ||
        count() >= LOG_BATCH_LIMITS.entities ||
        bytes + size > LOG_BATCH_LIMITS.bytes)
    ) {
      out.push(cur);
      cur = { metrics: [], params: [], tags: [] };
      bytes = 0;
    }
    (cur[kind] as LogBatch[K][number][]).push(item);
    bytes += size;
  };
  for (const p of params) add('params', p);
  for (const t of seenTags.values()) add('tags', t);
  for (const m of metrics) add('metrics', m);
  if (count() > 0) out.push(cur);
  return out;
}
