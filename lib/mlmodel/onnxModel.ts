import { InferenceSession, Tensor } from 'onnxruntime-node';
import { NonRetriableError, ValidationError } from '../errors';
import type { GraphNode } from './onnxGraph';
import { classesOf, findExternalData, readNodes, withFloatOutputs, zipMapsOf } from './onnxGraph';

/** A feature the model takes, in the order of the job's SLUICE_FEATURES. */
export interface FeatureSpec {
  name: string;
  kind: 'number' | 'string';
}

export type ModelTask = 'classification' | 'regression';

/** What one scoring call returns: labels and probabilities for a classifier, values for a regressor. */
export interface Scores {
  labels?: string[];
  /** One row per input row, one column per class. */
  probabilities?: number[][];
  /** The class of each probability column, when the model says (a ZipMap's labels). */
  classes?: string[];
  values?: number[];
}

type FloatType = 'float32' | 'float64';

/** How Sluice feeds and reads one ONNX model, worked out from its inputs and outputs. */
export interface OnnxInterface {
  layout: 'per-feature' | 'tensor';
  /** per-feature: one input per feature, in feature order; tensor: the one input. */
  inputs: { name: string; type: FloatType | 'string'; dims: 1 | 2 }[];
  label?: string;
  probabilities?: string;
  /** The ZipMap whose input tensor is fetched as `probabilities` (the model is rewritten to expose it). */
  zipMapped?: boolean;
  /** The class of each probability column, when the graph names them (the classifier node, a ZipMap). */
  classes?: string[];
  value?: string;
}

const isDynamic = (d: unknown): boolean => typeof d === 'string' || d === -1 || d === undefined;

function show(m: InferenceSession.ValueMetadata): string {
  if (!m.isTensor) return `${m.name} (not a tensor)`;
  const shape =
    m.shape.length === 0
      ? '?'
      : `[${m.shape.map((d) => (typeof d === 'string' ? d : String(d))).join(', ')}]`;
  return `${m.name} ${m.type} ${shape}`;
}

const floatTypes = new Set(['float32', 'float64']);

/**
 * Matches the model's inputs to the features: either one input per feature, named after it (float
 * for numbers, string for strings; shape [N, 1] or [N]), or one float tensor [N, width] taking the
 * features in order. Anything else → `onnx_inputs_mismatch` naming the missing, extra and mistyped inputs.
 */
export function matchInputs(
  metadata: readonly InferenceSession.ValueMetadata[],
  features: readonly FeatureSpec[],
): Pick<OnnxInterface, 'layout' | 'inputs'> {
  const mismatch = (detail: string): NonRetriableError =>
    new NonRetriableError(
      'onnx_inputs_mismatch',
      `the ONNX inputs do not match the features (${features.map((f) => f.name).join(', ')}): ${detail}`,
    );
  const names = new Set(features.map((f) => f.name));
  const m = metadata.length === 1 ? metadata[0] : undefined;
  if (m && !names.has(m.name)) {
    const problems: string[] = [];
    if (!m.isTensor || !floatTypes.has(m.type)) problems.push(`its type is not float`);
    const shape = m.isTensor ? m.shape : [];
    if (m.isTensor && shape.length !== 2) problems.push(`it is not two-dimensional [N, ${features.length}]`);
    else if (m.isTensor && typeof shape[1] === 'number' && shape[1] !== -1 && shape[1] !== features.length) {
      problems.push(`its width is ${shape[1]}, not the ${features.length} features`);
    }
    if (m.isTensor && shape.length >= 1 && !isDynamic(shape[0])) {
      problems.push(
        `its batch dimension is fixed at ${String(shape[0])} (export it dynamic, e.g. torch.onnx dynamic_axes)`,
      );
    }
    const strings = features.filter((f) => f.kind === 'string').map((f) => f.name);
    if (strings.length > 0)
      problems.push(`string features (${strings.join(', ')}) cannot go in a float tensor`);
    if (problems.length > 0) {
      throw mismatch(
        `one input ${show(m)}, named after no feature, is read as a feature tensor, but ${problems.join('; ')}`,
      );
    }
    return {
      layout: 'tensor',
      inputs: [{ name: m.name, type: m.isTensor ? (m.type as FloatType) : 'float32', dims: 2 }],
    };
  }
  const byName = new Map(metadata.map((m) => [m.name, m]));
  const missing = features.filter((f) => !byName.has(f.name)).map((f) => f.name);
  const extra = metadata.filter((m) => !names.has(m.name)).map(show);
  const wrong: string[] = [];
  const inputs: OnnxInterface['inputs'] = [];
  for (const f of features) {
    const meta = byName.get(f.name);
    if (!meta) continue;
    const want = f.kind === 'number' ? 'float' : 'string';
    if (!meta.isTensor) {
      wrong.push(`${show(meta)} (feature ${f.name} needs ${want} [N, 1] or [N])`);
      continue;
    }
    const typeOk = f.kind === 'number' ? floatTypes.has(meta.type) : meta.type === 'string';
    const shape = meta.shape;
    const shapeOk =
      (shape.length === 1 || (shape.length === 2 && (shape[1] === 1 || isDynamic(shape[1])))) &&
      isDynamic(shape[0]);
    if (!typeOk || !shapeOk) wrong.push(`${show(meta)} (feature ${f.name} needs ${want} [N, 1] or [N])`);
    else
      inputs.push({ name: meta.name, type: meta.type as FloatType | 'string', dims: shape.length as 1 | 2 });
  }
  if (missing.length || extra.length || wrong.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing inputs ${missing.join(', ')}`);
    if (extra.length) parts.push(`extra inputs ${extra.join(', ')}`);
    if (wrong.length) parts.push(`wrong type or shape: ${wrong.join('; ')}`);
    throw mismatch(parts.join('; '));
  }
  return { layout: 'per-feature', inputs };
}

/**
 * Finds the outputs the task needs: a classifier's label output (a string or integer tensor [N] or
 * [N, 1]) and probabilities output (a float tensor [N, C], or the ZipMap sequence of maps converters
 * emit); a regressor's one value per row (a float tensor [N] or [N, 1]). Else `onnx_outputs_mismatch`.
 */
export function matchOutputs(
  metadata: readonly InferenceSession.ValueMetadata[],
  task: ModelTask,
  nodes: readonly GraphNode[],
  classes?: readonly string[],
): Pick<OnnxInterface, 'label' | 'probabilities' | 'zipMapped' | 'classes' | 'value'> {
  const zipMaps = zipMapsOf(nodes);
  const found = metadata.map(show).join(', ') || 'none';
  const mismatch = (detail: string): NonRetriableError =>
    new NonRetriableError(
      'onnx_outputs_mismatch',
      `the ONNX outputs do not fit a ${task} model: ${detail} (found: ${found})`,
    );
  const perRow = (shape: readonly (number | string)[]): boolean =>
    shape.length === 0 ||
    (isDynamic(shape[0]) &&
      (shape.length === 1 || (shape.length === 2 && (shape[1] === 1 || isDynamic(shape[1])))));
  if (task === 'regression') {
    const floats = metadata.filter((m) => m.isTensor && floatTypes.has(m.type));
    if (floats.length === 0) throw mismatch('no float output');
    const v = floats[0] as InferenceSession.TensorValueMetadata;
    if (!perRow(v.shape)) throw mismatch(`${show(v)} is not one value per row ([N] or [N, 1])`);
    return { value: v.name };
  }
  const label = metadata.find(
    (m) => m.isTensor && ['string', 'int64', 'int32'].includes(m.type) && perRow(m.shape),
  );
  let probabilities: string | undefined;
  let zipMapped = false;
  let width: number | undefined;
  const tensorProbs = metadata.find(
    (m) => m.isTensor && floatTypes.has(m.type) && (m.shape.length === 2 || m.shape.length === 0),
  ) as InferenceSession.TensorValueMetadata | undefined;
  if (tensorProbs) {
    probabilities = tensorProbs.name;
    if (typeof tensorProbs.shape[1] === 'number' && tensorProbs.shape[1] > 0) width = tensorProbs.shape[1];
  } else {
    const seq = metadata.find((m) => !m.isTensor && zipMaps.some((z) => z.output === m.name));
    const z = seq && zipMaps.find((zm) => zm.output === seq.name);
    if (z) {
      probabilities = z.input;
      zipMapped = true;
    }
  }
  const modelClasses =
    (zipMapped ? zipMaps.find((z) => z.input === probabilities)?.classes : undefined) ??
    (probabilities ? classesOf(nodes, probabilities) : undefined);
  const graphClasses = modelClasses && modelClasses.length > 0 ? modelClasses : undefined;
  if (width === undefined && graphClasses) width = graphClasses.length;
  const lacking: string[] = [];
  if (!label) lacking.push('no label output (a string or integer tensor [N])');
  if (!probabilities) lacking.push('no probabilities output (a float tensor [N, C] or a ZipMap)');
  if (lacking.length) throw mismatch(lacking.join('; '));
  if (classes && width !== undefined && width !== classes.length) {
    throw mismatch(
      `the probabilities have ${width} columns, but the contract names ${classes.length} classes`,
    );
  }
  if (classes && graphClasses && graphClasses.some((c) => !classes.includes(c))) {
    throw mismatch(
      `the model's classes (${graphClasses.join(', ')}) are not the contract's (${classes.join(', ')})`,
    );
  }
  return { label: label!.name, probabilities, zipMapped, classes: graphClasses };
}

function toNumber(value: unknown, row: number, feature: string): number {
  if (value === null) return NaN;
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  throw new ValidationError(
    'row_invalid',
    `row ${row}: feature ${feature} must be a number, got ${JSON.stringify(value)}`,
    {
      field: `rows[${row}].${feature}`,
    },
  );
}

function toText(value: unknown, row: number, feature: string): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ValidationError(
    'row_invalid',
    `row ${row}: feature ${feature} must be a string, got ${JSON.stringify(value)}`,
    {
      field: `rows[${row}].${feature}`,
    },
  );
}

function valueOf(row: Record<string, unknown>, index: number, feature: string): unknown {
  if (typeof row !== 'object' || row === null || !Object.prototype.hasOwnProperty.call(row, feature)) {
    throw new ValidationError('row_invalid', `row ${index} has no value for feature ${feature}`, {
      field: `rows[${index}].${feature}`,
    });
  }
  return row[feature];
}

/**
 * One feature's values for every row, in column form: numbers (NaN = missing) for a `number`
 * feature, strings ('' = missing) for a `string` one. Scoring a dataset this way skips building
 * one object per row.
 */
export type FeatureColumn = Float64Array | readonly string[];

export interface OnnxModelOptions {
  features: readonly FeatureSpec[];
  task: ModelTask;
  classes?: readonly string[];
  /** Rows per session run (default 8192). */
  batchSize?: number;
  sessionOptions?: InferenceSession.SessionOptions;
}

/**
 * Refuses, before onnxruntime sees it, a model with a tensor stored outside it
 * (`onnx_external_data`): onnxruntime would read that file relative to the app's working directory
 * and hand its bytes to the user's graph. Malformed protobuf is `onnx_invalid`.
 */
function refuseExternalData(bytes: Uint8Array): void {
  let found;
  try {
    found = findExternalData(bytes);
  } catch (err) {
    throw new NonRetriableError(
      'onnx_invalid',
      `the ONNX model cannot be loaded: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (found) {
    throw new NonRetriableError(
      'onnx_external_data',
      `tensor ${JSON.stringify(found.name)} (${found.where}) keeps its data outside the model${
        found.location !== undefined ? ` (location ${JSON.stringify(found.location)})` : ''
      }; Sluice only loads self-contained ONNX models: save it without external data`,
    );
  }
}

/**
 * One loaded ONNX model: its session and how to feed and read it. `release()` frees the native
 * session once the runs in flight have finished.
 */
export class OnnxModel {
  private active = 0;
  private closing = false;
  private closed?: Promise<void>;

  private constructor(
    private readonly session: InferenceSession,
    readonly io: OnnxInterface,
    private readonly features: readonly FeatureSpec[],
    private readonly batchSize: number,
  ) {}

  /**
   * Loads the model's bytes and matches it to the features and task: `onnx_external_data` when a
   * tensor lives outside the model, `onnx_invalid` when onnxruntime cannot load it, `onnx_inputs_mismatch` / `onnx_outputs_mismatch` when it does not fit.
   */
  static async load(bytes: Uint8Array, options: OnnxModelOptions): Promise<OnnxModel> {
    // A failing run is reported as onnx_run_failed with onnxruntime's message; its own native log
    // line (to stderr, outside the app's logging) is left off unless the caller asks for it.
    const sessionOptions: InferenceSession.SessionOptions = {
      logSeverityLevel: 4,
      ...options.sessionOptions,
    };
    refuseExternalData(bytes);
    let session: InferenceSession;
    try {
      session = await InferenceSession.create(bytes, sessionOptions);
    } catch (err) {
      throw new NonRetriableError(
        'onnx_invalid',
        `the ONNX model cannot be loaded: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    let nodes: GraphNode[] = [];
    try {
      nodes = readNodes(bytes);
    } catch {
      // onnxruntime read it, so it is protobuf; a construct this small reader does not know just
      // means no ZipMap or class labels are recognised (a ZipMap output then fails the output check).
    }
    let io: OnnxInterface;
    try {
      io = {
        ...matchInputs(session.inputMetadata, options.features),
        ...matchOutputs(session.outputMetadata, options.task, nodes, options.classes),
      };
      if (io.zipMapped && io.probabilities) {
        // onnxruntime-node cannot return a sequence of maps: load the model again with the ZipMap's
        // input tensor as an output too, and fetch that.
        const exposed = await InferenceSession.create(
          withFloatOutputs(bytes, [io.probabilities]),
          sessionOptions,
        );
        await session.release();
        session = exposed;
      }
    } catch (err) {
      await session.release();
      throw err;
    }
    return new OnnxModel(session, io, options.features, options.batchSize ?? 8192);
  }

  /** False once `release()` was called: the model takes no new runs. */
  get usable(): boolean {
    return !this.closing;
  }

  /** Scores rows (objects keyed by feature name), batch by batch. Rows missing a feature → `row_invalid`. */
  async score(rows: readonly Record<string, unknown>[]): Promise<Scores> {
    if (this.closing) throw new Error('this ONNX model was released');
    this.active++;
    try {
      const out: Scores = {};
      if (this.io.label) out.labels = [];
      if (this.io.probabilities) out.probabilities = [];
      if (this.io.classes) out.classes = [...this.io.classes];
      if (this.io.value) out.values = [];
      for (let start = 0; start < rows.length; start += this.batchSize) {
        await this.run(rows.slice(start, start + this.batchSize), start, out);
      }
      return out;
    } finally {
      this.active--;
      if (this.closing && this.active === 0) void this.release();
    }
  }

  /**
   * Scores `n` rows given as one column per feature, in the features' order (see {@link FeatureColumn}),
   * batch by batch. A number feature needs a Float64Array, a string feature strings.
   */
  async scoreColumns(columns: readonly FeatureColumn[], n: number): Promise<Scores> {
    if (this.closing) throw new Error('this ONNX model was released');
    if (columns.length !== this.features.length || columns.some((c) => c.length !== n)) {
      throw new ValidationError(
        'row_invalid',
        `expected ${this.features.length} columns of ${n} values, one per feature (${this.features.map((f) => f.name).join(', ')})`,
      );
    }
    this.active++;
    try {
      const out: Scores = {};
      if (this.io.label) out.labels = [];
      if (this.io.probabilities) out.probabilities = [];
      if (this.io.classes) out.classes = [...this.io.classes];
      if (this.io.value) out.values = [];
      for (let start = 0; start < n; start += this.batchSize) {
        const end = Math.min(n, start + this.batchSize);
        await this.runFeeds(this.columnFeeds(columns, start, end), end - start, start, out);
      }
      return out;
    } finally {
      this.active--;
      if (this.closing && this.active === 0) void this.release();
    }
  }

  private columnFeeds(columns: readonly FeatureColumn[], start: number, end: number): Record<string, Tensor> {
    const n = end - start;
    const numbers = (j: number): Float64Array => {
      const c = columns[j]!;
      if (!(c instanceof Float64Array)) {
        throw new ValidationError(
          'row_invalid',
          `feature ${this.features[j]!.name} needs numbers, got strings`,
        );
      }
      return c.subarray(start, end);
    };
    const feeds: Record<string, Tensor> = {};
    const [first] = this.io.inputs;
    if (this.io.layout === 'tensor' && first && first.type !== 'string') {
      const width = this.features.length;
      const data = first.type === 'float64' ? new Float64Array(n * width) : new Float32Array(n * width);
      for (let j = 0; j < width; j++) {
        const col = numbers(j);
        for (let i = 0; i < n; i++) data[i * width + j] = col[i]!;
      }
      feeds[first.name] = new Tensor(first.type, data, [n, width]);
      return feeds;
    }
    this.io.inputs.forEach((input, j) => {
      const dims = input.dims === 2 ? [n, 1] : [n];
      if (input.type === 'string') {
        const c = columns[j]!;
        if (c instanceof Float64Array) {
          throw new ValidationError(
            'row_invalid',
            `feature ${this.features[j]!.name} needs strings, got numbers`,
          );
        }
        feeds[input.name] = new Tensor('string', c.slice(start, end), dims);
      } else {
        const col = numbers(j);
        feeds[input.name] = new Tensor(
          input.type,
          input.type === 'float64' ? Float64Array.from(col) : Float32Array.from(col),
          dims,
        );
      }
    });
    return feeds;
  }

  private feeds(rows: readonly Record<string, unknown>[], offset: number): Record<string, Tensor> {
    const n = rows.length;
    const feeds: Record<string, Tensor> = {};
    const [first] = this.io.inputs;
    if (this.io.layout === 'tensor' && first && first.type !== 'string') {
      const width = this.features.length;
      const data = first.type === 'float64' ? new Float64Array(n * width) : new Float32Array(n * width);
      rows.forEach((row, i) => {
        this.features.forEach((f, j) => {
          data[i * width + j] = toNumber(valueOf(row, offset + i, f.name), offset + i, f.name);
        });
      });
      feeds[first.name] = new Tensor(first.type, data, [n, width]);
      return feeds;
    }
    this.io.inputs.forEach((input, j) => {
      const f = this.features[j]?.name ?? input.name;
      const dims = input.dims === 2 ? [n, 1] : [n];
      if (input.type === 'string') {
        const data = rows.map((r, i) => toText(valueOf(r, offset + i, f), offset + i, f));
        feeds[input.name] = new Tensor('string', data, dims);
      } else {
        const data = input.type === 'float64' ? new Float64Array(n) : new Float32Array(n);
        rows.forEach((r, i) => {
          data[i] = toNumber(valueOf(r, offset + i, f), offset + i, f);
        });
        feeds[input.name] = new Tensor(input.type, data, dims);
      }
    });
    return feeds;
  }

  private async run(rows: readonly Record<string, unknown>[], offset: number, out: Scores): Promise<void> {
    if (rows.length === 0) return;
    await this.runFeeds(this.feeds(rows, offset), rows.length, offset, out);
  }

  private async runFeeds(
    feeds: Record<string, Tensor>,
    n: number,
    offset: number,
    out: Scores,
  ): Promise<void> {
    if (n === 0) return;
    const fetches = [this.io.label, this.io.probabilities, this.io.value].filter((x): x is string => !!x);
    let result: InferenceSession.ReturnType;
    try {
      result = await this.session.run(feeds, fetches);
    } catch (err) {
      throw new NonRetriableError(
        'onnx_run_failed',
        `the ONNX model failed on rows ${offset}–${offset + n - 1}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const output = (name: string, want: string, fits: (dims: readonly number[]) => boolean): Tensor => {
      const t = result[name];
      if (!t || !fits(t.dims)) {
        throw new NonRetriableError(
          'onnx_outputs_mismatch',
          `the ONNX output ${name} has shape [${t?.dims.join(', ') ?? ''}] for ${n} rows, expected ${want}`,
        );
      }
      return t;
    };
    const perRow = (dims: readonly number[]): boolean =>
      dims[0] === n && (dims.length === 1 || (dims.length === 2 && dims[1] === 1));
    if (this.io.label && out.labels) {
      const data = output(this.io.label, `${n} labels`, perRow).data as ArrayLike<unknown>;
      for (let i = 0; i < n; i++) out.labels.push(String(data[i]));
    }
    if (this.io.probabilities && out.probabilities) {
      const t = output(
        this.io.probabilities,
        `[${n}, classes]`,
        (d) => d.length === 2 && d[0] === n && (d[1] ?? 0) >= 1,
      );
      const width = t.dims[1] ?? 1;
      const data = t.data as ArrayLike<number>;
      for (let i = 0; i < n; i++) {
        const row = new Array<number>(width);
        for (let j = 0; j < width; j++) row[j] = Number(data[i * width + j]);
        out.probabilities.push(row);
      }
    }
    if (this.io.value && out.values) {
      const data = output(this.io.value, `one value per row ([${n}] or [${n}, 1])`, perRow)
        .data as ArrayLike<number>;
      for (let i = 0; i < n; i++) out.values.push(Number(data[i]));
    }
  }

  /** Frees the native session after the runs in flight; later `score` calls fail. Idempotent. */
  release(): Promise<void> {
    this.closing = true;
    if (this.active > 0) return Promise.resolve();
    this.closed ??= this.session.release();
    return this.closed;
  }
}
