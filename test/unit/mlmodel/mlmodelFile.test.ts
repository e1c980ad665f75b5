import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseMLmodel } from '../../../lib/mlmodel';
import { fixtures } from './support';

describe('parseMLmodel', () => {
  it('reads the onnx flavor and the signature of an MLmodel as mlflow.onnx writes it', () => {
    const info = parseMLmodel(readFileSync(path.join(fixtures, 'classifier-tensor', 'MLmodel'), 'utf8'));
    expect(info).toEqual({
      flavor: 'onnx',
      onnxPath: 'model.onnx',
      signature: {
        inputs: [{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 3] }, name: 'input' }],
        outputs: [
          { type: 'tensor', 'tensor-spec': { dtype: 'str', shape: [-1] }, name: 'label' },
          { type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, 2] }, name: 'probabilities' },
        ],
      },
    });
  });

  it('prefers onnx over python_function, and normalises the ONNX path', () => {
    const info = parseMLmodel(
      'flavors:\n  python_function:\n    loader_module: mlflow.onnx\n  onnx:\n    data: ./onnx/../model.onnx\n',
    );
    expect(info).toEqual({ flavor: 'onnx', onnxPath: 'model.onnx' });
  });

  it('takes a signature given as YAML lists as well as JSON strings', () => {
    const info = parseMLmodel(
      'flavors:\n  python_function: {}\nsignature:\n  inputs:\n  - {name: x1, type: double}\n',
    );
    expect(info).toEqual({
      flavor: 'python_function',
      signature: { inputs: [{ name: 'x1', type: 'double' }], outputs: [] },
    });
  });

  it.each([
    ['an absolute ONNX path', 'flavors:\n  onnx:\n    data: /etc/model.onnx\n'],
    ['a python_function flavor that is not a mapping', 'flavors:\n  python_function: yes\n'],
    ['a signature that is a list', 'flavors:\n  python_function: {}\nsignature: [1]\n'],
    [
      'signature inputs that are a JSON object',
      "flavors:\n  python_function: {}\nsignature:\n  inputs: '{}'\n",
    ],
  ])('refuses %s with mlmodel_invalid', (_what, text) => {
    expect(() => parseMLmodel(text)).toThrow(expect.objectContaining({ code: 'mlmodel_invalid' }));
  });
});
