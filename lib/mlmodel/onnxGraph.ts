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

/** A ZipMap node of the main graph: the probability tensor it reads, what it writes, the classes. */
export interface ZipMapNode {
  input: string;
  output: string;
  classes: string[];
}

function zipMapOf(buf: Uint8Array, node: Field): ZipMapNode | undefined {
  const parts = fields(buf, node.from, node.to);
  const opType = parts.find((f) => f.no === 4);
  const domain = parts.find((f) => f.no === 7);
  if (!opType || text(buf, opType) !== 'ZipMap' || !domain || text(buf, domain) !== 'ai.onnx.ml')
    return undefined;
  const inputs = parts.filter((f) => f.no === 1).map((f) => text(buf, f));
  const outputs = parts.filter((f) => f.no === 2).map((f) => text(buf, f));
  const classes: string[] = [];
  for (const attr of parts.filter((f) => f.no === 5)) {
    const a = fields(buf, attr.from, attr.to);
    const name = a.find((f) => f.no === 1);
    if (!name) continue;
    const n = text(buf, name);
    if (n === 'classlabels_strings') {
      for (const s of a.filter((f) => f.no === 9)) classes.push(text(buf, s));
    } else if (n === 'classlabels_int64s') {
      for (const f of a.filter((f) => f.no === 8)) {
        if (f.wire === 0) classes.push(BigInt.asIntN(64, f.varint ?? 0n).toString());
        else if (f.wire === 2) {
          // packed
          let at = f.from;
          while (at < f.to) {
            const v = readVarint(buf, at);
            classes.push(BigInt.asIntN(64, v.value).toString());
            at = v.next;
          }
        }
      }
    }
  }
  const [input] = inputs;
  const [output] = outputs;
  if (inputs.length !== 1 || outputs.length !== 1 || input === undefined || output === undefined)
    return undefined;
  return { input, output, classes };
}

/** The ZipMap nodes of the model's main graph. Throws a plain Error on malformed protobuf. */
export function findZipMaps(model: Uint8Array): ZipMapNode[] {
  const graph = fields(model).find((f) => f.no === 7 && f.wire === 2);
  if (!graph) return [];
  return fields(model, graph.from, graph.to)
    .filter((f) => f.no === 1 && f.wire === 2)
    .map((node) => zipMapOf(model, node))
    .filter((z): z is ZipMapNode => z !== undefined);
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
