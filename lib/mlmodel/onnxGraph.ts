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

/**
 * Tensors whose data lives outside the model. A TensorProto may say `data_location = EXTERNAL`
 * (field 14) and name a file in `external_data` (field 13, key "location"); onnxruntime, loading a
 * model from bytes, resolves that file against the process's working directory, so a user's model
 * could read the app's own files back out through its predictions. Sluice only accepts
 * self-contained models: this walk finds every tensor onnxruntime may load and reports the first that
 * is not.
 *
 * Field numbers from onnx.proto: ModelProto.graph = 7, training_info = 20, functions = 25;
 * TrainingInfoProto.initialization = 1, algorithm = 2; FunctionProto.node = 7, attribute_proto = 11;
 * GraphProto.node = 1, initializer = 5, sparse_initializer = 15; NodeProto.attribute = 5;
 * AttributeProto.t = 5, g = 6, tensors = 10, graphs = 11, sparse_tensor = 22, sparse_tensors = 23;
 * SparseTensorProto.values = 1, indices = 2; TensorProto.name = 8, external_data = 13,
 * data_location = 14 (DEFAULT = 0, EXTERNAL = 1); StringStringEntryProto.key = 1, value = 2.
 */
export interface ExternalTensor {
  /** The tensor's name ('' when it has none). */
  name: string;
  /** Where it sits, e.g. `initializer of graph "main"`. */
  where: string;
  /** The `location` it names, when it names one. */
  location?: string;
}

/** How deep graphs may nest (If/Loop/Scan bodies); protobuf's own parsers stop at 100 messages. */
const MAX_GRAPH_DEPTH = 32;

/**
 * The first tensor of the model (graphs, subgraphs, Constant and other tensor attributes, sparse
 * tensors, training graphs, model-local functions) that keeps its data outside the model, or
 * undefined. Throws ProtobufError on malformed protobuf or graphs nested deeper than 32.
 */
export function findExternalData(model: Uint8Array): ExternalTensor | undefined {
  const lossyText = (f: Field): string => new TextDecoder('utf-8').decode(model.subarray(f.from, f.to));
  const messages = (fields: Field[], no: number): Field[] =>
    fields.filter((f) => f.no === no && f.wire === 2);

  function tensor(t: Field, where: string): ExternalTensor | undefined {
    const fields = readFields(model, t.from, t.to);
    const external =
      fields.some((f) => f.no === 13) || fields.some((f) => f.no === 14 && (f.wire !== 0 || f.varint !== 0n));
    if (!external) return undefined;
    const name = fields.filter((f) => f.no === 8 && f.wire === 2).pop();
    const found: ExternalTensor = { name: name ? lossyText(name) : '', where };
    for (const entry of messages(fields, 13)) {
      try {
        const kv = readFields(model, entry.from, entry.to);
        const key = kv.find((f) => f.no === 1 && f.wire === 2);
        const value = kv.find((f) => f.no === 2 && f.wire === 2);
        if (key && value && lossyText(key) === 'location') found.location = lossyText(value);
      } catch {
        // the tensor is refused anyway; its location is only for the message
      }
    }
    return found;
  }

  function sparse(s: Field, where: string): ExternalTensor | undefined {
    const fields = readFields(model, s.from, s.to);
    for (const part of [...messages(fields, 1), ...messages(fields, 2)]) {
      const found = tensor(part, `sparse ${where}`);
      if (found) return found;
    }
    return undefined;
  }

  function attribute(a: Field, node: string, depth: number): ExternalTensor | undefined {
    const fields = readFields(model, a.from, a.to);
    const nameField = fields.find((f) => f.no === 1 && f.wire === 2);
    const where = `attribute ${JSON.stringify(nameField ? lossyText(nameField) : '')} of ${node}`;
    for (const f of fields) {
      if (f.wire !== 2) continue;
      let found: ExternalTensor | undefined;
      if (f.no === 5 || f.no === 10) found = tensor(f, where);
      else if (f.no === 22 || f.no === 23) found = sparse(f, where);
      else if (f.no === 6 || f.no === 11) found = graph(f, depth + 1, `subgraph in ${where}`);
      if (found) return found;
    }
    return undefined;
  }

  function nodes(list: Field[], within: string, depth: number): ExternalTensor | undefined {
    for (const n of list) {
      const fields = readFields(model, n.from, n.to);
      const op = fields.find((f) => f.no === 4 && f.wire === 2);
      const name = fields.find((f) => f.no === 3 && f.wire === 2);
      const label = `node ${name ? JSON.stringify(lossyText(name)) + ' ' : ''}(${
        op ? lossyText(op) : '?'
      }) of ${within}`;
      for (const a of messages(fields, 5)) {
        const found = attribute(a, label, depth);
        if (found) return found;
      }
    }
    return undefined;
  }

  function graph(g: Field, depth: number, context: string): ExternalTensor | undefined {
    if (depth > MAX_GRAPH_DEPTH) throw new ProtobufError(`graphs nest deeper than ${MAX_GRAPH_DEPTH}`);
    const fields = readFields(model, g.from, g.to);
    const nameField = fields.find((f) => f.no === 2 && f.wire === 2);
    const self = `graph ${JSON.stringify(nameField ? lossyText(nameField) : '')}${
      depth > 0 ? ` (${context})` : ''
    }`;
    for (const t of messages(fields, 5)) {
      const found = tensor(t, `initializer of ${self}`);
      if (found) return found;
    }
    for (const s of messages(fields, 15)) {
      const found = sparse(s, `initializer of ${self}`);
      if (found) return found;
    }
    return nodes(messages(fields, 1), self, depth);
  }

  const top = readFields(model);
  for (const g of messages(top, 7)) {
    const found = graph(g, 0, '');
    if (found) return found;
  }
  for (const info of messages(top, 20)) {
    const parts = readFields(model, info.from, info.to);
    for (const g of [...messages(parts, 1), ...messages(parts, 2)]) {
      const found = graph(g, 1, 'training_info');
      if (found) return found;
    }
  }
  for (const fn of messages(top, 25)) {
    const parts = readFields(model, fn.from, fn.to);
    const nameField = parts.find((f) => f.no === 1 && f.wire === 2);
    const within = `function ${JSON.stringify(nameField ? lossyText(nameField) : '')}`;
    for (const a of messages(parts, 11)) {
      const found = attribute(a, within, 1);
      if (found) return found;
    }
    const found = nodes(messages(parts, 7), within, 1);
    if (found) return found;
  }
  return undefined;
}
