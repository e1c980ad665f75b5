import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ort } from '../../support/onnxRuntime';
import { readDataset } from '../../../lib/data/reading/readDataset';
import type { Column, ColumnarDataset } from '../../../lib/training/dataset';
import { datasetFromTable, getColumn, selectRows } from '../../../lib/training/dataset';
import type { ModelJson } from '../../../lib/training/models/format';
import { integerLabels, onnxSignature, toOnnx } from '../../../lib/training/models/onnxExport';
import { loadModel } from '../../../lib/training/models/predict';
import { splitForSpec, trainModel } from '../../../lib/training/models/train';
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
    columns: ds.columns.map(
      (c): Column => (c.type === 'numeric' ? { ...c, values: Float64Array.from(Float32Array.from(c.values)) } : c),
    ),
  };
}

/** One ONNX input per feature: float [N, 1] (NaN = missing) or string [N, 1] ('' = missing). */
function feeds(model: ModelJson, ds: ColumnarDataset): Record<string, ort.Tensor> {
  const n = ds.rowCount;
  const out: Record<string, ort.Tensor> = {};
  for (const f of model.features) {
    const col = getColumn(ds, f.name);
    if (f.type === 'numeric') {
      if (col.type !== 'numeric') throw new Error(`${f.name} is not numeric`);
      out[f.name] = new ort.Tensor('float32', Float32Array.from(col.values), [n, 1]);
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

/** Scores `ds` with the ONNX export and with the TS predict; returns the largest difference. */
async function compare(model: ModelJson, ds: ColumnarDataset): Promise<Comparison> {
  const session = await ort.InferenceSession.create(Buffer.from(toOnnx(model)));
  const result = await session.run(feeds(model, ds));
  const loaded = loadModel(model);
  const n = ds.rowCount;
  let maxDiff = 0;
  let labelMismatches = 0;
  if (loaded.classes) {
    const K = loaded.classes.length;
    const expected = loaded.predictProba(ds);
    const proba = result.probabilities!;
    expect(proba.type).toBe('float32');
    expect(proba.dims).toEqual([n, K]);
    const got = proba.data as Float32Array;
    for (let i = 0; i < n * K; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
    const labels = loaded.predictLabels(ds);
    const label = result.label!;
    expect(label.dims).toEqual([n]);
    const gotLabels = Array.from(label.data as ArrayLike<string | bigint>, String);
    expect(label.type).toBe(integerLabels(loaded.classes) ? 'int64' : 'string');
    labelMismatches = gotLabels.filter((l, i) => l !== labels[i]).length;
  } else {
    const expected = loaded.predict(ds);
    const value = result.value!;
    expect(value.type).toBe('float32');
    expect(value.dims).toEqual([n, 1]);
    const got = value.data as Float32Array;
    // float32 outputs: the difference is measured relative to the value (absolute below 1)
    for (let i = 0; i < n; i++)
      maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!)));
  }
  await session.release();
  return { maxDiff, labelMismatches };
}

async function expectSamePredictions(model: ModelJson, ds: ColumnarDataset): Promise<Comparison> {
  const c = await compare(model, asFloat32(ds));
  expect(c.labelMismatches).toBe(0);
  expect(c.maxDiff).toBeLessThanOrEqual(1e-6);
  return c;
}

const train = (ds: ColumnarDataset, spec: Record<string, unknown>): ModelJson =>
  trainModel(ds, parseTrainingSpec(spec)).model;

describe('built-in models exported to ONNX score like the TS predict', () => {
  const cpsFeatures = ['education', 'south', 'gender', 'experience', 'age', 'race', 'occupation', 'sector', 'married'];

  it.each(['logistic_regression', 'gradient_boosting'] as const)(
    'binary %s on the CPS 1985 wages (union)',
    async (algorithm) => {
      const ds = await demo('cps-wages-1985.csv');
      const model = train(ds, { algorithm, target: 'union', features: cpsFeatures, ...(algorithm === 'gradient_boosting' ? { task: 'classification' } : {}) });
      const c = await expectSamePredictions(model, ds);
      console.log(algorithm, 'cps', c);
    },
  );
});
