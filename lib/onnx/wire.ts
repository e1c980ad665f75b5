/**
 * Protocol Buffers wire encoding, the part an ONNX writer needs: varints (int32/int64/enum, negative
 * ones as ten-byte two's complement), 32-bit floats, length-delimited bytes, strings and nested
 * messages, and packed repeated numbers; and a reader that lists the fields of a message. Pure.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

const TWO_64 = 1n << 64n;

/** An append-only byte buffer that writes protobuf fields. */
export class ProtoWriter {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  /** Bytes that already are encoded fields, appended as they are. */
  raw(bytes: Uint8Array): this {
    this.bytesRaw(bytes);
    return this;
  }

  private bytesRaw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** A varint of a non-negative or negative integer (negative ones as int64 two's complement). */
  private varint(value: number | bigint): void {
    if (typeof value === 'number' && value >= 0) {
      // the common case (sizes, ids, enums) without BigInt
      let n = checkInteger(value);
      this.ensure(8);
      while (n >= 0x80) {
        this.buf[this.len++] = (n % 0x80) | 0x80;
        n = Math.floor(n / 0x80);
      }
      this.buf[this.len++] = n;
      return;
    }
    let v = typeof value === 'bigint' ? value : BigInt(checkInteger(value));
    if (v < 0n) v += TWO_64;
    if (v < 0n || v >= TWO_64) throw new RangeError(`integer ${String(value)} does not fit in 64 bits`);
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** An int32, int64 or enum field (written even when zero, so present values stay visible). */
  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** A `float` (32-bit) field. */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.bytesRaw(b);
    return this;
  }

  /** A `double` field. */
  double(field: number, value: number): this {
    this.tag(field, WIRE_FIXED64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.bytesRaw(b);
    return this;
  }

  /** A `bytes` field. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH);
    this.varint(value.length);
    this.bytesRaw(value);
    return this;
  }

  /** A `string` field, UTF-8. */
  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  /** An embedded message field, built by `build` on a fresh writer. */
  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  /** A packed repeated int32/int64 field (nothing is written for an empty list). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  /** A packed repeated `float` field (nothing is written for an empty list). */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  /** The bytes written so far. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function checkInteger(value: number): number {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is not a safe integer`);
  return value;
}

// Reading: just enough to find fields in an existing model (lib/mlmodel looks at a user's graph).

export interface Field {
  no: number;
  wire: number;
  /** Start of the tag, start and end of the payload (for wire type 2: the bytes inside). */
  start: number;
  from: number;
  to: number;
  /** The value of a varint field. */
  varint?: bigint;
}

export class ProtobufError extends Error {}

export function readVarint(buf: Uint8Array, at: number): { value: bigint; next: number } {
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
export function readFields(buf: Uint8Array, from = 0, to = buf.length): Field[] {
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
