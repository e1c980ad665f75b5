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

import { ProtoWriter, ProtobufError, readFields, readVarint, type Field } from '../onnx/wire';

const decoder = new TextDecoder('utf-8', { fatal: true });

const text = (buf: Uint8Array, f: Field): string => decoder.decode(buf.subarray(f.from, f.to));

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
  const a = readFields(buf, attr.from, attr.to);
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
  const parts = readFields(buf, node.from, node.to);
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
  const graph = readFields(model).find((f) => f.no === 7 && f.wire === 2);
  if (!graph) return [];
  return readFields(model, graph.from, graph.to)
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
  const top = readFields(model);
  const graph = top.find((f) => f.no === 7 && f.wire === 2);
  if (!graph) throw new ProtobufError('the model has no graph');
  const out = new ProtoWriter();
  const newGraph = new ProtoWriter();
  newGraph.raw(model.subarray(graph.from, graph.to));
  for (const name of names) {
    // ValueInfoProto { name, type: TypeProto { tensor_type: { elem_type: FLOAT } } }
    newGraph.message(12, (v) => v.string(1, name).message(2, (t) => t.message(1, (tt) => tt.int(1, 1))));
  }
  out.raw(model.subarray(0, graph.start));
  out.bytes(7, newGraph.finish());
  out.raw(model.subarray(graph.to));
  return out.finish();
}
