/**
 * Just enough of the ONNX protobuf to handle ZipMap. scikit-learn converters end a classifier with
 * an ai.onnx.ml ZipMap node whose output is a sequence of maps (class → probability), which
 * onnxruntime-node cannot return ("Non tensor type is temporarily not supported"). The tensor the
 * ZipMap reads is the [N, C] probability matrix, so we add it to the graph's outputs and fetch that
 * instead; the ZipMap's class labels give the column order.
 *
 * Field numbers from onnx.proto3: ModelProto.graph = 7; GraphProto.node = 1, output = 12;
 * NodeProto.input = 1, output = 2, op_type = 4, attribute = 5, domain = 7; AttributeProto.name = 1,
 * ints = 8, strings = 9; ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1;
 * TypeProto.Tensor.elem_type = 1 (FLOAT = 1).
 */

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

interface Field {
  no: number;
  wire: number;
  /** Start of the tag, start and end of the payload (for wire type 2: the bytes inside). */
  start: number;
  from: number;
  to: number;
  /** The value of a varint field. */
  varint?: bigint;
}

class ProtobufError extends Error {}

function readVarint(buf: Uint8Array, at: number): { value: bigint; next: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i] ?? 0;
    value |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
    shift += 7n;
  }
  throw new ProtobufError(`truncated varint at byte ${at}`);
}

/** The fields of one message, in wire order. Throws on anything that is not well-formed protobuf. */
function fields(buf: Uint8Array, from = 0, to = buf.length): Field[] {
  const out: Field[] = [];
  let at = from;
  while (at < to) {
    const start = at;
    const tag = readVarint(buf, at);
    at = tag.next;
    const no = Number(tag.value >> 3n);
    const wire = Number(tag.value & 7n);
    if (no === 0) throw new ProtobufError(`field number 0 at byte ${start}`);
    if (wire === 0) {
      const v = readVarint(buf, at);
      out.push({ no, wire, start, from: at, to: v.next, varint: v.value });
      at = v.next;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      out.push({ no, wire, start, from: at, to: at + size });
      at += size;
    } else if (wire === 2) {
      const len = readVarint(buf, at);
      const begin = len.next;
      const end = begin + Number(len.value);
      if (end > to) throw new ProtobufError(`field ${no} at byte ${start} runs past its message`);
      out.push({ no, wire, start, from: begin, to: end });
      at = end;
    } else {
      throw new ProtobufError(`unsupported wire type ${wire} at byte ${start}`);
    }
  }
  if (at !== to) throw new ProtobufError('message runs past its end');
  return out;
}

const text = (buf: Uint8Array, f: Field): string => decoder.decode(buf.subarray(f.from, f.to));

function encodeVarint(value: number): number[] {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return bytes;
}

function lengthDelimited(no: number, payload: Uint8Array): Uint8Array {
  const head = [...encodeVarint((no << 3) | 2), ...encodeVarint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A node of the main graph, with the class labels it carries (ai.onnx.ml classifiers, ZipMap). */
export interface GraphNode {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  /** `classlabels_strings` or `classlabels_int64s` (as decimal strings); empty when it has none. */
  classes: string[];
}

/** A ZipMap node: the probability tensor it reads, the sequence of maps it writes, its classes. */
export interface ZipMapNode {
  input: string;
  output: string;
  classes: string[];
}

function classLabels(buf: Uint8Array, attr: Field): string[] | undefined {
  const a = fields(buf, attr.from, attr.to);
  const name = a.find((f) => f.no === 1);
  const n = name ? text(buf, name) : '';
  if (n === 'classlabels_strings') return a.filter((f) => f.no === 9).map((f) => text(buf, f));
  // classlabels_ints (LinearClassifier, SVMClassifier) and classlabels_int64s (ZipMap, TreeEnsemble*).
  if (n !== 'classlabels_ints' && n !== 'classlabels_int64s') return undefined;
  const out: string[] = [];
  for (const f of a.filter((x) => x.no === 8)) {
    if (f.wire === 0) out.push(BigInt.asIntN(64, f.varint ?? 0n).toString());
    else if (f.wire === 2) {
      // packed repeated int64
      let at = f.from;
      while (at < f.to) {
        const v = readVarint(buf, at);
        out.push(BigInt.asIntN(64, v.value).toString());
        at = v.next;
      }
    }
  }
  return out;
}

function nodeOf(buf: Uint8Array, node: Field): GraphNode {
  const parts = fields(buf, node.from, node.to);
  const opType = parts.find((f) => f.no === 4);
  const domain = parts.find((f) => f.no === 7);
  let classes: string[] = [];
  for (const attr of parts.filter((f) => f.no === 5 && f.wire === 2))
    classes = classLabels(buf, attr) ?? classes;
  return {
    opType: opType ? text(buf, opType) : '',
    domain: domain ? text(buf, domain) : '',
    inputs: parts.filter((f) => f.no === 1).map((f) => text(buf, f)),
    outputs: parts.filter((f) => f.no === 2).map((f) => text(buf, f)),
    classes,
  };
}

/** The nodes of the model's main graph. Throws a plain Error on malformed protobuf. */
export function readNodes(model: Uint8Array): GraphNode[] {
  const graph = fields(model).find((f) => f.no === 7 && f.wire === 2);
  if (!graph) return [];
  return fields(model, graph.from, graph.to)
    .filter((f) => f.no === 1 && f.wire === 2)
    .map((node) => nodeOf(model, node));
}

/** The ai.onnx.ml ZipMap nodes among `nodes`. */
export function zipMapsOf(nodes: readonly GraphNode[]): ZipMapNode[] {
  return nodes.flatMap((n) => {
    const [input] = n.inputs;
    const [output] = n.outputs;
    if (
      n.opType !== 'ZipMap' ||
      n.domain !== 'ai.onnx.ml' ||
      n.inputs.length !== 1 ||
      n.outputs.length !== 1
    ) {
      return [];
    }
    return input !== undefined && output !== undefined ? [{ input, output, classes: n.classes }] : [];
  });
}

/** The ZipMap nodes of the model's main graph. */
export const findZipMaps = (model: Uint8Array): ZipMapNode[] => zipMapsOf(readNodes(model));

/** Ops a probability tensor may pass through unchanged in its column order (as converters emit). */
const passThrough = new Set(['Identity', 'Cast', 'Normalizer', 'CastMap']);

/**
 * The class of each column of `tensor`: the class labels of the ai.onnx.ml node that produced it
 * (LinearClassifier, TreeEnsembleClassifier, SVMClassifier, ZipMap, …), followed back through
 * Identity, Cast and Normalizer. Undefined when the graph does not say.
 */
export function classesOf(nodes: readonly GraphNode[], tensor: string): string[] | undefined {
  const producer = new Map<string, GraphNode>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  let name = tensor;
  for (let hops = 0; hops < 16; hops++) {
    const node = producer.get(name);
    if (!node) return undefined;
    if (node.domain === 'ai.onnx.ml' && node.classes.length > 0) return node.classes;
    const [next] = node.inputs;
    if (!passThrough.has(node.opType) || next === undefined) return undefined;
    name = next;
  }
  return undefined;
}

/**
 * The model with float tensors `names` added to its main graph's outputs (everything else byte for
 * byte the same), so a session can fetch an intermediate tensor such as a ZipMap's input.
 */
export function withFloatOutputs(model: Uint8Array, names: readonly string[]): Uint8Array {
  const top = fields(model);
  const graph = top.find((f) => f.no === 7 && f.wire === 2);
  if (!graph) throw new ProtobufError('the model has no graph');
  const floatTensorType = lengthDelimited(1, new Uint8Array([0x08, 0x01])); // tensor_type { elem_type: FLOAT }
  const added = names.map((name) =>
    lengthDelimited(
      12,
      concat([lengthDelimited(1, encoder.encode(name)), lengthDelimited(2, floatTensorType)]),
    ),
  );
  const newGraph = concat([model.subarray(graph.from, graph.to), ...added]);
  return concat([model.subarray(0, graph.start), lengthDelimited(7, newGraph), model.subarray(graph.to)]);
}
