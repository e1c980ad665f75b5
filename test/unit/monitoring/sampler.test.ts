import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PredictionSampler } from '../../../lib/monitoring/sampler';
import type { PredictionSample } from '../../../lib/monitoring/samples';
import { predictionTime } from '../../../lib/monitoring/samples';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import type { TrafficSample } from '../../../lib/rollout/traffic';
import type { ServedModel } from '../../../lib/serving/production';
import { RolloutServing } from '../../../lib/serving/rollout';

const settle = () => new Promise((r) => setImmediate(r));

function sampler(over: Partial<ConstructorParameters<typeof PredictionSampler>[0]> = {}) {
  const writes: { model: string; seq: number; samples: PredictionSample[] }[] = [];
  let t = Date.parse('2026-03-02T10:00:00.000Z');
  const s = new PredictionSampler({
    settingsOf: async () => ({ sampleRate: 0.5, hashFeatures: ['name'], dropFeatures: ['secret'] }),
    write: async (model, _source, seq, samples) => void writes.push({ model, seq, samples }),
    flushEveryMs: 60_000,
    flushEveryRows: 4,
    settingsTtlMs: 60_000,
    now: () => (t += 1000),
    random: (() => {
      let i = 0;
      return () => (i++ % 2 === 0 ? 0.1 : 0.9); // every other request is drawn
    })(),
    ...over,
  });
  return { s, writes };
}

const req = (i: number) => ({
  modelName: 'm',
  version: 3,
  variant: 'production',
  rows: [{ x: i, name: 'Ada', secret: 'pin' }],
  predictions: [i * 2],
  latencyMs: 1,
});

describe('PredictionSampler', () => {
  it('samples nothing until the settings are known, then at the rate, hashed and dropped as asked', async () => {
    const { s, writes } = sampler();
    const first = s.sample(req(0));
    expect(predictionTime(first)).toBe(Date.parse('2026-03-02T10:00:01.000Z'));
    await settle();
    for (let i = 1; i <= 8; i++) s.sample(req(i));
    await s.close();
    const samples = writes.flatMap((w) => w.samples);
    expect(samples).toHaveLength(4);
    expect(samples[0]!.rows[0]).toEqual({ x: expect.any(Number), name: expect.stringMatching(/^sha256:/) });
    expect(samples[0]!.rows[0]!.name).toBe(samples[1]!.rows[0]!.name); // stable per model
  });

  it('writes in batches of rows, one blob per model per flush, and keeps a failed write for the next', async () => {
    let fail = true;
    const written: number[] = [];
    const { s } = sampler({
      settingsOf: async () => ({ sampleRate: 1, hashFeatures: [], dropFeatures: [] }),
      random: () => 0,
      write: async (_m, _src, _seq, samples) => {
        if (fail) throw new Error('blob down');
        written.push(samples.length);
      },
    });
    s.sample(req(0));
    await settle();
    for (let i = 1; i <= 4; i++) s.sample(req(i)); // the 4th row starts a flush, which fails
    await s.close();
    fail = false;
    s.sample(req(5));
    await s.close();
    expect(written).toEqual([5]);
  });

  it('rows that arrive during a write are written after it when due, with no further request', async () => {
    const written: number[] = [];
    let release: () => void = () => undefined;
    const { s } = sampler({
      settingsOf: async () => ({ sampleRate: 1, hashFeatures: [], dropFeatures: [] }),
      random: () => 0,
      write: async (_m, _src, _seq, samples) => {
        written.push(samples.length);
        if (written.length === 1) await new Promise<void>((r) => (release = r));
      },
    });
    s.sample(req(0));
    await settle();
    for (let i = 1; i <= 4; i++) s.sample(req(i)); // flush 1 starts and waits
    for (let i = 5; i <= 8; i++) s.sample(req(i)); // due while flush 1 is writing
    expect(written).toEqual([4]);
    release();
    for (let i = 0; i < 5; i++) await settle();
    expect(written).toEqual([4, 4]);
  });

  it('a model without monitoring is not sampled, and still gets prediction ids', async () => {
    const { s, writes } = sampler({ settingsOf: async () => undefined });
    s.sample(req(0));
    await settle();
    const ids = [s.sample(req(1)), s.sample(req(2))];
    await s.close();
    expect(new Set(ids).size).toBe(2);
    expect(writes).toEqual([]);
  });
});

describe('predict with monitoring wired in', () => {
  it('answers carry a prediction id, production traffic is counted, and a sampler failure never fails predict', async () => {
    const model: ServedModel = {
      modelName: 'm',
      version: 1,
      digest: '1'.repeat(64),
      validate: (body) => (body as { rows: Record<string, unknown>[] }).rows,
      scorer: {
        scoreRows: async (rows: unknown[]) => ({ values: Float64Array.from(rows, () => 7) }),
      } as unknown as ServedModel['scorer'],
    };
    const traffic: TrafficSample[] = [];
    const seen: unknown[] = [];
    let broken = false;
    const s = new RolloutServing({
      models: { get: async () => model, version: async () => model, invalidate: () => undefined },
      readRollout: async () => undefined,
      record: (t) => traffic.push(t),
      sample: (r) => {
        if (broken) throw new Error('full');
        seen.push(r);
        return 'p-1';
      },
      stateTtlMs: 60_000,
    });
    const answer = await s.predict('m', { rows: [{ x: 1 }] });
    expect(answer).toMatchObject({ predictionId: 'p-1', predictions: [7], variant: 'production' });
    expect(seen).toEqual([
      expect.objectContaining({ modelName: 'm', version: 1, rows: [{ x: 1 }], predictions: [7] }),
    ]);
    expect(traffic).toEqual([
      expect.objectContaining({ modelName: 'm', version: 1, variant: 'production', rows: 1 }),
    ]);
    broken = true;
    const again = await s.predict('m', { rows: [{ x: 2 }] });
    expect(again.predictions).toEqual([7]);
    expect(again.predictionId).toBeUndefined();
  });
});

describe('PredictionSampler ids and copies', () => {
  it('hands out well-formed ids that never repeat, well past one pool of random bytes', async () => {
    const { s } = sampler({ settingsOf: async () => undefined, now: () => 1_700_000_000_000 });
    const ids = new Set<string>();
    for (let i = 0; i < 5_000; i++) ids.add(s.sample(req(i)));
    expect(ids.size).toBe(5_000);
    for (const id of ids) {
      expect(id).toMatch(/^p[0-9a-z]{1,11}-[0-9a-f]{16}$/);
      expect(predictionTime(id)).toBe(1_700_000_000_000);
    }
    // Another sampler draws its own bytes.
    const other = sampler({ settingsOf: async () => undefined }).s;
    for (let i = 0; i < 600; i++) expect(ids.has(other.sample(req(i)))).toBe(false);
    await s.close();
  });

  it('keeps rows as they were with nothing to hash or drop, and follows settings that change', async () => {
    let settings = { sampleRate: 1, hashFeatures: [] as string[], dropFeatures: [] as string[] };
    let t = 0;
    const { s, writes } = sampler({
      settingsOf: async () => settings,
      random: () => 0,
      flushEveryRows: 1_000,
      settingsTtlMs: 10,
      now: () => t,
    });
    s.sample(req(0));
    await settle();
    const row = { x: 1, name: 'Ada', secret: 'pin', missing: null };
    s.sample({ ...req(1), rows: [row] });
    settings = { sampleRate: 1, hashFeatures: ['name', 'missing'], dropFeatures: ['secret'] };
    t = 20;
    s.sample({ ...req(2), rows: [row] }); // still the old settings: the new ones are on their way
    await settle();
    s.sample({ ...req(3), rows: [row] });
    await s.close();
    const rows = writes.flatMap((w) => w.samples).map((x) => x.rows[0]);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toEqual(row);
    expect(rows[0]).not.toBe(row);
    expect(rows[1]).toEqual(row);
    expect(rows[2]).toEqual({ x: 1, name: expect.stringMatching(/^sha256:[0-9a-f]{16}$/), missing: null });
  });
});

describe('the pipeline monitoring section', () => {
  const wages = JSON.parse(
    readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
  ) as Record<string, unknown>;

  it('takes defaults, and names a feature that is not a dataset column', () => {
    const ok = pipelineDefinitionSchema.parse({ ...wages, monitoring: { sampleRate: 0.1 } });
    expect(ok.monitoring).toMatchObject({
      sampleRate: 0.1,
      windowMinutes: 60,
      policy: { minSamples: 200, featureDrift: true },
      proposals: { coolDownHours: 24, maxPerWindow: 2 },
    });
    const bad = pipelineDefinitionSchema.safeParse({
      ...wages,
      monitoring: { sampleRate: 0.1, hashFeatures: ['nope'] },
    });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]).toMatchObject({
      path: ['monitoring', 'hashFeatures', 0],
      message: '"nope" is not a dataset column',
    });
    expect(pipelineDefinitionSchema.safeParse({ ...wages, monitoring: { sampleRate: 2 } }).success).toBe(
      false,
    );
  });
});
