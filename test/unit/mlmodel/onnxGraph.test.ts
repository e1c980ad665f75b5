/** @jest-environment ./test/support/onnxEnvironment.js */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import { findZipMaps, withFloatOutputs } from '../../../lib/mlmodel/onnxGraph';
import { fixtures } from './support';

const bytesOf = (fixture: string): Promise<Uint8Array> =>
  readFile(path.join(fixtures, fixture, 'model.onnx'));

describe('the ONNX graph reader (ZipMap)', () => {
  it('finds a ZipMap node: the tensor it reads, its output and its class labels', async () => {
    expect(findZipMaps(await bytesOf('classifier-zipmap'))).toEqual([
      { input: 'probabilities', output: 'output_probability', classes: ['no', 'yes'] },
    ]);
  });

  it('finds none in a model without one', async () => {
    expect(findZipMaps(await bytesOf('classifier-per-feature'))).toEqual([]);
  });

  it('refuses bytes that are not protobuf', () => {
    expect(() => findZipMaps(new TextEncoder().encode('this is not a protobuf model\n'))).toThrow();
  });

  it('adds a float output that onnxruntime then exposes, keeping the others', async () => {
    const rewritten = withFloatOutputs(await bytesOf('classifier-zipmap'), ['probabilities']);
    const session = await InferenceSession.create(rewritten);
    try {
      expect(session.outputNames).toEqual(['label', 'output_probability', 'probabilities']);
      expect(session.outputMetadata[2]).toMatchObject({
        name: 'probabilities',
        isTensor: true,
        type: 'float32',
      });
    } finally {
      await session.release();
    }
  });
});
