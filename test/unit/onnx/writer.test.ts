/** @jest-environment ./test/support/onnxEnvironment.js */
import type { Tensor as OrtTensor } from 'onnxruntime-node';
import type { Model } from '../../../lib/onnx/model';
import { encodeModel } from '../../../lib/onnx/model';
import { ProtoWriter } from '../../../lib/onnx/wire';
import * as ort from 'onnxruntime-node';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('protobuf wire encoding', () => {
  it('writes varints, including 64-bit two’s complement for negative numbers', () => {
    expect(hex(new ProtoWriter().int(1, 0).finish())).toBe('0800');
    expect(hex(new ProtoWriter().int(1, 300).finish())).toBe('08ac02');
    expect(hex(new ProtoWriter().int(1, -1).finish())).toBe('08ffffffffffffffffff01');
    expect(hex(new ProtoWriter().int(2, 2 ** 53 - 1).finish())).toBe('10ffffffffffffff0f');
    expect(hex(new ProtoWriter().int(20, 7).finish())).toBe('a00107'); // field 20: a two-byte tag
  });

  it('writes floats and doubles little-endian, strings as UTF-8 with their byte length', () => {
    expect(hex(new ProtoWriter().float(2, 1.5).finish())).toBe('150000c03f');
    expect(hex(new ProtoWriter().float(2, NaN).finish())).toBe('150000c07f');
    expect(hex(new ProtoWriter().double(1, 1).finish())).toBe('09000000000000f03f');
    expect(hex(new ProtoWriter().string(2, 'hi').finish())).toBe('12026869');
    expect(hex(new ProtoWriter().string(1, 'é').finish())).toBe('0a02c3a9');
  });

  it('packs repeated numbers into one length-delimited field and writes nothing for an empty list', () => {
    expect(hex(new ProtoWriter().packedInts(8, [1, 2, 300]).finish())).toBe('42040102ac02');
    expect(hex(new ProtoWriter().packedFloats(7, [1, -2]).finish())).toBe('3a080000803f000000c0');
    expect(new ProtoWriter().packedInts(8, []).finish()).toHaveLength(0);
  });

  it('nests messages with their length, growing its buffer past the first 256 bytes', () => {
    const long = 'x'.repeat(1_000);
    const bytes = new ProtoWriter().message(7, (w) => w.string(1, long)).finish();
    expect(hex(bytes.subarray(0, 6))).toBe('3aeb070ae807');
    expect(bytes).toHaveLength(6 + 1_000);
  });

  it('refuses numbers a varint cannot carry exactly', () => {
    expect(() => new ProtoWriter().int(1, 1.5)).toThrow(RangeError);
    expect(() => new ProtoWriter().int(1, 2 ** 60)).toThrow(RangeError);
  });
});

describe('ONNX ModelProto writer', () => {
  /** y = x · scale + offset, label = names[argmax over columns of y]: numbers, strings, attributes. */
  const model: Model = {
    irVersion: 8,
    opsetImports: [{ domain: '', version: 17 }],
    producerName: 'test',
    producerVersion: '0',
    graph: {
      name: 'g',
      nodes: [
        { opType: 'Mul', inputs: ['x', 'scale'], outputs: ['scaled'] },
        { opType: 'Add', inputs: ['scaled', 'offset'], outputs: ['y'] },
        {
          opType: 'ArgMax',
          inputs: ['y'],
          outputs: ['best'],
          attributes: [
            { name: 'axis', type: 'int', value: 1 },
            { name: 'keepdims', type: 'int', value: 0 },
          ],
        },
        {
          opType: 'Gather',
          inputs: ['names', 'best'],
          outputs: ['label'],
          attributes: [{ name: 'axis', type: 'int', value: 0 }],
        },
        {
          opType: 'Constant',
          inputs: [],
          outputs: ['answer'],
          attributes: [{ name: 'value', type: 'tensor', value: { type: 'int64', dims: [1], values: [-42] } }],
        },
      ],
      initializers: [
        { name: 'scale', type: 'double', dims: [2], values: [2, -1] },
        { name: 'offset', type: 'double', dims: [1], values: [0.5] },
        { name: 'names', type: 'string', dims: [2], values: ['left', 'rïght'] },
      ],
      inputs: [{ name: 'x', type: 'double', shape: ['N', 2] }],
      outputs: [
        { name: 'y', type: 'double', shape: ['N', 2] },
        { name: 'label', type: 'string', shape: ['N'] },
        { name: 'answer', type: 'int64', shape: [1] },
      ],
    },
    metadata: [{ key: 'k', value: 'v' }],
  };

  it('writes a model onnxruntime loads and runs with the values it was given', async () => {
    const session = await ort.InferenceSession.create(Buffer.from(encodeModel(model)));
    expect(session.inputNames).toEqual(['x']);
    expect(session.outputNames).toEqual(['y', 'label', 'answer']);
    const out = await session.run({
      x: new ort.Tensor('float64', Float64Array.from([1, 1, -1, -3]), [2, 2]),
    });
    await session.release();
    expect(Array.from(out.y!.data as Float64Array)).toEqual([2.5, -0.5, -1.5, 3.5]);
    expect(Array.from(out.label!.data as string[])).toEqual(['left', 'rïght']);
    expect((out.answer as OrtTensor).data).toEqual(BigInt64Array.from([-42n]));
  });

  it('is deterministic: the same model gives the same bytes', () => {
    expect(hex(encodeModel(model))).toBe(hex(encodeModel(structuredClone(model))));
  });

  it('refuses a tensor whose values do not fill its dims', () => {
    const bad: Model = {
      ...model,
      graph: { ...model.graph, initializers: [{ name: 's', type: 'double', dims: [3], values: [1, 2] }] },
    };
    expect(() => encodeModel(bad)).toThrow('tensor s has 2 values for dims [3]');
  });
});
