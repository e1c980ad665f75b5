import type { Column, ColumnarDataset } from '../../../lib/training/dataset';
import { datasetFromRecords, selectRows } from '../../../lib/training/dataset';
import { loadModel } from '../../../lib/training/models/predict';
import { splitForSpec, trainModel } from '../../../lib/training/models/train';
import { minimizeLbfgs } from '../../../lib/training/models/lbfgs';
import { createPrng } from '../../../lib/training/prng';
import { parseTrainingSpec } from '../../../lib/training/spec';
import type { TrainingSpecInput } from '../../../lib/contracts/trainingSpec';
import { syntheticClassification, syntheticRegression } from '../../../lib/training/synthetic';

const spec = (s: Partial<TrainingSpecInput> & { algorithm: TrainingSpecInput['algorithm'] }) =>
  parseTrainingSpec({ target: 'label', features: ['x0', 'x1'], ...s });

/** Two numeric features; the label is 1 exactly when x0 + x1 > 0 (linearly separable). */
function separable(n: number, seed: number): ColumnarDataset {
  const prng = createPrng(seed);
  const x0 = new Float64Array(n);
  const x1 = new Float64Array(n);
  const codes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    x0[i] = prng.next() * 2 - 1;
    x1[i] = prng.next() * 2 - 1;
    const s = x0[i]! + x1[i]!;
    if (Math.abs(s) < 0.05) x0[i]! += s > 0 ? 0.1 : -0.1; // keep a margin
    codes[i] = x0[i]! + x1[i]! > 0 ? 1 : 0;
  }
  return {
    rowCount: n,
    columns: [
      { name: 'x0', type: 'numeric', values: x0 },
      { name: 'x1', type: 'numeric', values: x1 },
      { name: 'label', type: 'categorical', codes, levels: ['neg', 'pos'] },
    ],
  };
}

/** XOR of the signs of x0 and x1: no linear model can learn it, trees can. */
function xor(n: number, seed: number): ColumnarDataset {
  const prng = createPrng(seed);
  const x0 = new Float64Array(n);
  const x1 = new Float64Array(n);
  const codes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    x0[i] = prng.next() * 2 - 1;
    x1[i] = prng.next() * 2 - 1;
    codes[i] = x0[i]! > 0 !== x1[i]! > 0 ? 1 : 0;
  }
  return {
    rowCount: n,
    columns: [
      { name: 'x0', type: 'numeric', values: x0 },
      { name: 'x1', type: 'numeric', values: x1 },
      { name: 'label', type: 'categorical', codes, levels: ['same', 'diff'] },
    ],
  };
}

describe('L-BFGS', () => {
  it('finds the minimum of a convex quadratic', () => {
    // f(x) = (x0 - 3)^2 + 10 (x1 + 1)^2
    const r = minimizeLbfgs(
      (x, g) => {
        g[0] = 2 * (x[0]! - 3);
        g[1] = 20 * (x[1]! + 1);
        return (x[0]! - 3) ** 2 + 10 * (x[1]! + 1) ** 2;
      },
      new Float64Array(2),
      { maxIterations: 100, gradientTolerance: 1e-9 },
    );
    expect(r.converged).toBe(true);
    expect(r.x[0]).toBeCloseTo(3, 6);
    expect(r.x[1]).toBeCloseTo(-1, 6);
  });
});

describe('logistic regression', () => {
  it('separates linearly separable data', () => {
    const r = trainModel(
      separable(2_000, 1),
      spec({ algorithm: 'logistic_regression', hyperparameters: { l2: 0 } }),
    );
    expect(r.model.task).toBe('binary');
    expect(r.metrics.holdout!.accuracy).toBeGreaterThan(0.98);
    expect(r.metrics.holdout!.roc_auc).toBeGreaterThan(0.999);
    // the learned direction is (1, 1): both coefficients positive and about equal
    const m = r.model;
    if (m.algorithm !== 'logistic_regression') throw new Error('wrong algorithm');
    const [a, b] = m.params.coefficients[0]!;
    expect(a).toBeGreaterThan(0);
    expect(a! / b!).toBeGreaterThan(0.8);
    expect(a! / b!).toBeLessThan(1.25);
  });

  it('fits a multinomial model for three classes', () => {
    const ds = syntheticClassification({ rows: 6_000, features: 5, seed: 3, classes: 3, signal: 6 });
    const r = trainModel(
      ds,
      spec({ algorithm: 'logistic_regression', features: ['x0', 'x1', 'x2', 'x3', 'x4'] }),
    );
    expect(r.model.task).toBe('multiclass');
    expect(r.model.target.classes).toEqual(['c0', 'c1', 'c2']);
    expect(r.metrics.holdout!.accuracy).toBeGreaterThan(0.6);
    const model = loadModel(r.model);
    const P = model.predictProba(selectRows(ds, [0, 1, 2]));
    for (let i = 0; i < 3; i++) expect(P[i * 3]! + P[i * 3 + 1]! + P[i * 3 + 2]!).toBeCloseTo(1, 12);
  });

  it('one-hot encodes a categorical feature from the data', () => {
    const ds = syntheticClassification({ rows: 20_000, features: 2, seed: 4, withSegment: true });
    const r = trainModel(ds, spec({ algorithm: 'logistic_regression', features: ['x0', 'x1', 'segment'] }));
    const m = r.model;
    if (m.algorithm !== 'logistic_regression') throw new Error('wrong algorithm');
    expect(m.features[2]).toEqual({ name: 'segment', type: 'categorical', categories: ['a', 'b', 'c', 'd'] });
    const coef = m.params.coefficients[0]!;
    expect(coef).toHaveLength(2 + 4);
    // segment shifts the log-odds by -1, -0.3, 0.3, 1: the one-hot coefficients keep that order
    const seg = coef.slice(2);
    expect(seg[0]).toBeLessThan(seg[1]!);
    expect(seg[1]).toBeLessThan(seg[2]!);
    expect(seg[2]).toBeLessThan(seg[3]!);
  });

  it('takes categories from the dataset contract and scores unknown ones as all-zero', () => {
    const ds = syntheticClassification({ rows: 2_000, features: 2, seed: 4, withSegment: true });
    const r = trainModel(
      ds,
      spec({
        algorithm: 'logistic_regression',
        features: ['x0', 'x1', 'segment'],
        categories: { segment: ['d', 'c', 'b', 'a', 'z'] },
      }),
    );
    expect(r.model.features[2]).toEqual({
      name: 'segment',
      type: 'categorical',
      categories: ['d', 'c', 'b', 'a', 'z'],
    });
    const model = loadModel(r.model);
    const out = model.predictRecords([
      { x0: 0.5, x1: -0.2, segment: 'never-seen' },
      { x0: 0.5, x1: -0.2, segment: null },
    ]);
    expect(Array.from(out)).toEqual([out[1], out[1]]);
  });

  it('balanced class weights raise the recall of a rare class', () => {
    const prng = createPrng(9);
    const n = 6_000;
    const x = new Float64Array(n);
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      codes[i] = prng.next() < 0.08 ? 1 : 0;
      x[i] = (codes[i] ? 0.8 : 0) + (prng.next() + prng.next() - 1) * 1.5;
    }
    const ds: ColumnarDataset = {
      rowCount: n,
      columns: [
        { name: 'x0', type: 'numeric', values: x },
        { name: 'label', type: 'categorical', codes, levels: ['common', 'rare'] },
      ],
    };
    const plain = trainModel(ds, spec({ algorithm: 'logistic_regression', features: ['x0'] }));
    const balanced = trainModel(
      ds,
      spec({ algorithm: 'logistic_regression', features: ['x0'], classWeight: 'balanced' }),
    );
    expect(balanced.model.training.classWeights!.rare).toBeGreaterThan(5);
    expect(balanced.metrics.holdout!.recall).toBeGreaterThan(plain.metrics.holdout!.recall! + 0.2);
  });
});

describe('gradient-boosted trees', () => {
  it('learns XOR, which logistic regression cannot', () => {
    const ds = xor(4_000, 5);
    const lr = trainModel(ds, spec({ algorithm: 'logistic_regression' }));
    const gbt = trainModel(
      ds,
      spec({ algorithm: 'gradient_boosting', hyperparameters: { rounds: 60, maxDepth: 3 } }),
    );
    expect(lr.metrics.holdout!.accuracy).toBeLessThan(0.65);
    expect(gbt.metrics.holdout!.accuracy).toBeGreaterThan(0.95);
  });

  it('handles multiclass and regression targets', () => {
    const multi = syntheticClassification({ rows: 5_000, features: 4, seed: 6, classes: 3, signal: 6 });
    const m = trainModel(
      multi,
      spec({
        algorithm: 'gradient_boosting',
        features: ['x0', 'x1', 'x2', 'x3'],
        hyperparameters: { rounds: 40 },
      }),
    );
    expect(m.model.task).toBe('multiclass');
    expect(m.metrics.holdout!.accuracy).toBeGreaterThan(0.55);

    const reg = syntheticRegression({ rows: 5_000, features: 6, seed: 7 });
    const features = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'];
    const r = trainModel(
      reg,
      parseTrainingSpec({
        algorithm: 'gradient_boosting',
        target: 'y',
        features,
        hyperparameters: { rounds: 150 },
      }),
    );
    expect(r.model.task).toBe('regression');
    expect(r.metrics.holdout!.r2).toBeGreaterThan(0.9);
  });

  it('routes missing values and stops early on the validation loss', () => {
    const ds = xor(3_000, 8);
    const x0 = (ds.columns[0] as Extract<Column, { type: 'numeric' }>).values;
    for (let i = 0; i < x0.length; i += 7) x0[i] = NaN;
    const r = trainModel(
      ds,
      spec({
        algorithm: 'gradient_boosting',
        hyperparameters: { rounds: 2_000, maxDepth: 3, earlyStoppingRounds: 5, learningRate: 0.5 },
      }),
    );
    expect(r.iterations).toBeLessThan(2_000);
    expect(r.metrics.holdout!.accuracy).toBeGreaterThan(0.75);
    const out = loadModel(r.model).predictRecords([{ x0: null, x1: 0.5 }]);
    expect([0, 1]).toContain(out[0]);
  });

  it('splits on an ordinal-encoded categorical feature', () => {
    const n = 2_000;
    const prng = createPrng(10);
    const colour = new Int32Array(n);
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      colour[i] = prng.nextInt(3);
      codes[i] = colour[i] === 1 ? 1 : 0;
    }
    const ds: ColumnarDataset = {
      rowCount: n,
      columns: [
        { name: 'colour', type: 'categorical', codes: colour, levels: ['red', 'green', 'blue'] },
        { name: 'label', type: 'categorical', codes, levels: ['n', 'y'] },
      ],
    };
    const r = trainModel(
      ds,
      spec({
        algorithm: 'gradient_boosting',
        features: ['colour'],
        hyperparameters: { rounds: 20, minSamplesLeaf: 5 },
      }),
    );
    expect(r.metrics.holdout!.accuracy).toBe(1);
    expect(
      loadModel(r.model).predictRecords([{ colour: 'green' }, { colour: 'red' }, { colour: 'purple' }])[0],
    ).toBe(1);
  });
});

describe('ridge regression', () => {
  it('recovers the coefficients of a linear target', () => {
    const ds = syntheticRegression({ rows: 5_000, features: 8, seed: 11, noise: 0.05 });
    const features = Array.from({ length: 8 }, (_, j) => `x${j}`);
    const r = trainModel(
      ds,
      parseTrainingSpec({ algorithm: 'ridge', target: 'y', features, hyperparameters: { alpha: 0 } }),
    );
    const m = r.model;
    if (m.algorithm !== 'ridge' || m.preprocessing.kind !== 'standardize_onehot')
      throw new Error('wrong algorithm');
    // coefficients are on standardized features: divide by the scale to get back to raw units
    const raw = m.params.coefficients.map((c, j) => {
      const f = m.preprocessing.features[j]!;
      return f.type === 'numeric' ? c / f.scale : c;
    });
    [1, 2, 3, 4, 5, 0, 0, 0].forEach((beta, j) => expect(raw[j]).toBeCloseTo(beta, 1));
    expect(r.metrics.holdout!.r2).toBeGreaterThan(0.99);
  });

  it('shrinks coefficients as alpha grows', () => {
    const ds = syntheticRegression({ rows: 1_000, features: 3, seed: 12 });
    const norm = (alpha: number) => {
      const m = trainModel(
        ds,
        parseTrainingSpec({
          algorithm: 'ridge',
          target: 'y',
          features: ['x0', 'x1', 'x2'],
          hyperparameters: { alpha },
        }),
      ).model;
      if (m.algorithm !== 'ridge') throw new Error('wrong algorithm');
      return Math.hypot(...m.params.coefficients);
    };
    expect(norm(10)).toBeLessThan(norm(0.1));
  });
});

describe('determinism and serialization', () => {
  const ds = syntheticClassification({ rows: 3_000, features: 6, seed: 13, withSegment: true });
  const features = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5', 'segment'];
  const gbtSpec = (seed: number) =>
    spec({
      algorithm: 'gradient_boosting',
      features,
      seed,
      hyperparameters: { rounds: 15, subsample: 0.7, colsample: 0.7 },
    });

  it('gives byte-identical model JSON for the same seed', () => {
    for (const s of [gbtSpec(1), spec({ algorithm: 'logistic_regression', features, seed: 1 })]) {
      expect(JSON.stringify(trainModel(ds, s).model)).toBe(JSON.stringify(trainModel(ds, s).model));
    }
  });

  it('gives a different model for a different seed', () => {
    expect(JSON.stringify(trainModel(ds, gbtSpec(1)).model)).not.toBe(
      JSON.stringify(trainModel(ds, gbtSpec(2)).model),
    );
  });

  it('predicts the same after a JSON round trip', () => {
    for (const s of [gbtSpec(3), spec({ algorithm: 'logistic_regression', features })]) {
      const r = trainModel(ds, s);
      const before = loadModel(r.model).predictProba(ds);
      const after = loadModel(JSON.parse(JSON.stringify(r.model))).predictProba(ds);
      expect(Array.from(after)).toEqual(Array.from(before));
    }
  });

  it('scores plain records the same as the columnar dataset', () => {
    const r = trainModel(ds, gbtSpec(4));
    const model = loadModel(r.model);
    const records = [0, 1, 2].map((i) => ({
      ...Object.fromEntries(
        features
          .slice(0, 6)
          .map((f, j) => [f, (ds.columns[j] as Extract<Column, { type: 'numeric' }>).values[i]]),
      ),
      segment: ['a', 'b', 'c', 'd'][(ds.columns[6] as Extract<Column, { type: 'categorical' }>).codes[i]!],
    }));
    expect(Array.from(model.predictRecords(records))).toEqual(
      Array.from(model.predict(selectRows(ds, [0, 1, 2]))),
    );
  });

  it('refuses a tampered or malformed model', () => {
    const r = trainModel(ds, gbtSpec(5));
    const looped = JSON.parse(JSON.stringify(r.model));
    looped.params.trees[0].left[0] = 0; // a node that points at itself would loop forever
    expect(() => loadModel(looped)).toThrow(/malformed tree/);
    const wrongTask = { ...r.model, task: 'regression' };
    expect(() => loadModel(wrongTask)).toThrow(expect.objectContaining({ code: 'invalid_model' }));
    expect(() => loadModel({ format: 'onnx' })).toThrow(
      expect.objectContaining({ name: 'NonRetriableError' }),
    );
  });

  it('keeps the holdout rows out of training (same split every time, metrics per part)', () => {
    const s = spec({ algorithm: 'logistic_regression', features });
    const split = splitForSpec(ds, s);
    const r = trainModel(ds, s);
    expect(r.rows.train).toBe(split.train.length);
    expect(r.rows.holdout).toBe(split.holdout.length);
    expect(r.model.training.rows).toEqual({
      train: split.train.length,
      validation: split.validation.length,
      holdout: split.holdout.length,
    });
  });
});

describe('bad input', () => {
  it('names a missing column and a single-class target', () => {
    const ds = datasetFromRecords(
      [
        { x0: 1, label: 'a' },
        { x0: 2, label: 'a' },
      ],
      { x0: 'numeric', label: 'categorical' },
    );
    expect(() => trainModel(ds, spec({ algorithm: 'logistic_regression', features: ['nope'] }))).toThrow(
      /no column "nope"/,
    );
    expect(() =>
      trainModel(
        ds,
        spec({
          algorithm: 'logistic_regression',
          features: ['x0'],
          split: { train: 1, validation: 0, holdout: 0 },
        }),
      ),
    ).toThrow(expect.objectContaining({ code: 'single_class' }));
  });
});
