/**
 * The exported files are valid ONNX for the reference implementation: the `onnx` Python package
 * (Debian's python3-onnx, which CI installs with apt) loads each one and its checker, with full
 * shape inference, accepts it. This test needs /usr/bin/python3 with `onnx`; it skips nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ColumnarDataset } from '../../../lib/training/dataset';
import type { ModelJson } from '../../../lib/training/models/format';
import { float32Threshold, toOnnx } from '../../../lib/training/models/onnxExport';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification, syntheticRegression } from '../../../lib/training/synthetic';

const PYTHON = '/usr/bin/python3';

const CHECK = `
import json, sys
import onnx
from onnx import numpy_helper
out = []
for path in sys.argv[1:]:
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    thresholds = []
    for n in g.node:
        for a in n.attribute:
            if a.name == 'nodes_values_as_tensor':
                thresholds = numpy_helper.to_array(a.t).tolist()
    out.append({
        'ir': m.ir_version,
        'opsets': {o.domain or 'ai.onnx': o.version for o in m.opset_import},
        'inputs': [[i.name, i.type.tensor_type.elem_type] for i in g.input],
        'outputs': [[o.name, o.type.tensor_type.elem_type] for o in g.output],
        'ops': sorted({(n.domain or 'ai.onnx') + ':' + n.op_type for n in g.node}),
        'thresholds': thresholds,
        'metadata': {p.key: p.value for p in m.metadata_props},
    })
print(json.dumps(out))
`;

interface Checked {
  ir: number;
  opsets: Record<string, number>;
  inputs: [string, number][];
  outputs: [string, number][];
  ops: string[];
  thresholds: number[];
  metadata: Record<string, string>;
}

function checkWithPython(models: Uint8Array[]): Checked[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-onnx-'));
  try {
    const files = models.map((bytes, i) => {
      const file = path.join(dir, `m${i}.onnx`);
      writeFileSync(file, bytes);
      return file;
    });
    const run = spawnSync(PYTHON, ['-c', CHECK, ...files], { encoding: 'utf8' });
    if (run.error) throw new Error(`${PYTHON} could not run: ${run.error.message}`);
    if (run.status !== 0) throw new Error(`onnx rejected a model:\n${run.stderr}`);
    return JSON.parse(run.stdout) as Checked[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const FLOAT = 1;
const STRING = 8;
const INT64 = 7;
const DOUBLE = 11;

function withCategory(ds: ColumnarDataset): ColumnarDataset {
  const codes = Int32Array.from({ length: ds.rowCount }, (_, i) => (i % 7 === 0 ? -1 : i % 3));
  return {
    ...ds,
    columns: [
      ...ds.columns,
      { name: 'tier', type: 'categorical', codes, levels: ['gold', 'silver', 'bronze'] },
    ],
  };
}

describe('exported models pass the onnx package’s checker', () => {
  const binary = withCategory(syntheticClassification({ rows: 400, features: 3, seed: 1 }));
  const multi = withCategory(syntheticClassification({ rows: 400, features: 3, seed: 2, classes: 3 }));
  const regression = withCategory(syntheticRegression({ rows: 400, features: 3, seed: 3 }));
  const features = ['x0', 'x1', 'x2', 'tier'];
  const train = (ds: ColumnarDataset, spec: Record<string, unknown>): ModelJson =>
    trainModel(ds, parseTrainingSpec({ features, ...spec })).model;
  const gbt = { rounds: 5, earlyStoppingRounds: 0 };
  const models = [
    train(binary, { algorithm: 'logistic_regression', target: 'label' }),
    train(multi, { algorithm: 'logistic_regression', target: 'label' }),
    train(regression, { algorithm: 'ridge', target: 'y' }),
    train(binary, { algorithm: 'gradient_boosting', target: 'label', hyperparameters: gbt }),
    train(multi, { algorithm: 'gradient_boosting', target: 'label', hyperparameters: gbt }),
    train(regression, { algorithm: 'gradient_boosting', target: 'y', hyperparameters: gbt }),
  ];

  it('every algorithm and task, with float and with double numeric inputs', () => {
    const checked = checkWithPython([
      ...models.map((m) => toOnnx(m)),
      ...models.map((m) => toOnnx(m, { numericInputs: 'double' })),
    ]);
    expect(checked).toHaveLength(12);
    checked.forEach((c, i) => {
      const m = models[i % 6]!;
      const numeric = i < 6 ? FLOAT : DOUBLE;
      expect(c.ir).toBe(8);
      expect(c.opsets).toEqual({ 'ai.onnx': 17, 'ai.onnx.ml': 3 });
      expect(c.inputs).toEqual([
        ['x0', numeric],
        ['x1', numeric],
        ['x2', numeric],
        ['tier', STRING],
      ]);
      expect(c.outputs).toEqual(
        m.task === 'regression'
          ? [['value', FLOAT]]
          : [
              ['label', STRING],
              ['probabilities', FLOAT],
            ],
      );
      expect(c.metadata).toEqual({
        'sluice.algorithm': m.algorithm,
        'sluice.task': m.task,
        'sluice.target': m.target.name,
      });
      if (m.algorithm === 'gradient_boosting') {
        expect(c.ops).toEqual(
          expect.arrayContaining([
            'ai.onnx.ml:LabelEncoder',
            'ai.onnx.ml:TreeEnsembleRegressor',
            'ai.onnx:Concat',
          ]),
        );
        // the thresholds decode to the float64 values written: as trained, or rounded for float32 inputs
        const written = m.params.trees.flatMap((t) =>
          t.feature.map((f, j) => (f < 0 ? 0 : i < 6 ? float32Threshold(t.threshold[j]!) : t.threshold[j]!)),
        );
        expect(c.thresholds).toEqual(written);
      } else {
        expect(c.ops).toEqual(
          expect.arrayContaining(['ai.onnx.ml:OneHotEncoder', 'ai.onnx:MatMul', 'ai.onnx:Where']),
        );
      }
    });
  });

  it('integer class labels are declared int64', () => {
    const ds = binary;
    const numericLabel: ColumnarDataset = {
      ...ds,
      columns: ds.columns.map((c) =>
        c.name === 'label' && c.type === 'categorical'
          ? { name: 'label', type: 'numeric', values: Float64Array.from(c.codes) }
          : c,
      ),
    };
    const model = train(numericLabel, { algorithm: 'logistic_regression', target: 'label' });
    expect(model.target.classes).toEqual(['0', '1']);
    const [c] = checkWithPython([toOnnx(model)]);
    expect(c!.outputs).toEqual([
      ['label', INT64],
      ['probabilities', FLOAT],
    ]);
  });
});
