/**
 * The built-in models as ONNX graphs, so that one ONNX path can score every model whatever trained
 * it. The graph takes one named input per feature (numeric: float [N, 1], or double with
 * `numericInputs: 'double'`, NaN = missing; categorical: string [N, 1], '' or an unseen level =
 * missing/unknown), does the artifact's own
 * preprocessing and computes in float64 from the first Cast on:
 *
 * - logistic regression and ridge: standardize (x − mean) · (1 / scale), NaN → 0 (the training
 *   mean), one-hot over the artifact's categories (ai.onnx.ml OneHotEncoder, unknown → all zeros),
 *   Concat, MatMul + Add, then Sigmoid (binary) or Softmax (multiclass);
 * - gradient boosting: raw numeric values, categories as their index (ai.onnx.ml LabelEncoder,
 *   unknown → NaN), Concat, ai.onnx.ml TreeEnsembleRegressor with float64 thresholds, leaf values
 *   and base scores (x ≤ threshold goes left; NaN follows the node's missingLeft), then Sigmoid or
 *   Softmax. With float inputs the thresholds are moved to float32 ({@link float32Threshold}).
 *
 * Outputs: classifiers `label` [N] (int64 when every class label is an integer, else string) and
 * `probabilities` float [N, C] in the artifact's class order; regression `value` float [N, 1].
 * The labels are the argmax of the float64 probabilities (first class on ties), like the TS predict.
 *
 * The ai.onnx.ml linear operators hold their coefficients as 32-bit floats, which cannot keep the
 * 1e-6 promise on every model, so the linear models use MatMul on float64 initializers instead.
 * docs/training.md ("Built-in models as ONNX") states the precision promise.
 */
import { NonRetriableError } from '../../errors';
import type { Attribute, Node, Tensor, ValueInfo } from '../../onnx/model';
import { encodeModel } from '../../onnx/model';
import type { ModelJson } from './format';
import { loadModel } from './predict';

/** IR 8 with ai.onnx 17 and ai.onnx.ml 3: what ONNX 1.12 and later (and onnxruntime) accept. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;
export const ONNX_ML_OPSET = 3;

const ML = 'ai.onnx.ml';
const DOUBLE = 11; // TensorProto.DOUBLE
const INTERNAL = 'sluice/';

/**
 * How numeric features enter the graph. `float` (the job contract's per-feature layout): float32
 * [N, 1], so values are rounded to float32 before the graph sees them; `double`: float64 [N, 1],
 * exactly the values the TS predict scores.
 */
export type NumericInputs = 'float' | 'double';

export interface OnnxExportOptions {
  /** Default `float`. */
  numericInputs?: NumericInputs;
}

export interface OnnxSignature {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

/** True when every class label is an integer written the way String(n) writes it ("0", "-3"). */
export function integerLabels(classes: readonly string[]): boolean {
  return classes.every((c) => {
    const n = Number(c);
    return Number.isSafeInteger(n) && String(n) === c;
  });
}

/** The graph inputs and outputs {@link toOnnx} writes for a model (the MLmodel signature). */
export function onnxSignature(model: ModelJson, options: OnnxExportOptions = {}): OnnxSignature {
  const numeric = options.numericInputs ?? 'float';
  const inputs = model.features.map((f): ValueInfo => ({
    name: f.name,
    type: f.type === 'numeric' ? numeric : 'string',
    shape: ['N', 1],
  }));
  const classes = model.target.classes;
  const outputs: ValueInfo[] = classes
    ? [
        { name: 'label', type: integerLabels(classes) ? 'int64' : 'string', shape: ['N'] },
        { name: 'probabilities', type: 'float', shape: ['N', classes.length] },
      ]
    : [{ name: 'value', type: 'float', shape: ['N', 1] }];
  return { inputs, outputs };
}

/** Collects nodes and initializers under unique internal names. */
class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: Tensor[] = [];
  readonly valueInfo: ValueInfo[] = [];
  private next = 0;

  name(hint: string): string {
    return `${INTERNAL}${hint}_${this.next++}`;
  }

  constant(hint: string, t: Omit<Tensor, 'name'>): string {
    const name = this.name(hint);
    this.initializers.push({ ...t, name } as Tensor);
    return name;
  }

  op(
    opType: string,
    inputs: readonly string[],
    attributes: readonly Attribute[] = [],
    options: { domain?: string; output?: string; type?: Omit<ValueInfo, 'name'> } = {},
  ): string {
    const output = options.output ?? this.name(opType.toLowerCase());
    if (options.type) this.valueInfo.push({ name: output, ...options.type });
    this.nodes.push({
      opType,
      ...(options.domain ? { domain: options.domain } : {}),
      name: `${INTERNAL}${opType}_${this.nodes.length}`,
      inputs,
      outputs: [output],
      attributes,
    });
    return output;
  }

  toDouble(input: string): string {
    return this.op('Cast', [input], [{ name: 'to', type: 'int', value: DOUBLE }]);
  }
}

/**
 * The ONNX model (ModelProto bytes) of a built-in model artifact. The artifact is validated first
 * (as {@link loadModel} does); names that would clash with the graph's outputs are refused.
 */
export function toOnnx(artifact: unknown, options: OnnxExportOptions = {}): Uint8Array {
  const m = loadModel(artifact).definition;
  const signature = onnxSignature(m, options);
  const reserved = new Set(signature.outputs.map((o) => o.name));
  for (const f of m.features) {
    if (reserved.has(f.name) || f.name.startsWith(INTERNAL)) {
      throw new NonRetriableError(
        'onnx_name_conflict',
        `feature "${f.name}" cannot be an ONNX input: the name is taken by an output or by Sluice's internal names (${INTERNAL}…)`,
      );
    }
  }

  const g = new GraphBuilder();
  const scores =
    m.algorithm === 'gradient_boosting'
      ? treeScores(g, m, options.numericInputs ?? 'float')
      : linearScores(g, m);
  const classes = m.target.classes;
  if (!classes) {
    g.op('Cast', [scores], [{ name: 'to', type: 'int', value: 1 }], { output: 'value' });
  } else {
    let proba: string;
    if (classes.length === 2) {
      const p1 = g.op('Sigmoid', [scores]);
      const p0 = g.op('Sub', [g.constant('one', { type: 'double', dims: [1], values: [1] }), p1]);
      proba = g.op('Concat', [p0, p1], [{ name: 'axis', type: 'int', value: 1 }]);
    } else {
      proba = g.op('Softmax', [scores], [{ name: 'axis', type: 'int', value: 1 }]);
    }
    g.op('Cast', [proba], [{ name: 'to', type: 'int', value: 1 }], { output: 'probabilities' });
    const best = g.op(
      'ArgMax',
      [proba],
      [
        { name: 'axis', type: 'int', value: 1 },
        { name: 'keepdims', type: 'int', value: 0 },
      ],
    );
    const labels: Omit<Tensor, 'name'> = integerLabels(classes)
      ? { type: 'int64', dims: [classes.length], values: classes.map(Number) }
      : { type: 'string', dims: [classes.length], values: classes };
    g.op('Gather', [g.constant('classes', labels), best], [{ name: 'axis', type: 'int', value: 0 }], {
      output: 'label',
    });
  }

  return encodeModel({
    irVersion: ONNX_IR_VERSION,
    opsetImports: [
      { domain: '', version: ONNX_OPSET },
      { domain: ML, version: ONNX_ML_OPSET },
    ],
    producerName: 'sluice',
    producerVersion: '1',
    graph: {
      name: `sluice_${m.algorithm}`,
      nodes: g.nodes,
      initializers: g.initializers,
      valueInfo: g.valueInfo,
      inputs: signature.inputs,
      outputs: signature.outputs,
      doc: `Sluice ${m.algorithm} (${m.task}) predicting "${m.target.name}"`,
    },
    metadata: [
      { key: 'sluice.algorithm', value: m.algorithm },
      { key: 'sluice.task', value: m.task },
      { key: 'sluice.target', value: m.target.name },
    ],
  });
}

type LinearModel = Extract<ModelJson, { algorithm: 'logistic_regression' | 'ridge' }>;
type TreeModel = Extract<ModelJson, { algorithm: 'gradient_boosting' }>;

/** Float64 [N, outputs] raw scores of a linear model: logits, or the regression value. */
function linearScores(g: GraphBuilder, m: LinearModel): string {
  const zero = g.constant('zero', { type: 'double', dims: [1], values: [0] });
  const blocks: string[] = [];
  for (const f of m.preprocessing.features) {
    if (f.type === 'numeric') {
      const x = g.toDouble(f.name);
      const mean = g.constant(`${f.name}_mean`, { type: 'double', dims: [1], values: [f.mean] });
      const inv = g.constant(`${f.name}_inv_scale`, { type: 'double', dims: [1], values: [1 / f.scale] });
      const z = g.op('Mul', [g.op('Sub', [x, mean]), inv]);
      blocks.push(g.op('Where', [g.op('IsNaN', [x]), zero, z]));
    } else if (f.categories.length > 0) {
      const onehot = g.op(
        'OneHotEncoder',
        [f.name],
        [
          { name: 'cats_strings', type: 'strings', value: f.categories },
          { name: 'zeros', type: 'int', value: 1 },
        ],
        // ONNX's checker infers no type for OneHotEncoder: declare it (float [N, 1, C])
        { domain: ML, type: { type: 'float', shape: ['N', 1, f.categories.length] } },
      );
      const shape = g.constant(`${f.name}_shape`, {
        type: 'int64',
        dims: [2],
        values: [-1, f.categories.length],
      });
      blocks.push(g.toDouble(g.op('Reshape', [onehot, shape])));
    }
  }
  if (blocks.length === 0) {
    throw new NonRetriableError(
      'onnx_unsupported_model',
      'the linear model has no encoded feature columns (every categorical feature has no categories)',
    );
  }
  const X =
    blocks.length === 1 ? blocks[0]! : g.op('Concat', blocks, [{ name: 'axis', type: 'int', value: 1 }]);
  let weights: number[][];
  let intercepts: number[];
  if (m.algorithm === 'ridge') {
    weights = [m.params.coefficients];
    intercepts = [m.params.intercept];
  } else {
    weights = m.params.coefficients;
    intercepts = m.params.intercepts;
  }
  const p = weights[0]!.length;
  const outputs = weights.length;
  // W is [p, outputs]: column k holds the coefficients of output k.
  const W = new Float64Array(p * outputs);
  weights.forEach((row, k) => row.forEach((c, j) => (W[j * outputs + k] = c)));
  const product = g.op('MatMul', [
    X,
    g.constant('coefficients', { type: 'double', dims: [p, outputs], values: W }),
  ]);
  return g.op('Add', [
    product,
    g.constant('intercepts', { type: 'double', dims: [outputs], values: intercepts }),
  ]);
}

/**
 * The threshold a split gets when the graph's inputs are float32. The graph compares fround(v),
 * so every value rounding to the same float32 c = fround(t) takes one branch; values in other
 * float32 cells keep theirs (fround is monotone). That cell goes the way of the value a data file
 * would hold in it, its shortest decimal (49.9, 1.07): left (threshold c) when that decimal is
 * <= t, else right (threshold: the float32 just below c). Since float32 keeps 6 significant
 * digits, numbers written with 6 or fewer take exactly the TS predict's branches.
 */
export function float32Threshold(t: number): number {
  const c = Math.fround(t);
  if (!Number.isFinite(c)) return c;
  let shortest = c;
  for (let digits = 1; digits <= 9; digits++) {
    const d = Number(c.toPrecision(digits));
    if (Math.fround(d) === c) {
      shortest = d;
      break;
    }
  }
  return shortest <= t ? c : float32Below(c);
}

/** The largest float32 below a finite float32 value. */
function float32Below(c: number): number {
  if (c === 0) return -(2 ** -149);
  const bits = new Int32Array(new Float32Array([c]).buffer);
  bits[0]! += c > 0 ? -1 : 1;
  return new Float32Array(bits.buffer)[0]!;
}

/** Float64 [N, outputs] raw scores of the tree ensemble (base score plus the trees' leaves). */
function treeScores(g: GraphBuilder, m: TreeModel, numeric: NumericInputs): string {
  const threshold = numeric === 'float' ? float32Threshold : (t: number) => t;
  const columns = m.features.map((f) => {
    if (f.type === 'numeric') return g.toDouble(f.name);
    // The category's index; '' (missing) and unseen levels map to NaN. An empty list still needs a key.
    const keys = f.categories.length > 0 ? f.categories : [''];
    const values = f.categories.length > 0 ? f.categories.map((_, i) => i) : [NaN];
    const code = g.op(
      'LabelEncoder',
      [f.name],
      [
        { name: 'keys_strings', type: 'strings', value: keys },
        { name: 'values_floats', type: 'floats', value: values },
        { name: 'default_float', type: 'float', value: NaN },
      ],
      { domain: ML },
    );
    return g.toDouble(code);
  });
  const X =
    columns.length === 1 ? columns[0]! : g.op('Concat', columns, [{ name: 'axis', type: 'int', value: 1 }]);

  const { outputs, baseScore } = m.params;
  // An ensemble stopped before its first round is its base score: one zero leaf per output keeps
  // the operator well-formed (it needs at least one tree).
  const trees =
    m.params.trees.length > 0
      ? m.params.trees
      : Array.from({ length: outputs }, () => ({
          feature: [-1],
          threshold: [0],
          missingLeft: [0],
          left: [-1],
          right: [-1],
          value: [0],
        }));
  const nodes = {
    treeIds: [] as number[],
    nodeIds: [] as number[],
    featureIds: [] as number[],
    modes: [] as string[],
    values: [] as number[],
    trueIds: [] as number[],
    falseIds: [] as number[],
    missingTrue: [] as number[],
  };
  const targets = {
    treeIds: [] as number[],
    nodeIds: [] as number[],
    ids: [] as number[],
    weights: [] as number[],
  };
  trees.forEach((t, ti) => {
    const k = ti % outputs; // trees[round * outputs + k]
    for (let j = 0; j < t.feature.length; j++) {
      const leaf = t.feature[j]! < 0;
      nodes.treeIds.push(ti);
      nodes.nodeIds.push(j);
      nodes.featureIds.push(leaf ? 0 : t.feature[j]!);
      nodes.modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      nodes.values.push(leaf ? 0 : threshold(t.threshold[j]!));
      nodes.trueIds.push(leaf ? 0 : t.left[j]!);
      nodes.falseIds.push(leaf ? 0 : t.right[j]!);
      nodes.missingTrue.push(leaf ? 0 : t.missingLeft[j]!);
      if (leaf) {
        targets.treeIds.push(ti);
        targets.nodeIds.push(j);
        targets.ids.push(k);
        targets.weights.push(t.value[j]!);
      }
    }
  });
  const scores = g.op(
    'TreeEnsembleRegressor',
    [X],
    [
      { name: 'n_targets', type: 'int', value: outputs },
      { name: 'aggregate_function', type: 'string', value: 'SUM' },
      { name: 'post_transform', type: 'string', value: 'NONE' },
      { name: 'nodes_treeids', type: 'ints', value: nodes.treeIds },
      { name: 'nodes_nodeids', type: 'ints', value: nodes.nodeIds },
      { name: 'nodes_featureids', type: 'ints', value: nodes.featureIds },
      { name: 'nodes_modes', type: 'strings', value: nodes.modes },
      {
        name: 'nodes_values_as_tensor',
        type: 'tensor',
        value: { type: 'double', dims: [nodes.values.length], values: nodes.values },
      },
      { name: 'nodes_truenodeids', type: 'ints', value: nodes.trueIds },
      { name: 'nodes_falsenodeids', type: 'ints', value: nodes.falseIds },
      { name: 'nodes_missing_value_tracks_true', type: 'ints', value: nodes.missingTrue },
      { name: 'target_treeids', type: 'ints', value: targets.treeIds },
      { name: 'target_nodeids', type: 'ints', value: targets.nodeIds },
      { name: 'target_ids', type: 'ints', value: targets.ids },
      {
        name: 'target_weights_as_tensor',
        type: 'tensor',
        value: { type: 'double', dims: [targets.weights.length], values: targets.weights },
      },
      {
        name: 'base_values_as_tensor',
        type: 'tensor',
        value: { type: 'double', dims: [outputs], values: baseScore },
      },
    ],
    { domain: ML },
  );
  return g.toDouble(scores);
}
