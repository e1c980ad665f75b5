import type { LogBatch } from '../../../lib/mlflow/limits';
import { cutBytes, LOG_BATCH_LIMITS, safeKey, toBatches } from '../../../lib/mlflow/limits';

const metric = (i: number) => ({ key: `m${i % 7}`, value: i, timestamp: 1_700_000_000_000, step: i });
const kv = (prefix: string, i: number, value = `v${i}`) => ({ key: `${prefix}${i}`, value });
const size = (b: LogBatch) => Buffer.byteLength(JSON.stringify({ run_id: 'x'.repeat(32), ...b }));

describe('toBatches keeps runs/log-batch within MLflow limits', () => {
  it('splits 2,500 metrics into requests of at most 1,000, in order', () => {
    const batches = toBatches({
      metrics: Array.from({ length: 2500 }, (_, i) => metric(i)),
      params: [],
      tags: [],
    });
    expect(batches.map((b) => b.metrics.length)).toEqual([1000, 1000, 500]);
    expect(batches.flatMap((b) => b.metrics.map((m) => m.value))).toEqual(
      Array.from({ length: 2500 }, (_, i) => i),
    );
  });

  it('splits 250 params into requests of at most 100 and 230 tags into at most 100', () => {
    const batches = toBatches({
      metrics: [],
      params: Array.from({ length: 250 }, (_, i) => kv('p', i)),
      tags: Array.from({ length: 230 }, (_, i) => kv('t', i)),
    });
    for (const b of batches) {
      expect(b.params.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.params);
      expect(b.tags.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.tags);
    }
    expect(batches.reduce((n, b) => n + b.params.length, 0)).toBe(250);
    expect(batches.reduce((n, b) => n + b.tags.length, 0)).toBe(230);
  });

  it('keeps 1,000 entities a request when params, tags and metrics mix', () => {
    const batches = toBatches({
      metrics: Array.from({ length: 1000 }, (_, i) => metric(i)),
      params: Array.from({ length: 50 }, (_, i) => kv('p', i)),
      tags: Array.from({ length: 50 }, (_, i) => kv('t', i)),
    });
    expect(batches).toHaveLength(2);
    for (const b of batches)
      expect(b.metrics.length + b.params.length + b.tags.length).toBeLessThanOrEqual(1000);
  });

  it('keeps each request under 1 MB when tag values are large', () => {
    const batches = toBatches({
      metrics: [],
      params: [],
      tags: Array.from({ length: 100 }, (_, i) => kv('t', i, 'x'.repeat(20_000))),
    });
    // Each tag is cut to 5,000 bytes, so 100 of them fit in ~0.5 MB: one request.
    expect(batches).toHaveLength(1);
    expect(batches[0]!.tags.every((t) => Buffer.byteLength(t.value) <= 5000)).toBe(true);
    const many = toBatches({
      metrics: [],
      params: [],
      tags: Array.from({ length: 300 }, (_, i) => kv('t', i, 'x'.repeat(4_900))),
    });
    for (const b of many) expect(size(b)).toBeLessThan(1_048_576);
    expect(many.reduce((n, b) => n + b.tags.length, 0)).toBe(300);
  });

  it('cuts param values to 500 bytes, keeps the first value of a repeated key, drops non-finite metrics', () => {
    const [b] = toBatches({
      metrics: [
        { key: 'ok', value: 1, timestamp: 1, step: 0 },
        { key: 'nan', value: Number.NaN, timestamp: 1, step: 0 },
        { key: 'inf', value: Number.POSITIVE_INFINITY, timestamp: 1, step: 0 },
      ],
      params: [
        { key: 'features', value: 'é'.repeat(400) },
        { key: 'seed', value: '1' },
        { key: 'seed', value: '2' },
      ],
      tags: [],
    });
    expect(b!.metrics.map((m) => m.key)).toEqual(['ok']);
    expect(b!.params.map((p) => p.key)).toEqual(['features', 'seed']);
    expect(b!.params[1]!.value).toBe('1');
    expect(Buffer.byteLength(b!.params[0]!.value)).toBeLessThanOrEqual(500);
    expect(b!.params[0]!.value.endsWith('…')).toBe(true);
  });

  it('makes keys MLflow accepts', () => {
    expect(safeKey('eval.diff.auc:ci[low]')).toBe('eval.diff.auc_ci_low_');
    expect(Buffer.byteLength(safeKey('k'.repeat(400)))).toBeLessThanOrEqual(250);
    expect(cutBytes('short', 10)).toBe('short');
    expect(cutBytes('ab€cd', 6)).toBe('ab…');
  });

  it('is deterministic: the same log gives byte-identical requests', () => {
    const log = {
      metrics: Array.from({ length: 1200 }, (_, i) => metric(i)),
      params: [kv('p', 1)],
      tags: [kv('t', 1)],
    };
    expect(JSON.stringify(toBatches(log))).toBe(JSON.stringify(toBatches(log)));
  });
});
