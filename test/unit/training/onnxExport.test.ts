/** @jest-environment ./test/support/onnxEnvironment.js */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Tensor } from 'onnxruntime-node';
import * as ort from 'onnxruntime-node';
import { readDataset } from '../../../lib/data/reading/readDataset';
import type { Column, ColumnarDataset } from '../../../lib/training/dataset';
import { datasetFromTable, getColumn, selectRows } from '../../../lib/training/dataset';
import type { ModelJson } from '../../../lib/training/models/format';
import type { NumericInputs } from '../../../lib/training/models/onnxExport';
import {
  float32Threshold,
  integerLabels,
  onnxSignature,
  toOnnx,
} from '../../../lib/training/models/onnxExport';
import { loadModel } from '../../../lib/training/models/predict';
import { trainModel } from '../../../lib/training/models/train';
import { createPrng } from '../../../lib/training/prng';
import { parseTrainingSpec } from '../../../lib/training/spec';

const dataDir = path.resolve(__dirname, '..', '..', '..', 'data');

async function demo(file: string): Promise<ColumnarDataset> {
  const { table } = await readDataset(readFileSync(path.join(dataDir, file)));
  return datasetFromTable(table);
}

/**
 * The same rows with every numeric value rounded to float32: the values the ONNX graph receives
 * through its float inputs, so the TS predict scores exactly what ONNX scores.
 */
function asFloat32(ds: ColumnarDataset): ColumnarDataset {
  return {
    rowCount: ds.rowCount,
    columns: ds.columns.map((c): Column =>
      c.type === 'numeric' ? { ...c, values: Float64Array.from(Float32Array.from(c.values)) } : c,
    ),
  };
}

/** One ONNX input per feature: float or double [N, 1] (NaN = missing), or string [N, 1] ('' = missing). */
function feeds(
  model: ModelJson,
  ds: ColumnarDataset,
  numeric: NumericInputs = 'float',
): Record<string, Tensor> {
  const n = ds.rowCount;
  const out: Record<string, Tensor> = {};
  for (const f of model.features) {
    const col = getColumn(ds, f.name);
    if (f.type === 'numeric') {
      if (col.type !== 'numeric') throw new Error(`${f.name} is not numeric`);
      out[f.name] =
        numeric === 'float'
          ? new ort.Tensor('float32', Float32Array.from(col.values), [n, 1])
          : new ort.Tensor('float64', Float64Array.from(col.values), [n, 1]);
    } else {
      const strings =
        col.type === 'numeric'
          ? Array.from(col.values, (v) => (Number.isNaN(v) ? '' : String(v)))
          : Array.from(col.codes, (c) => (c < 0 ? '' : col.levels[c]!));
      out[f.name] = new ort.Tensor('string', strings, [n, 1]);
    }
  }
  return out;
}

interface Comparison {
  maxDiff: number;
  labelMismatches: number;
}

/**
 * Scores `ds` with the ONNX export and `reference` (the same rows) with the TS predict; returns the
 * largest difference of the probabilities (absolute) or values (relative above 1) and the number
 * of labels that differ.
 */
async function compare(
  model: ModelJson,
  ds: ColumnarDataset,
  reference: ColumnarDataset,
  numeric: NumericInputs,
): Promise<Comparison> {
  const session = await ort.InferenceSession.create(Buffer.from(toOnnx(model, { numericInputs: numeric })));
  const result = await session.run(feeds(model, ds, numeric));
  await session.release();
  const loaded = loadModel(model);
  const n = ds.rowCount;
  let maxDiff = 0;
  let labelMismatches = 0;
  if (loaded.classes) {
    const K = loaded.classes.length;
    const expected = loaded.predictProba(reference);
    const proba = result.probabilities!;
    expect(proba.type).toBe('float32');
    expect(proba.dims).toEqual([n, K]);
    const got = proba.data as Float32Array;
    for (let i = 0; i < n * K; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
    const labels = loaded.predictLabels(reference);
    const label = result.label!;
    expect(label.dims).toEqual([n]);
    expect(label.type).toBe(integerLabels(loaded.classes) ? 'int64' : 'string');
    const gotLabels = Array.from(label.data as ArrayLike<string | bigint>, String);
    labelMismatches = gotLabels.filter((l, i) => l !== labels[i]).length;
  } else {
    const expected = loaded.predict(reference);
    const value = result.value!;
    expect(value.type).toBe('float32');
    expect(value.dims).toEqual([n, 1]);
    const got = value.data as Float32Array;
    for (let i = 0; i < n; i++)
      maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!)));
  }
  return { maxDiff, labelMismatches };
}

/**
 * The precision promise, both input layouts. Double inputs: the TS predict on the same rows.
 * Float inputs: the graph sees each value rounded to float32; a linear model then equals the TS
 * predict on those rounded values, a tree ensemble takes the TS predict's branches on the values as
 * written (thresholds are rounded the same way, see onnxExport.ts).
 */
async function expectSamePredictions(model: ModelJson, ds: ColumnarDataset): Promise<void> {
  const double = await compare(model, ds, ds, 'double');
  const float = await compare(
    model,
    ds,
    model.algorithm === 'gradient_boosting' ? ds : asFloat32(ds),
    'float',
  );
  for (const c of [double, float]) {
    expect(c.labelMismatches).toBe(0);
    expect(c.maxDiff).toBeLessThanOrEqual(1e-6);
  }
}

const train = (ds: ColumnarDataset, spec: Record<string, unknown>): ModelJson =>
  trainModel(ds, parseTrainingSpec(spec)).model;

/**
 * Generated rows with what real data brings: decimal numeric features with NaN (about 10 %), one
 * of them large (9000.0 to 9500.0) so scaling matters, two categorical features with missing
 * levels, and, when `unseen` is set, levels the training rows never had. Targets: `binary` (yes/no),
 * `multi` (integer labels 1, 2, 3), `y` (regression in the thousands).
 */
function generated(rows: number, seed: number, unseen = false): ColumnarDataset {
  const prng = createPrng(seed);
  const num = (scale: number, offset: number, digits: number) =>
    Float64Array.from({ length: rows }, () =>
      prng.next() < 0.1 ? NaN : Math.round((prng.next() * scale + offset) * digits) / digits,
    );
  const x0 = num(4, -2, 1000);
  const x1 = num(2, 0, 1000);
  const big = num(500, 9_000, 10);
  const colorLevels = ['red', 'green', 'blue', 'white', ...(unseen ? ['zz-unseen'] : [])];
  const shapeLevels = ['round', 'square', ...(unseen ? ['new-shape'] : [])];
  const cat = (levels: string[]) =>
    Int32Array.from({ length: rows }, () => (prng.next() < 0.1 ? -1 : prng.nextInt(levels.length)));
  const color = cat(colorLevels);
  const shape = cat(shapeLevels);
  const binary = new Int32Array(rows);
  const multi = new Float64Array(rows);
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    const a = Number.isNaN(x0[i]!) ? 0 : x0[i]!;
    const b = Number.isNaN(x1[i]!) ? 1 : x1[i]!;
    const c = Number.isNaN(big[i]!) ? 9_250 : big[i]!;
    const z =
      1.5 * a - b + (c - 9_250) / 200 + (color[i] === 0 ? 1 : color[i] === 2 ? -1 : 0) + (prng.next() - 0.5);
    binary[i] = z > 0 ? 1 : 0;
    multi[i] = z < -1 ? 1 : z < 1 ? 2 : 3;
    y[i] = 1_000 * z + 5_000 + (shape[i] === 1 ? 300 : 0) + 100 * (prng.next() - 0.5);
  }
  return {
    rowCount: rows,
    columns: [
      { name: 'x0', type: 'numeric', values: x0 },
      { name: 'x1', type: 'numeric', values: x1 },
      { name: 'big', type: 'numeric', values: big },
      { name: 'color', type: 'categorical', codes: color, levels: colorLevels },
      { name: 'shape', type: 'categorical', codes: shape, levels: shapeLevels },
      { name: 'binary', type: 'categorical', codes: binary, levels: ['no', 'yes'] },
      { name: 'multi', type: 'numeric', values: multi },
      { name: 'y', type: 'numeric', values: y },
    ],
  };
}

const generatedFeatures = ['x0', 'x1', 'big', 'color', 'shape'];
const cpsFeatures = [
  'education',
  'south',
  'gender',
  'experience',
  'age',
  'race',
  'occupation',
  'sector',
  'married',
];
const penguinFeatures = ['Island', 'Beak Length (mm)', 'Beak Depth (mm)', 'Flipper Length (mm)', 'Sex'];
const fastGbt = { rounds: 60, earlyStoppingRounds: 0 };

describe('built-in models exported to ONNX score like the TS predict (within 1e-6, labels exactly)', () => {
  it.each([
    ['logistic_regression', {}],
    ['gradient_boosting', { task: 'classification', hyperparameters: { rounds: 100 } }],
  ] as const)('binary %s on the CPS 1985 wages (union, integer labels)', async (algorithm, extra) => {
    const ds = await demo('cps-wages-1985.csv');
    const model = train(ds, { algorithm, target: 'union', features: cpsFeatures, ...extra });
    expect(onnxSignature(model).outputs.map((o) => [o.name, o.type])).toEqual([
      ['label', 'int64'],
      ['probabilities', 'float'],
    ]);
    await expectSamePredictions(model, ds);
  });

  it.each([
    ['ridge', {}],
    ['gradient_boosting', { task: 'regression', hyperparameters: fastGbt }],
  ] as const)('regression %s on the CPS 1985 wages (wage)', async (algorithm, extra) => {
    const ds = await demo('cps-wages-1985.csv');
    await expectSamePredictions(
      train(ds, { algorithm, target: 'wage', features: cpsFeatures, ...extra }),
      ds,
    );
  });

  it.each([
    ['logistic_regression', {}],
    ['gradient_boosting', { hyperparameters: fastGbt }],
  ] as const)('multiclass %s on the Seattle weather (string labels)', async (algorithm, extra) => {
    const ds = await demo('seattle-weather-2012.csv');
    const model = train(ds, {
      algorithm,
      target: 'weather',
      features: ['precipitation', 'temp_max', 'temp_min', 'wind'],
      ...extra,
    });
    expect(model.target.classes!.length).toBeGreaterThan(2);
    expect(onnxSignature(model).outputs[0]).toMatchObject({ name: 'label', type: 'string' });
    await expectSamePredictions(model, ds);
    // rows from another year score the same way through both paths
    await expectSamePredictions(model, await demo('seattle-weather-2015.csv'));
  });

  it.each([
    ['logistic_regression', 'Species', {}],
    ['gradient_boosting', 'Species', { hyperparameters: fastGbt }],
    ['ridge', 'Body Mass (g)', {}],
    ['gradient_boosting', 'Body Mass (g)', { hyperparameters: fastGbt }],
  ] as const)(
    '%s on the Palmer penguins (%s; missing measurements and sex)',
    async (algorithm, target, extra) => {
      const ds = await demo('penguins.jsonl');
      const rows = Uint32Array.from({ length: ds.rowCount }, (_, i) => i).filter(
        (i) =>
          !Number.isNaN(
            target === 'Species' ? 0 : (getColumn(ds, target) as { values: Float64Array }).values[i]!,
          ),
      );
      const model = train(selectRows(ds, rows), { algorithm, target, features: penguinFeatures, ...extra });
      // every row, including the two with no measurements and the ten with no sex
      await expectSamePredictions(model, ds);
    },
  );

  describe('on generated data with missing values and unseen categories', () => {
    const trainRows = generated(3_000, 7);
    const scoreRows = generated(1_000, 8, true);

    it('the scoring rows do have missing values and unseen levels', () => {
      const color = getColumn(scoreRows, 'color');
      if (color.type !== 'categorical') throw new Error('color is categorical');
      const unseen = Array.from(color.codes).filter((c) => color.levels[c] === 'zz-unseen').length;
      expect(unseen).toBeGreaterThan(100);
      expect(Array.from(color.codes).filter((c) => c < 0).length).toBeGreaterThan(50);
      const x0 = getColumn(scoreRows, 'x0') as { values: Float64Array };
      expect(x0.values.filter(Number.isNaN).length).toBeGreaterThan(50);
    });

    it.each([
      ['logistic_regression', 'binary', {}],
      ['gradient_boosting', 'binary', { hyperparameters: { rounds: 100, earlyStoppingRounds: 0 } }],
      ['logistic_regression', 'multi', {}],
      ['gradient_boosting', 'multi', { task: 'classification', hyperparameters: fastGbt }],
      ['ridge', 'y', {}],
      [
        'gradient_boosting',
        'y',
        { task: 'regression', hyperparameters: { rounds: 100, earlyStoppingRounds: 0 } },
      ],
      [
        'gradient_boosting',
        'binary',
        {
          classWeight: 'balanced',
          hyperparameters: { ...fastGbt, maxDepth: 3, subsample: 0.7, colsample: 0.6 },
        },
      ],
    ] as const)('%s predicting %s', async (algorithm, target, extra) => {
      const model = train(trainRows, { algorithm, target, features: generatedFeatures, ...extra });
      await expectSamePredictions(model, trainRows);
      await expectSamePredictions(model, scoreRows);
    });

    it('integer class labels come out as int64, the others as strings', async () => {
      const multi = train(trainRows, {
        algorithm: 'logistic_regression',
        target: 'multi',
        features: generatedFeatures,
      });
      expect(multi.target.classes).toEqual(['1', '2', '3']);
      const session = await ort.InferenceSession.create(Buffer.from(toOnnx(multi)));
      const out = await session.run(feeds(multi, selectRows(scoreRows, [0, 1, 2])));
      expect(out.label!.type).toBe('int64');
      expect(Array.from(out.label!.data as BigInt64Array, Number)).toEqual(
        loadModel(multi)
          .predictLabels(selectRows(scoreRows, [0, 1, 2]))
          .map(Number),
      );
      await session.release();
      expect(integerLabels(['0', '1', '-2'])).toBe(true);
      expect(integerLabels(['1', '1.5'])).toBe(false);
      expect(integerLabels(['01', '2'])).toBe(false);
      expect(integerLabels(['no', 'yes'])).toBe(false);
    });

    it('trees that are a single leaf (no split worth making) score their leaf', async () => {
      const model = train(trainRows, {
        algorithm: 'gradient_boosting',
        target: 'binary',
        features: generatedFeatures,
        hyperparameters: { rounds: 3, earlyStoppingRounds: 0, minSamplesLeaf: 1_000_000 },
      });
      if (model.algorithm !== 'gradient_boosting') throw new Error('gbt expected');
      expect(model.params.trees.every((t) => t.feature.length === 1 && t.feature[0] === -1)).toBe(true);
      await expectSamePredictions(model, scoreRows);
    });

    it.each(['logistic_regression', 'gradient_boosting', 'ridge'] as const)(
      '%s with a categorical feature never seen in training (no categories)',
      async (algorithm) => {
        const noShape: ColumnarDataset = {
          ...trainRows,
          columns: trainRows.columns.map((c) =>
            c.name === 'shape' && c.type === 'categorical'
              ? { ...c, codes: new Int32Array(c.codes.length).fill(-1) }
              : c,
          ),
        };
        const target = algorithm === 'ridge' ? 'y' : 'binary';
        const model = train(noShape, {
          algorithm,
          target,
          features: generatedFeatures,
          hyperparameters: algorithm === 'gradient_boosting' ? fastGbt : {},
        });
        expect(model.features.find((f) => f.name === 'shape')).toEqual({
          name: 'shape',
          type: 'categorical',
          categories: [],
        });
        await expectSamePredictions(model, scoreRows);
      },
    );

    it('an ensemble with no trees (stopped before its first round) scores its base score', async () => {
      for (const target of ['multi', 'y']) {
        const model = train(trainRows, {
          algorithm: 'gradient_boosting',
          target,
          features: generatedFeatures,
          ...(target === 'multi' ? { task: 'classification' } : {}),
          hyperparameters: { rounds: 2, earlyStoppingRounds: 0 },
        });
        if (model.algorithm !== 'gradient_boosting') throw new Error('gbt expected');
        const empty: ModelJson = { ...model, params: { ...model.params, trees: [] } };
        await expectSamePredictions(empty, scoreRows);
      }
    });
  });
});

describe('labels on a tie', () => {
  it('are the first class, as in the TS predict (a hand-written model that always says 50/50)', async () => {
    const model: ModelJson = {
      format: 'sluice-model',
      formatVersion: 1,
      algorithm: 'logistic_regression',
      task: 'binary',
      target: { name: 'ok', classes: ['yes', 'no'] },
      features: [
        { name: 'x', type: 'numeric' },
        { name: 'c', type: 'categorical', categories: ['a', 'b'] },
      ],
      training: {
        seed: 1,
        hyperparameters: {},
        iterations: 0,
        rows: { train: 0, validation: 0, holdout: 0 },
      },
      preprocessing: {
        kind: 'standardize_onehot',
        features: [
          { name: 'x', type: 'numeric', mean: 3, scale: 2 },
          { name: 'c', type: 'categorical', categories: ['a', 'b'] },
        ],
      },
      params: { coefficients: [[0, 0, 0]], intercepts: [0] },
    };
    const session = await ort.InferenceSession.create(Buffer.from(toOnnx(model)));
    const out = await session.run({
      x: new ort.Tensor('float32', Float32Array.from([1, NaN, 5]), [3, 1]),
      c: new ort.Tensor('string', ['a', '', 'zz'], [3, 1]),
    });
    await session.release();
    expect(Array.from(out.probabilities!.data as Float32Array)).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
    expect(out.label!.data).toEqual(['yes', 'yes', 'yes']);
    expect(loadModel(model).predictRecords([{ x: 1, c: 'a' }])).toEqual(Float64Array.from([0]));
  });
});

describe('tree thresholds for float32 inputs', () => {
  it('keeps a value written exactly on the threshold on the left (49.9 between 49.8 and 50.0)', () => {
    const t = 49.8 + (50 - 49.8) / 2;
    expect(t).toBe(49.9);
    expect(Math.fround(49.9) <= float32Threshold(t)).toBe(true);
  });

  it('sends a value just above a threshold right even when both round to one float32 (1.07)', () => {
    const t = 1.069 + (1.071 - 1.069) / 2; // 1.0699999999999998
    expect(1.07 > t).toBe(true);
    expect(Math.fround(1.07)).toBe(Math.fround(t));
    expect(Math.fround(1.07) <= float32Threshold(t)).toBe(false);
    expect(Math.fround(1.069) <= float32Threshold(t)).toBe(true);
  });

  it('agrees with the float64 comparison for every value written with 6 significant digits', () => {
    const prng = createPrng(3);
    const decimal = () =>
      Number(((prng.next() - 0.5) * 10 ** prng.nextInt(12 - 6)).toPrecision(1 + prng.nextInt(6)));
    let checked = 0;
    const wrong: number[][] = [];
    for (let i = 0; i < 20_000; i++) {
      const [a, b] = [decimal(), decimal()].sort((x, y) => x - y) as [number, number];
      if (a === b) continue;
      const t = a + (b - a) / 2; // the trainer's midpoint
      const t32 = float32Threshold(t);
      for (const v of [a, b, Number(t.toPrecision(6)), Number(t.toPrecision(4)), Number(t.toPrecision(2))]) {
        if (Math.fround(v) <= t32 !== v <= t) wrong.push([v, t]);
        checked++;
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(90_000);
  });
});

describe('toOnnx refuses what it cannot export', () => {
  it('an artifact that is not a valid model (invalid_model)', () => {
    expect(() => toOnnx({ format: 'sluice-model' })).toThrow(
      expect.objectContaining({ code: 'invalid_model' }),
    );
  });

  it('a feature named like an output or an internal tensor (onnx_name_conflict)', () => {
    const ds = generated(300, 1);
    const renamed: ColumnarDataset = {
      ...ds,
      columns: ds.columns.map((c) => (c.name === 'x0' ? { ...c, name: 'probabilities' } : c)),
    };
    const model = train(renamed, {
      algorithm: 'logistic_regression',
      target: 'binary',
      features: ['probabilities', 'x1'],
    });
    expect(() => toOnnx(model)).toThrow(
      expect.objectContaining({
        code: 'onnx_name_conflict',
        message: expect.stringContaining('"probabilities"'),
      }),
    );
    // a regression model has no such output, so the same name is fine there
    const ridge = train(renamed, { algorithm: 'ridge', target: 'y', features: ['probabilities', 'x1'] });
    expect(toOnnx(ridge).length).toBeGreaterThan(0);
  });

  it('is deterministic: the same artifact gives the same bytes', () => {
    const model = train(generated(500, 2), {
      algorithm: 'gradient_boosting',
      target: 'binary',
      features: generatedFeatures,
      hyperparameters: { rounds: 5 },
    });
    expect(Buffer.from(toOnnx(JSON.parse(JSON.stringify(model)))).equals(Buffer.from(toOnnx(model)))).toBe(
      true,
    );
  });
});
