/** @jest-environment ./test/support/onnxEnvironment.js */
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ModelFolderExpectation } from '../../../lib/mlmodel';
import { checkModelFolder, checkPredictions } from '../../../lib/mlmodel';
import {
  classes,
  fixtures,
  perFeature,
  perFeatureRows,
  scratch,
  tensorFeatures,
  tensorRows,
} from './support';

const MiB = 1024 * 1024;
const classifier: ModelFolderExpectation = {
  features: perFeature,
  task: 'classification',
  classes,
  maxBytes: MiB,
};
const regressor: ModelFolderExpectation = { features: tensorFeatures, task: 'regression', maxBytes: MiB };

/** The error's code and message, for `toMatchObject`. */
async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; name: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { code: string; message: string; name: string };
    return { code: e.code, message: e.message, name: e.name };
  }
  throw new Error('expected the check to fail');
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});
async function copyOf(fixture?: string): Promise<string> {
  const s = await scratch(fixture);
  cleanups.push(s.cleanup);
  return s.dir;
}

describe('checkModelFolder accepts', () => {
  it('a per-feature classifier: manifest sorted by path, digest, signature, metrics, scored sample', async () => {
    const checked = await checkModelFolder(path.join(fixtures, 'classifier-per-feature'), {
      ...classifier,
      sample: perFeatureRows,
    });
    expect(checked.manifest.map((e) => e.path)).toEqual(['MLmodel', 'metrics.json', 'model.onnx']);
    expect(checked.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(checked).toMatchObject({
      flavor: 'onnx',
      onnxPath: 'model.onnx',
      inputLayout: 'per-feature',
      metrics: { accuracy: 0.75, log_loss: 0.52 },
      outputs: { label: 'label', probabilities: 'probabilities', zipMapped: false },
      sampleRows: 4,
    });
    expect(checked.signature?.inputs).toHaveLength(3);
    expect(checked.signature?.inputs[0]).toMatchObject({ name: 'x1', type: 'tensor' });
    expect(checked.signature?.outputs).toHaveLength(2);
  });

  it('a one-tensor classifier whose input is named after no feature', async () => {
    const checked = await checkModelFolder(path.join(fixtures, 'classifier-tensor'), {
      ...classifier,
      features: tensorFeatures,
      sample: tensorRows,
    });
    expect(checked).toMatchObject({ inputLayout: 'tensor', flavor: 'onnx' });
    expect(checked.metrics).toBeUndefined();
  });

  it('a classifier with integer labels, checked against the contract classes as strings', async () => {
    const checked = await checkModelFolder(path.join(fixtures, 'classifier-int-labels'), {
      ...classifier,
      features: tensorFeatures,
      classes: ['0', '1'],
      sample: tensorRows,
    });
    expect(checked).toMatchObject({ inputLayout: 'tensor', classes: ['0', '1'], sampleRows: 3 });
  });

  it('a classifier ending in ZipMap (the sequence-of-maps form), reading the class order from it', async () => {
    const checked = await checkModelFolder(path.join(fixtures, 'classifier-zipmap'), {
      ...classifier,
      sample: perFeatureRows,
    });
    expect(checked.outputs).toEqual({
      label: 'label',
      probabilities: 'probabilities',
      value: undefined,
      zipMapped: true,
    });
    expect(checked.classes).toEqual(['no', 'yes']);
  });

  it('regressors in both layouts', async () => {
    const tensor = await checkModelFolder(path.join(fixtures, 'regressor-tensor'), {
      ...regressor,
      sample: tensorRows,
    });
    expect(tensor).toMatchObject({ inputLayout: 'tensor', outputs: { value: 'variable' } });
    const named = await checkModelFolder(path.join(fixtures, 'regressor-per-feature'), {
      ...regressor,
      features: perFeature,
      sample: perFeatureRows,
    });
    expect(named).toMatchObject({ inputLayout: 'per-feature', metrics: { rmse: 1.25 } });
  });

  it('a python_function-only model, without ONNX checks (it is evaluated by its score command)', async () => {
    const dir = await copyOf();
    await mkdir(dir);
    await writeFile(
      path.join(dir, 'MLmodel'),
      'flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n',
    );
    await writeFile(path.join(dir, 'model.pkl'), 'pickle bytes');
    const checked = await checkModelFolder(dir, { ...classifier, sample: perFeatureRows });
    expect(checked).toMatchObject({ flavor: 'python_function' });
    expect(checked.onnxPath).toBeUndefined();
    expect(checked.inputLayout).toBeUndefined();
    expect(checked.manifest.map((e) => e.path)).toEqual(['MLmodel', 'model.pkl']);
  });

  it('a column signature naming a subset of the features, and an optional column the features lack', async () => {
    const dir = await copyOf();
    await mkdir(dir);
    const inputs = JSON.stringify([
      { type: 'double', name: 'x1', required: true },
      { type: 'string', name: 'color', required: true },
      { type: 'double', name: 'bonus', required: false },
    ]);
    await writeFile(
      path.join(dir, 'MLmodel'),
      `flavors:\n  python_function:\n    loader_module: mlflow.sklearn\nsignature:\n  inputs: '${inputs}'\n  outputs: '[]'\n`,
    );
    const checked = await checkModelFolder(dir, classifier);
    expect(checked.signature?.inputs).toHaveLength(3);
  });

  it('files in subfolders and a symlink to a file inside the folder, hashed under their own paths', async () => {
    const dir = await copyOf('regressor-tensor');
    await mkdir(path.join(dir, 'extra', 'deeper'), { recursive: true });
    await writeFile(path.join(dir, 'extra', 'deeper', 'notes.txt'), 'hello');
    await symlink(path.join(dir, 'extra', 'deeper', 'notes.txt'), path.join(dir, 'link.txt'));
    const checked = await checkModelFolder(dir, regressor);
    expect(checked.manifest.map((e) => e.path)).toEqual([
      'MLmodel',
      'extra/deeper/notes.txt',
      'link.txt',
      'model.onnx',
    ]);
    const [notes, link] = [checked.manifest[1], checked.manifest[2]];
    expect(link?.sha256).toBe(notes?.sha256);
  });
});

describe('checkModelFolder refuses, with a named code', () => {
  it('model_output_empty: the folder does not exist, is empty, or holds only empty folders', async () => {
    const dir = await copyOf();
    expect(await failure(checkModelFolder(dir, classifier))).toMatchObject({
      code: 'model_output_empty',
      name: 'NonRetriableError',
    });
    await mkdir(path.join(dir, 'sub', 'sub'), { recursive: true });
    expect(await failure(checkModelFolder(dir, classifier))).toMatchObject({ code: 'model_output_empty' });
  });

  it('mlmodel_missing: files but no MLmodel, naming what is there', async () => {
    const dir = await copyOf('classifier-tensor');
    await writeFile(path.join(dir, 'MLmodel'), '');
    const { rm } = await import('node:fs/promises');
    await rm(path.join(dir, 'MLmodel'));
    expect(await failure(checkModelFolder(dir, classifier))).toMatchObject({
      code: 'mlmodel_missing',
      message: expect.stringContaining('model.onnx'),
    });
  });

  it.each([
    ['malformed YAML', 'flavors: [onnx\n', /not valid YAML/],
    ['a document that is not a mapping', '- onnx\n- python_function\n', /not a mapping/],
    ['no flavors', 'artifact_path: model\n', /no flavors/],
    [
      'neither onnx nor python_function',
      'flavors:\n  sklearn:\n    pickled_model: m.pkl\n',
      /found: sklearn/,
    ],
    ['a key given twice', 'flavors:\n  onnx:\n    data: model.onnx\nflavors: {}\n', /not valid YAML/],
    [
      'an ONNX path outside the folder',
      'flavors:\n  onnx:\n    data: ../model.onnx\n',
      /inside the model folder/,
    ],
    ['an onnx flavor without data', 'flavors:\n  onnx:\n    code: null\n', /must name a file/],
    [
      'a signature that is not JSON',
      "flavors:\n  onnx:\n    data: model.onnx\nsignature:\n  inputs: '[{oops'\n",
      /signature\.inputs is not JSON/,
    ],
  ])('mlmodel_invalid: %s', async (_what, text, message) => {
    const dir = await copyOf('classifier-tensor');
    await writeFile(path.join(dir, 'MLmodel'), text);
    const f = await failure(checkModelFolder(dir, classifier));
    expect(f.code).toBe('mlmodel_invalid');
    expect(f.message).toMatch(message);
  });

  it('signature_mismatch: a column signature requiring columns the features do not have, named', async () => {
    const dir = await copyOf();
    await mkdir(dir);
    const inputs = JSON.stringify([
      { type: 'double', name: 'x1' },
      { type: 'double', name: 'income' },
      { type: 'string', name: 'region', required: true },
    ]);
    await writeFile(
      path.join(dir, 'MLmodel'),
      `flavors:\n  python_function:\n    loader_module: mlflow.sklearn\nsignature:\n  inputs: '${inputs}'\n  outputs: '[]'\n`,
    );
    expect(await failure(checkModelFolder(dir, classifier))).toMatchObject({
      code: 'signature_mismatch',
      message:
        'the MLmodel signature requires columns income, region, which are not among the features (x1, x2, color)',
    });
  });

  it('onnx_invalid: bytes onnxruntime cannot load', async () => {
    expect(await failure(checkModelFolder(path.join(fixtures, 'broken-not-onnx'), classifier))).toMatchObject(
      {
        code: 'onnx_invalid',
        message: expect.stringContaining('cannot be loaded'),
      },
    );
  });

  it('onnx_invalid: MLmodel names an ONNX file the folder does not have', async () => {
    const dir = await copyOf('classifier-tensor');
    const text = await readFile(path.join(dir, 'MLmodel'), 'utf8');
    await writeFile(path.join(dir, 'MLmodel'), text.replace('data: model.onnx', 'data: models/final.onnx'));
    expect(await failure(checkModelFolder(dir, classifier))).toMatchObject({
      code: 'onnx_invalid',
      message: expect.stringContaining('models/final.onnx'),
    });
  });

  it('model_too_large: the folder is over maxBytes, before any file is hashed or loaded', async () => {
    const f = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-per-feature'), { ...classifier, maxBytes: 500 }),
    );
    expect(f).toMatchObject({ code: 'model_too_large', message: expect.stringContaining('500 bytes') });
  });

  it('onnx_inputs_mismatch: per-feature inputs with one missing and one extra, named', async () => {
    const f = await failure(checkModelFolder(path.join(fixtures, 'broken-input-names'), classifier));
    expect(f.code).toBe('onnx_inputs_mismatch');
    expect(f.message).toContain('missing inputs color');
    expect(f.message).toContain('extra inputs colour string [N, 1]');
  });

  it('onnx_inputs_mismatch: a per-feature input of the wrong type for its feature', async () => {
    const features = perFeature.map((f) => (f.name === 'color' ? { ...f, kind: 'number' as const } : f));
    const f = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-per-feature'), { ...classifier, features }),
    );
    expect(f.code).toBe('onnx_inputs_mismatch');
    expect(f.message).toContain('color string [N, 1] (feature color needs float');
  });

  it('onnx_inputs_mismatch: a tensor input that is not float, the wrong width, or asked to carry strings', async () => {
    const int = await failure(
      checkModelFolder(path.join(fixtures, 'broken-input-type'), { ...classifier, features: tensorFeatures }),
    );
    expect(int).toMatchObject({
      code: 'onnx_inputs_mismatch',
      message: expect.stringContaining('input int64 [N, 3]'),
    });
    expect(int.message).toContain('its type is not float');

    const four = [...tensorFeatures, { name: 'd', kind: 'number' as const }];
    const wide = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-tensor'), { ...classifier, features: four }),
    );
    expect(wide).toMatchObject({
      code: 'onnx_inputs_mismatch',
      message: expect.stringContaining('width is 3, not the 4 features'),
    });

    const strings = [...tensorFeatures.slice(0, 2), { name: 'c', kind: 'string' as const }];
    const str = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-tensor'), { ...classifier, features: strings }),
    );
    expect(str).toMatchObject({
      code: 'onnx_inputs_mismatch',
      message: expect.stringContaining('string features (c)'),
    });
  });

  it('onnx_inputs_mismatch: a batch dimension fixed at 1, with the way out named', async () => {
    const f = await failure(checkModelFolder(path.join(fixtures, 'broken-fixed-batch'), regressor));
    expect(f).toMatchObject({
      code: 'onnx_inputs_mismatch',
      message: expect.stringContaining(
        'its batch dimension is fixed at 1 (export it dynamic, e.g. torch.onnx dynamic_axes)',
      ),
    });
  });

  it('onnx_inputs_mismatch: per-feature inputs as one wide tensor each are named as the wrong shape', async () => {
    const features = [{ name: 'input', kind: 'number' as const }];
    const f = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-tensor'), { ...classifier, features }),
    );
    expect(f).toMatchObject({
      code: 'onnx_inputs_mismatch',
      message: expect.stringContaining('input float32 [N, 3] (feature input needs float [N, 1] or [N])'),
    });
  });

  it('onnx_outputs_mismatch: a regressor with two values per row', async () => {
    const f = await failure(checkModelFolder(path.join(fixtures, 'broken-output-shape'), regressor));
    expect(f).toMatchObject({
      code: 'onnx_outputs_mismatch',
      message: expect.stringContaining('variable float32 [N, 2]'),
    });
  });

  it('onnx_outputs_mismatch: a classifier without a probabilities output', async () => {
    const f = await failure(
      checkModelFolder(path.join(fixtures, 'broken-no-probabilities'), {
        ...classifier,
        features: tensorFeatures,
      }),
    );
    expect(f).toMatchObject({
      code: 'onnx_outputs_mismatch',
      message: expect.stringContaining('no probabilities output'),
    });
  });

  it('onnx_outputs_mismatch: a classifier checked as a regressor, and a class count the model does not have', async () => {
    const asRegression = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-tensor'), { ...regressor, features: tensorFeatures }),
    );
    expect(asRegression).toMatchObject({
      code: 'onnx_outputs_mismatch',
      message: expect.stringContaining('probabilities float32 [N, 2] is not one value per row'),
    });
    const threeClasses = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-per-feature'), {
        ...classifier,
        classes: ['a', 'b', 'c'],
      }),
    );
    expect(threeClasses).toMatchObject({
      code: 'onnx_outputs_mismatch',
      message: expect.stringContaining('2 columns'),
    });
  });

  it('predictions_invalid: NaN predictions, NaN probabilities, probabilities not summing to 1', async () => {
    const nan = await failure(
      checkModelFolder(path.join(fixtures, 'broken-nan'), { ...regressor, sample: tensorRows }),
    );
    expect(nan).toMatchObject({
      code: 'predictions_invalid',
      message: 'the model predicts NaN for sample row 0',
    });
    const nanP = await failure(
      checkModelFolder(path.join(fixtures, 'broken-nan-probabilities'), {
        ...classifier,
        sample: perFeatureRows,
      }),
    );
    expect(nanP).toMatchObject({
      code: 'predictions_invalid',
      message: expect.stringContaining('probability NaN'),
    });
    const sum = await failure(
      checkModelFolder(path.join(fixtures, 'broken-probability-sum'), {
        ...classifier,
        sample: perFeatureRows,
      }),
    );
    expect(sum).toMatchObject({
      code: 'predictions_invalid',
      message: expect.stringMatching(/sample row 0 sum to [\d.]+, not 1/),
    });
  });

  it('predictions_invalid: a model that loads and fits but fails at run time on the sample', async () => {
    const dir = path.join(fixtures, 'broken-runtime');
    // It reshapes [N, 3] to [2, -1]: two rows go through, three do not.
    await expect(
      checkModelFolder(dir, { ...regressor, sample: tensorRows.slice(0, 2) }),
    ).resolves.toMatchObject({
      sampleRows: 2,
    });
    const f = await failure(checkModelFolder(dir, { ...regressor, sample: tensorRows }));
    expect(f).toMatchObject({
      code: 'predictions_invalid',
      message: expect.stringContaining('scoring the sample failed: the ONNX model failed on rows 0–2'),
    });
  });

  it('onnx_outputs_mismatch: the classes of the model (from its classifier node) are not the contract classes', async () => {
    const f = await failure(
      checkModelFolder(path.join(fixtures, 'classifier-per-feature'), {
        ...classifier,
        classes: ['no', 'si'],
        sample: perFeatureRows,
      }),
    );
    expect(f).toMatchObject({
      code: 'onnx_outputs_mismatch',
      message: expect.stringContaining("the model's classes (no, yes) are not the contract's (no, si)"),
    });
  });

  it('but a broken model passes when no sample is given (the sample is what catches NaN)', async () => {
    await expect(checkModelFolder(path.join(fixtures, 'broken-nan'), regressor)).resolves.toMatchObject({
      flavor: 'onnx',
    });
  });

  it.each([
    ['not JSON', '{accuracy: 1}', /not JSON/],
    ['a list', '[0.5]', /object of metric name/],
    ['a string value', '{"accuracy": "high"}', /accuracy must be a finite number, got "high"/],
    ['a null value', '{"rmse": null}', /rmse must be a finite number, got null/],
    ['an empty name', '{"": 1}', /empty or over-long/],
    // Regression: the job's metrics travel on bounded payloads (job result, evaluate, register).
    [
      'a name over 64 characters',
      `{"${'m'.repeat(65)}": 1}`,
      /over-long metric name \(at most 64 characters\)/,
    ],
    [
      'over 100 metrics',
      JSON.stringify(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`m${i}`, i]))),
      /has 101 metrics; at most 100 are allowed/,
    ],
    [
      'over 64 KiB',
      `{"a": 1${' '.repeat(64 * 1024)}}`,
      /metrics.json is 6\d{4} bytes; at most 65536 are allowed/,
    ],
  ])('metrics_invalid: metrics.json is %s', async (_what, text, message) => {
    const dir = await copyOf('regressor-tensor');
    await writeFile(path.join(dir, 'metrics.json'), text);
    const f = await failure(checkModelFolder(dir, regressor));
    expect(f.code).toBe('metrics_invalid');
    expect(f.message).toMatch(message);
  });

  it('accepts 100 metrics with names of 64 characters (the bounds themselves)', async () => {
    const dir = await copyOf('regressor-tensor');
    const metrics = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`${i}`.padEnd(64, 'm'), i]));
    await writeFile(path.join(dir, 'metrics.json'), JSON.stringify(metrics));
    expect(Object.keys((await checkModelFolder(dir, regressor)).metrics ?? {})).toHaveLength(100);
  });

  it('model_output_invalid: a symlink out of the folder', async () => {
    const dir = await copyOf('regressor-tensor');
    await writeFile(path.join(dir, '..', 'secret.txt'), 'outside');
    await symlink(path.join(dir, '..', 'secret.txt'), path.join(dir, 'secret.txt'));
    expect(await failure(checkModelFolder(dir, regressor))).toMatchObject({
      code: 'model_output_invalid',
      message: 'the symlink secret.txt points outside the model folder',
    });
  });

  it('model_output_invalid: a symlink to a folder, and a dangling symlink', async () => {
    const dir = await copyOf('regressor-tensor');
    await mkdir(path.join(dir, 'sub'));
    await symlink(path.join(dir, 'sub'), path.join(dir, 'loop'));
    expect(await failure(checkModelFolder(dir, regressor))).toMatchObject({
      code: 'model_output_invalid',
      message: expect.stringContaining('loop does not point to a regular file'),
    });
    const other = await copyOf('regressor-tensor');
    await symlink(path.join(other, 'gone'), path.join(other, 'dangling'));
    expect(await failure(checkModelFolder(other, regressor))).toMatchObject({
      code: 'model_output_invalid',
      message: 'the symlink dangling in the model folder points nowhere',
    });
  });

  it('model_output_invalid: more files than maxFiles', async () => {
    const dir = await copyOf('regressor-tensor');
    for (let i = 0; i < 5; i++) await writeFile(path.join(dir, `part-${i}.bin`), String(i));
    expect(await failure(checkModelFolder(dir, { ...regressor, maxFiles: 4 }))).toMatchObject({
      code: 'model_output_invalid',
      message: 'the model folder has more than 4 files',
    });
  });
});

describe('checkPredictions (the sample check)', () => {
  const probe = (run: () => void): { code?: string; message?: string } => {
    try {
      run();
    } catch (err) {
      return err as { code: string; message: string };
    }
    return {};
  };

  it('passes finite values, and probabilities in [0, 1] summing to 1 within float32 rounding', () => {
    expect(probe(() => checkPredictions({ values: [0, -1e30, 3.5] }))).toEqual({});
    expect(
      probe(() =>
        checkPredictions(
          {
            probabilities: [
              [0.2, 0.8000001],
              [1, 0],
            ],
            labels: ['a', 'b'],
          },
          ['a', 'b'],
        ),
      ),
    ).toEqual({});
  });

  it.each([
    ['an infinite value', { values: [1, Infinity] }, 'the model predicts Infinity for sample row 1'],
    [
      'a probability above 1',
      { probabilities: [[1.2, -0.2]] },
      'the model gives probability 1.2, outside [0, 1], for sample row 0',
    ],
    [
      'a negative probability',
      {
        probabilities: [
          [0.5, 0.5],
          [-0.1, 1.1],
        ],
      },
      'the model gives probability -0.1, outside [0, 1], for sample row 1',
    ],
    [
      'probabilities summing to 0.9',
      { probabilities: [[0.4, 0.5]] },
      'the probabilities of sample row 0 sum to 0.9, not 1',
    ],
    [
      'a label outside the classes',
      { labels: ['a', 'c'] },
      'the model predicts label "c" for sample row 1, not one of the classes',
    ],
  ])('refuses %s with predictions_invalid', (_what, scores, message) => {
    expect(probe(() => checkPredictions(scores, ['a', 'b']))).toMatchObject({
      code: 'predictions_invalid',
      message,
    });
  });
});
