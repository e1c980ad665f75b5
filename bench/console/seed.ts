/** The run documents `bench:console` and `bench/console/floor.ts` seed, and their timing helpers. */
import { randomBytes } from 'node:crypto';
import type { RunDocument } from '../../lib/contracts/runDocument';
import { newRunDocument } from '../../lib/runs/document';

export const RUNS = Number(process.env.BENCH_RUNS ?? 10_000);
const PIPELINES = ['churn', 'wages', 'fraud', 'demand'];
const STATUSES = [
  'succeeded',
  'succeeded',
  'succeeded',
  'stopped',
  'failed',
  'canceled',
  'running',
  'waiting_for_approval',
] as const;
const STOPS: Record<string, string> = {
  stopped: 'validation_failed',
  failed: 'step_failed',
  canceled: 'canceled',
};
const T0 = Date.parse('2026-10-01T00:00:00.000Z');

export const hex = () => randomBytes(32).toString('hex');

export function runDoc(i: number): RunDocument {
  const pipeline = PIPELINES[i % PIPELINES.length]!;
  const at = new Date(T0 + Math.floor((i * 60 * 86_400_000) / RUNS)).toISOString();
  const id = `${pipeline}-${at.replace(/[-:.TZ]/g, '').slice(0, 14)}-${String(i).padStart(5, '0')}`;
  const doc = newRunDocument({
    id,
    pipeline,
    pipelineVersion: 1 + (i % 3),
    instanceId: id,
    trigger: { kind: i % 5 === 0 ? 'timer' : 'http', by: 'bench@example.com' },
    source: {
      kind: 'upload',
      uri: `http://127.0.0.1/devstoreaccount1/datasets/uploads/${pipeline}/${hex()}`,
      sha256: hex(),
      bytes: 28_311,
      format: 'csv',
    },
    at,
  });
  const status = STATUSES[i % STATUSES.length]!;
  let t = Date.parse(at);
  const steps = doc.steps.map((s, k) => {
    const done = status === 'succeeded' || k < 3;
    if (!done) return s;
    const startedAt = new Date(t).toISOString();
    t += 1_000 + ((i * 7 + k * 13) % 20_000);
    return { ...s, status: 'succeeded' as const, attempt: 1, startedAt, endedAt: new Date(t).toISOString() };
  });
  return {
    ...doc,
    status,
    ...(STOPS[status]
      ? { stopReason: STOPS[status] as RunDocument['stopReason'], reason: `bench ${status}` }
      : {}),
    updatedAt: new Date(t).toISOString(),
    steps,
    metrics: { rmse: 4.1 + (i % 17) / 100, r2: 0.21 + (i % 13) / 100, mae: 3.2 + (i % 11) / 100 },
  } as RunDocument;
}

export async function pool<T>(
  items: readonly T[],
  width: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
