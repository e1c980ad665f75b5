/** @jest-environment ./test/support/onnxEnvironment.js */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InferenceSession } from 'onnxruntime-node';
import type { GraphNode } from '../../../lib/mlmodel/onnxGraph';
import { classesOf, findZipMaps, readNodes, withFloatOutputs } from '../../../lib/mlmodel/onnxGraph';
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

describe('classesOf: the class of each probability column', () => {
  it('reads classlabels_strings of the classifier node that produced the tensor', async () => {
    const nodes = readNodes(await bytesOf('classifier-per-feature'));
    expect(nodes.map((n) => n.opType)).toEqual(['LabelEncoder', 'Concat', 'LinearClassifier']);
    expect(classesOf(nodes, 'probabilities')).toEqual(['no', 'yes']);
    expect(classesOf(nodes, 'label')).toEqual(['no', 'yes']);
  });

  it('reads classlabels_ints, following Identity and Cast back to the classifier', async () => {
    const nodes = readNodes(await bytesOf('classifier-int-labels'));
    expect(classesOf(nodes, 'probabilities')).toEqual(['0', '1']);
  });

  it('says nothing for a tensor no classifier produced, or one computed from the probabilities', () => {
    const node = (
      opType: string,
      inputs: string[],
      outputs: string[],
      classes: string[] = [],
    ): GraphNode => ({
      opType,
      domain: classes.length ? 'ai.onnx.ml' : '',
      inputs,
      outputs,
      classes,
    });
    const nodes = [
      node('LinearClassifier', ['x'], ['label', 'scores'], ['b', 'a']),
      node('Softmax', ['scores'], ['softened']),
      node('Identity', ['scores'], ['same']),
    ];
    expect(classesOf(nodes, 'same')).toEqual(['b', 'a']);
    expect(classesOf(nodes, 'softened')).toBeUndefined();
    expect(classesOf(nodes, 'x')).toBeUndefined();
  });
});
