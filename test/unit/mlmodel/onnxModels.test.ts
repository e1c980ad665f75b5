/** @jest-environment ./test/support/onnxEnvironment.js */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { OnnxModelSource } from '../../../lib/mlmodel';
import { OnnxModel, OnnxModels } from '../../../lib/mlmodel';
import {
  classes,
  expectedClassifier,
  expectedRegressor,
  fixtures,
  perFeature,
  perFeatureRows,
  rowFeatures,
  tensorFeatures,
  tensorRows,
} from './support';

const bytesOf = (fixture: string): Promise<Uint8Array> =>
  readFile(path.join(fixtures, fixture, 'model.onnx'));

/** A source that counts its loads. */
function source(
  fixture: string,
  over: Partial<OnnxModelSource> = {},
): OnnxModelSource & { loads: () => number } {
  let loads = 0;
  const features = fixture.endsWith('tensor') ? tensorFeatures : perFeature;
  const task = fixture.startsWith('regressor') ? 'regression' : 'classification';
  return {
    digest: `sha-${fixture}`,
    features,
    task,
    load: () => {
      loads++;
      return bytesOf(fixture);
    },
    loads: () => loads,
    ...over,
  };
}

const models: OnnxModels[] = [];
afterEach(async () => {
  await Promise.all(models.splice(0).map((m) => m.dispose()));
});
function cache(options?: ConstructorParameters<typeof OnnxModels>[0]): OnnxModels {
  const c = new OnnxModels(options);
  models.push(c);
  return c;
}

describe('scoring ONNX models', () => {
  it('a per-feature classifier: labels and probabilities equal the model computed by hand', async () => {
    const scores = await cache().score(source('classifier-per-feature'), perFeatureRows);
    const want = perFeatureRows.map((r) => expectedClassifier(rowFeatures(r)));
    expect(scores.labels).toEqual(want.map((w) => w.label));
    scores.probabilities!.forEach((p, i) => {
      expect(p).toHaveLength(2);
      expect(p[0]).toBeCloseTo(want[i]!.p[0], 6);
      expect(p[1]).toBeCloseTo(want[i]!.p[1], 6);
    });
    expect(scores.values).toBeUndefined();
  });

  it('a one-tensor classifier gives the same as the per-feature one on the same numbers', async () => {
    const rows = perFeatureRows.map((r) => {
      const [a, b, c] = rowFeatures(r);
      return { a, b, c };
    });
    const c = cache();
    const tensor = await c.score(source('classifier-tensor'), rows);
    const named = await c.score(source('classifier-per-feature'), perFeatureRows);
    expect(tensor.labels).toEqual(named.labels);
    expect(tensor.probabilities).toEqual(named.probabilities);
  });

  it('a classifier names the class of each probability column, read from its ai.onnx.ml node', async () => {
    const scores = await cache().score(source('classifier-tensor'), tensorRows);
    expect(scores.classes).toEqual(['no', 'yes']);
  });

  it('integer class labels come back as strings, with the class order read through Identity and Cast', async () => {
    const c = cache();
    const ints = await c.score(source('classifier-int-labels', { features: tensorFeatures }), tensorRows);
    const strings = await c.score(source('classifier-tensor'), tensorRows);
    expect(ints.classes).toEqual(['0', '1']);
    expect(ints.labels).toEqual(strings.labels!.map((l) => (l === 'yes' ? '1' : '0')));
    expect(ints.probabilities).toEqual(strings.probabilities);
  });

  it('a ZipMap classifier returns the probability matrix and its class order', async () => {
    const scores = await cache().score(source('classifier-zipmap', { classes }), perFeatureRows);
    expect(scores.classes).toEqual(['no', 'yes']);
    const plain = await cache().score(source('classifier-per-feature'), perFeatureRows);
    expect(scores.probabilities).toEqual(plain.probabilities);
    expect(scores.labels).toEqual(plain.labels);
  });

  it('regressors in both layouts: one value per row, as computed by hand', async () => {
    const c = cache();
    const tensor = await c.score(source('regressor-tensor'), tensorRows);
    tensorRows.forEach((r, i) =>
      expect(tensor.values![i]).toBeCloseTo(expectedRegressor([r.a, r.b, r.c]), 5),
    );
    const named = await c.score(source('regressor-per-feature'), perFeatureRows);
    perFeatureRows.forEach((r, i) =>
      expect(named.values![i]).toBeCloseTo(expectedRegressor(rowFeatures(r)), 5),
    );
    expect(tensor.labels).toBeUndefined();
  });

  it('a double-precision tensor input is fed as float64', async () => {
    const m = await cache().model(
      source('regressor-tensor', { digest: 'double', load: () => bytesOf('regressor-double') }),
    );
    expect(m.io.inputs).toEqual([{ name: 'input', type: 'float64', dims: 2 }]);
    const scores = await m.score(tensorRows);
    tensorRows.forEach((r, i) =>
      expect(scores.values![i]).toBeCloseTo(expectedRegressor([r.a, r.b, r.c]), 5),
    );
  });

  it('in batches: any batch size gives the same scores, in row order', async () => {
    const rows = Array.from({ length: 23 }, (_, i) => ({ a: i, b: -i / 3, c: i % 4 }));
    const whole = await cache().score(source('regressor-tensor'), rows);
    const batched = await cache({ batchSize: 5 }).score(source('regressor-tensor'), rows);
    expect(batched.values).toEqual(whole.values);
    expect(batched.values).toHaveLength(23);
  });

  it('a run onnxruntime refuses is onnx_run_failed, naming the rows of the batch', async () => {
    const src = source('regressor-tensor', { load: () => bytesOf('broken-runtime') });
    await expect(cache({ batchSize: 2 }).score(src, [...tensorRows, ...tensorRows])).resolves.toMatchObject({
      values: expect.any(Array),
    });
    await expect(cache({ batchSize: 3 }).score(src, [...tensorRows, ...tensorRows])).rejects.toMatchObject({
      name: 'NonRetriableError',
      code: 'onnx_run_failed',
      message: expect.stringContaining('rows 0–2'),
    });
  });

  it('no rows give empty scores', async () => {
    expect(await cache().score(source('classifier-per-feature'), [])).toEqual({
      labels: [],
      probabilities: [],
      classes: ['no', 'yes'],
    });
  });

  it('a row missing a feature is a row_invalid ValidationError naming the row and the feature', async () => {
    const rows = [perFeatureRows[0]!, { x1: 1, color: 'red' }];
    await expect(cache().score(source('classifier-per-feature'), rows)).rejects.toMatchObject({
      name: 'ValidationError',
      code: 'row_invalid',
      field: 'rows[1].x2',
      message: 'row 1 has no value for feature x2',
    });
  });

  it('a row missing a feature is named by its index in the whole call, not in its batch', async () => {
    const rows = [...tensorRows, { a: 1, b: 2 }];
    await expect(cache({ batchSize: 2 }).score(source('regressor-tensor'), rows)).rejects.toMatchObject({
      field: 'rows[3].c',
    });
  });

  it('values of the wrong kind are row_invalid; numeric strings are read, null is a missing number', async () => {
    const c = cache();
    await expect(c.score(source('regressor-tensor'), [{ a: 'high', b: 1, c: 1 }])).rejects.toMatchObject({
      code: 'row_invalid',
      field: 'rows[0].a',
    });
    await expect(
      c.score(source('classifier-per-feature'), [{ x1: 1, x2: 1, color: { x: 1 } }]),
    ).rejects.toMatchObject({
      code: 'row_invalid',
      field: 'rows[0].color',
    });
    const scores = await c.score(source('regressor-tensor'), [
      { a: '1', b: ' 1 ', c: 2 },
      { a: null, b: 1, c: 1 },
    ]);
    expect(scores.values![0]).toBeCloseTo(expectedRegressor([1, 1, 2]), 5);
    expect(scores.values![1]).toBeNaN();
  });
});

describe('OnnxModels, the session cache', () => {
  it('loads a digest once, also under concurrent first use', async () => {
    const c = cache();
    const src = source('regressor-tensor');
    const [m1, m2] = await Promise.all([c.model(src), c.model(src)]);
    await c.score(src, tensorRows);
    expect(m1).toBe(m2);
    expect(src.loads()).toBe(1);
  });

  it('keeps at most maxSessions, evicting the least recently used and releasing it', async () => {
    const c = cache({ maxSessions: 2 });
    const a = source('regressor-tensor', { digest: 'a' });
    const b = source('classifier-tensor', { digest: 'b' });
    const d = source('classifier-per-feature', { digest: 'd' });
    const ma = await c.model(a);
    const mb = await c.model(b);
    await c.model(a); // a is now the most recent
    const md = await c.model(d);
    expect(c.digests).toEqual(['a', 'd']);
    expect(mb.usable).toBe(false);
    expect(ma.usable).toBe(true);
    expect(md.usable).toBe(true);
    await expect(mb.score(tensorRows)).rejects.toThrow('released');
    // b comes back on its next use, loaded again.
    await c.score(b, tensorRows);
    expect(b.loads()).toBe(2);
    expect(a.loads()).toBe(1);
    expect(c.digests).toEqual(['d', 'b']);
  });

  it('lets a run in flight finish when its session is evicted, then releases it', async () => {
    const c = cache();
    const src = source('regressor-tensor');
    const m = await c.model(src);
    const rows = Array.from({ length: 1000 }, (_, i) => ({ a: i, b: 1, c: 0 }));
    const running = m.score(rows);
    await c.evict(src.digest);
    expect(m.usable).toBe(false);
    const scores = await running;
    expect(scores.values).toHaveLength(1000);
    expect(scores.values![999]).toBeCloseTo(expectedRegressor([999, 1, 0]), 3);
    expect(c.digests).toEqual([]);
  });

  it('scores through a fresh session when the cached one is evicted before the run starts', async () => {
    const c = cache();
    const src = source('regressor-tensor');
    await c.model(src);
    const running = c.score(src, tensorRows);
    await c.evict(src.digest);
    const scores = await running;
    expect(scores.values).toHaveLength(tensorRows.length);
    expect(src.loads()).toBe(2);
  });

  it('does not cache a failed load: the next use tries again', async () => {
    const c = cache();
    let calls = 0;
    const src = source('regressor-tensor', {
      load: async () => {
        calls++;
        if (calls === 1) throw new Error('blob not reachable');
        return bytesOf('regressor-tensor');
      },
    });
    await expect(c.score(src, tensorRows)).rejects.toThrow('blob not reachable');
    expect(c.digests).toEqual([]);
    await expect(c.score(src, tensorRows)).resolves.toMatchObject({ values: expect.any(Array) });
    expect(calls).toBe(2);
  });

  it('does not cache a model that fails its checks (onnx_invalid, inputs mismatch)', async () => {
    const c = cache();
    await expect(
      c.model({ ...source('regressor-tensor'), load: () => bytesOf('broken-not-onnx') }),
    ).rejects.toMatchObject({ code: 'onnx_invalid' });
    await expect(
      c.model(source('classifier-per-feature', { features: tensorFeatures })),
    ).rejects.toMatchObject({
      code: 'onnx_inputs_mismatch',
    });
    expect(c.digests).toEqual([]);
  });

  it('dispose releases every session', async () => {
    const c = new OnnxModels();
    const m = await c.model(source('regressor-tensor'));
    await c.dispose();
    expect(m.usable).toBe(false);
    expect(c.digests).toEqual([]);
  });
});

describe('OnnxModel', () => {
  it('reports the layout and the outputs it reads', async () => {
    const m = await OnnxModel.load(await bytesOf('classifier-zipmap'), {
      features: perFeature,
      task: 'classification',
    });
    try {
      expect(m.io).toEqual({
        layout: 'per-feature',
        inputs: [
          { name: 'x1', type: 'float32', dims: 2 },
          { name: 'x2', type: 'float32', dims: 2 },
          { name: 'color', type: 'string', dims: 2 },
        ],
        label: 'label',
        probabilities: 'probabilities',
        zipMapped: true,
        classes: ['no', 'yes'],
      });
    } finally {
      await m.release();
      await m.release(); // idempotent
    }
  });

  it('release() during a run frees the session only after the run, and refuses new runs', async () => {
    const m = await OnnxModel.load(await bytesOf('regressor-tensor'), {
      features: tensorFeatures,
      task: 'regression',
    });
    const running = m.score(tensorRows);
    await m.release();
    expect(m.usable).toBe(false);
    await expect(m.score(tensorRows)).rejects.toThrow('this ONNX model was released');
    await expect(running).resolves.toMatchObject({ values: expect.any(Array) });
  });
});
