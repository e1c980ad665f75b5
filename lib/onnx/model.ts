/**
 * The subset of ONNX's ModelProto (onnx/onnx.proto3) that Sluice writes: a graph of nodes with
 * attributes (numbers, strings, lists, tensors), initializers, typed inputs and outputs with
 * symbolic or fixed shapes, opset imports (ai.onnx and ai.onnx.ml), IR version and metadata.
 * Field numbers and enum values are the ones of onnx.proto. Pure: values in, bytes out.
 */
import { ProtoWriter } from './wire';

/** TensorProto.DataType values. */
export const ELEM_TYPE = {
  float: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  double: 11,
} as const;
export type ElemType = keyof typeof ELEM_TYPE;

/** A tensor constant: an initializer or a tensor attribute. Numbers are stored little-endian in raw_data. */
export type Tensor =
  | {
      name?: string;
      type: 'float' | 'double' | 'int64' | 'int32' | 'uint8';
      dims: number[];
      values: ArrayLike<number>;
    }
  | { name?: string; type: 'string'; dims: number[]; values: readonly string[] };

export type Attribute =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'tensor'; value: Tensor }
  | { name: string; type: 'floats'; value: readonly number[] }
  | { name: string; type: 'ints'; value: readonly number[] }
  | { name: string; type: 'strings'; value: readonly string[] };

/** AttributeProto.AttributeType values. */
const ATTRIBUTE_TYPE: Record<Attribute['type'], number> = {
  float: 1,
  int: 2,
  string: 3,
  tensor: 4,
  floats: 6,
  ints: 7,
  strings: 8,
};

export interface Node {
  opType: string;
  /** '' (or absent) for the default ai.onnx domain. */
  domain?: string;
  name?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: readonly Attribute[];
}

/** A graph input or output: a tensor of one element type; a dimension is a size or a symbolic name. */
export interface ValueInfo {
  name: string;
  type: ElemType;
  shape: readonly (number | string)[];
  doc?: string;
}

export interface Graph {
  name: string;
  nodes: readonly Node[];
  initializers: readonly Tensor[];
  inputs: readonly ValueInfo[];
  outputs: readonly ValueInfo[];
  /** Types of intermediate values, for operators whose output type checkers cannot infer. */
  valueInfo?: readonly ValueInfo[];
  doc?: string;
}

export interface Model {
  irVersion: number;
  opsetImports: readonly { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graph: Graph;
  doc?: string;
  /** metadata_props, in key order as given. */
  metadata?: readonly { key: string; value: string }[];
}

function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function rawBytes(t: Exclude<Tensor, { type: 'string' }>): Uint8Array {
  const n = t.values.length;
  const size = { float: 4, double: 8, int64: 8, int32: 4, uint8: 1 }[t.type];
  const out = new Uint8Array(n * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = t.values[i]!;
    switch (t.type) {
      case 'float':
        view.setFloat32(i * 4, v, true);
        break;
      case 'double':
        view.setFloat64(i * 8, v, true);
        break;
      case 'int64':
        if (!Number.isSafeInteger(v)) throw new RangeError(`tensor ${t.name ?? ''}: ${v} is not an integer`);
        view.setBigInt64(i * 8, BigInt(v), true);
        break;
      case 'int32':
        if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31)
          throw new RangeError(`tensor ${t.name ?? ''}: ${v} is not an int32`);
        view.setInt32(i * 4, v, true);
        break;
      case 'uint8':
        if (!Number.isInteger(v) || v < 0 || v > 255)
          throw new RangeError(`tensor ${t.name ?? ''}: ${v} is not a uint8`);
        view.setUint8(i, v);
        break;
    }
  }
  return out;
}

function writeTensor(w: ProtoWriter, t: Tensor): void {
  if (elementCount(t.dims) !== t.values.length) {
    throw new RangeError(
      `tensor ${t.name ?? ''} has ${t.values.length} values for dims [${t.dims.join(', ')}]`,
    );
  }
  w.packedInts(1, t.dims); // dims
  w.int(2, ELEM_TYPE[t.type]); // data_type
  if (t.type === 'string') {
    for (const s of t.values) w.string(6, s); // string_data
  } else {
    w.bytes(9, rawBytes(t)); // raw_data
  }
  if (t.name !== undefined) w.string(8, t.name); // name
}

function writeAttribute(w: ProtoWriter, a: Attribute): void {
  w.string(1, a.name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, (m) => writeTensor(m, a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
    case 'strings':
      for (const s of a.value) w.string(9, s);
      break;
  }
  w.int(20, ATTRIBUTE_TYPE[a.type]); // type
}

function writeNode(w: ProtoWriter, n: Node): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name !== undefined) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes ?? []) w.message(5, (m) => writeAttribute(m, a));
  if (n.domain) w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  // TypeProto.tensor_type { elem_type, shape { dim { dim_value | dim_param } } }
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ELEM_TYPE[v.type]);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => {
            if (typeof d === 'number') dim.int(1, d);
            else dim.string(2, d);
          });
        }
      });
    }),
  );
  if (v.doc !== undefined) w.string(3, v.doc);
}

function writeGraph(w: ProtoWriter, g: Graph): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  if (g.doc !== undefined) w.string(10, g.doc);
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
  for (const v of g.valueInfo ?? []) w.message(13, (m) => writeValueInfo(m, v));
}

/** The ModelProto bytes of a model (what an `.onnx` file holds). */
export function encodeModel(model: Model): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, model.irVersion);
  w.string(2, model.producerName);
  w.string(3, model.producerVersion);
  if (model.doc !== undefined) w.string(6, model.doc);
  w.message(7, (g) => writeGraph(g, model.graph));
  for (const o of model.opsetImports) {
    w.message(8, (m) => {
      if (o.domain) m.string(1, o.domain);
      m.int(2, o.version);
    });
  }
  for (const { key, value } of model.metadata ?? []) {
    w.message(14, (m) => m.string(1, key).string(2, value));
  }
  return w.finish();
}
