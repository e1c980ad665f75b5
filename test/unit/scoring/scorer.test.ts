/** @jest-environment ./test/support/onnxEnvironment.js */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { isCustomSpec, trainingSpecSchema } from '../../../lib/contracts/trainingSpec';
import type { RunScoreCommand } from '../../../lib/scoring/scoreCommand';
import { pythonFunctionScorer } from '../../../lib/scoring/scoreCommand';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkModelFolder, OnnxModels, parseMLmodel } from '../../../lib/mlmodel';
import { openModelFolder, storeModelFiles } from '../../../lib/mlmodel/blobFolder';
import type { ModelArtifact } from '../../../lib/contracts/modelArtifact';
import { readDataset } from '../../../lib/data/reading/readDataset';
import type { ModelScores, Scorer } from '../../../lib/scoring/scorer';
import { describeModel, loadScorer, rowsOfDataset } from '../../../lib/scoring/scorer';
import type { ColumnarDataset } from '../../../lib/training/dataset';
import { datasetFromTable, getColumn, selectRows } from '../../../lib/training/dataset';
import { serializeModel } from '../../../lib/training/models/artifact';
import type { ModelJson } from '../../../lib/training/models/format';
import {
  builtInModelFolder,
  inlineArtifact,
  MAX_INLINE_ARTIFACT_BYTES,
} from '../../../lib/training/models/mlflowFolder';
import { loadModel } from '../../../lib/training/models/predict';
import { trainModel } from '../../../lib/training/models/train';
import { createPrng } from '../../../lib/training/prng';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { syntheticClassification, syntheticRegression } from '../../../lib/training/synthetic';
import { MemoryFolderStore } from '../../support/memoryFolderStore';

const dataDir = path.resolve(__dirname, '..', '..', '..', 'data');
const demo = async (file: string): Promise<ColumnarDataset> =>
  datasetFromTable((await readDataset(readFileSync(path.join(dataDir, file)))).table);
const train = (ds: ColumnarDataset, spec: Record<string, unknown>): ModelJson =>
  trainModel(ds, parseTrainingSpec(spec)).model;
const fastGbt = { rounds: 40, earlyStoppingRounds: 0 };

const onnx = new OnnxModels();
afterAll(() => onnx.dispose());

/** Stores a built-in model as the worker does (an MLflow folder) and as before (a lone JSON). */
async function stored(model: ModelJson) {
  const store = new MemoryFolderStore();
  const json = serializeModel(model);
  const { files, artifact } = builtInModelFolder(json.bytes);
  const folder = await storeModelFiles(store.folderStore, files);
  const legacyUri = store.uri({ container: 'models', path: `sha256/${json.digest}` });
  await store.put(legacyUri, json.bytes);
  return { store, folder, artifact, legacy: { uri: legacyUri, digest: json.digest } };
}

/** Largest difference: absolute for probabilities, relative above 1 for values. */
function maxDiff(a: ModelScores, b: ModelScores): number {
  const x = a.probabilities ?? a.values!;
  const y = b.probabilities ?? b.values!;
  expect(x.length).toBe(y.length);
  let d = 0;
  const relative = a.values !== undefined;
  for (let i = 0; i < x.length; i++) {
    const diff = Math.abs(x[i]! - y[i]!);
    d = Math.max(d, relative ? diff / Math.max(1, Math.abs(y[i]!)) : diff);
  }
  return d;
}

const argmax = (P: Float64Array, K: number): number[] =>
  Array.from({ length: P.length / K }, (_, i) => {
    let best = 0;
    for (let k = 1; k < K; k++) if (P[i * K + k]! > P[i * K + best]!) best = k;
    return best;
  });

/**
 * The promise of issue 15: the built-in model's ONNX file, stored as the worker stores it and scored
 * through the scorer (rows fed from the dataset, sessions from the shared cache), equals the JSON
 * model's predictions within 1e-6, labels exactly; the legacy JSON path gives the TS predict itself.
 */
async function expectSameScores(model: ModelJson, rows: ColumnarDataset): Promise<Scorer> {
  const { store, folder, artifact, legacy } = await stored(model);
  const deps = { store: store.folderStore, onnx };
  const viaOnnx = await loadScorer(deps, { uri: folder.uri, digest: folder.digest, artifact });
  const viaJson = await loadScorer(deps, legacy);
  expect(viaOnnx.kind).toBe('onnx');
  expect(viaJson.kind).toBe('json');
  const reference = loadModel(model);
  const expected: ModelScores = reference.classes
    ? { probabilities: reference.predictProba(rows) }
    : { values: reference.predict(rows) };
  const got = await viaOnnx.scoreDataset(rows);
  expect(maxDiff(got, expected)).toBeLessThanOrEqual(1e-6);
  expect(maxDiff(await viaJson.scoreDataset(rows), expected)).toBe(0);
  // The same rows as request bodies (objects keyed by feature) score the same through ONNX.
  expect(
    maxDiff(await viaOnnx.scoreRows(rowsOfDataset(rows, viaOnnx.features)), expected),
  ).toBeLessThanOrEqual(1e-6);
  if (reference.classes) {
    const K = reference.classes.length;
    expect(viaOnnx.classes).toEqual(reference.classes);
    expect(argmax(got.probabilities!, K)).toEqual(argmax(expected.probabilities!, K));
  }
  for (const s of [viaOnnx, viaJson]) {
    expect(s.target).toBe(model.target.name);
    expect(s.task).toBe(reference.classes ? 'classification' : 'regression');
    expect(s.definition).toEqual(model);
  }
  return viaOnnx;
}

const cpsFeatures = [
  'education',
  'south',
  'gender',
  'experience',
  'age',
  'race',
  'occupation',
  'sector',
  'married',
];

describe('a built-in model stored as an MLflow folder scores like its JSON (within 1e-6)', () => {
  it.each([
    ['logistic_regression', 'union', {}],
    ['gradient_boosting', 'union', { task: 'classification', hyperparameters: fastGbt }],
    ['ridge', 'wage', {}],
    ['gradient_boosting', 'wage', { task: 'regression', hyperparameters: fastGbt }],
  ] as const)('%s on the CPS 1985 wages (%s)', async (algorithm, target, extra) => {
    const ds = await demo('cps-wages-1985.csv');
    await expectSameScores(train(ds, { algorithm, target, features: cpsFeatures, ...extra }), ds);
  });

  it.each([['logistic_regression'], ['gradient_boosting']] as const)(
    'multiclass %s on the Seattle weather, scored on another year',
    async (algorithm) => {
      const features = ['precipitation', 'temp_max', 'temp_min', 'wind'];
      const model = train(await demo('seattle-weather-2012.csv'), {
        algorithm,
        target: 'weather',
        features,
        ...(algorithm === 'gradient_boosting' ? { hyperparameters: fastGbt } : {}),
      });
      await expectSameScores(model, await demo('seattle-weather-2015.csv'));
    },
  );

  it.each([['logistic_regression'], ['gradient_boosting'], ['ridge']] as const)(
    '%s on the Palmer penguins, rows with missing measurements included',
    async (algorithm) => {
      const ds = await demo('penguins.jsonl');
      const target = algorithm === 'ridge' ? 'Body Mass (g)' : 'Species';
      const keep = Uint32Array.from({ length: ds.rowCount }, (_, i) => i).filter((i) => {
        const col = getColumn(ds, target);
        return col.type === 'categorical' || !Number.isNaN(col.values[i]!);
      });
      const features = ['Island', 'Beak Length (mm)', 'Beak Depth (mm)', 'Flipper Length (mm)', 'Sex'];
      const extra = algorithm === 'gradient_boosting' ? { hyperparameters: fastGbt } : {};
      await expectSameScores(train(selectRows(ds, keep), { algorithm, target, features, ...extra }), ds);
    },
  );

  /** Generated rows with ~10 % missing numbers, missing and unseen categories (scoring only). */
  function withGaps(ds: ColumnarDataset, seed: number): ColumnarDataset {
    const prng = createPrng(seed);
    return {
      rowCount: ds.rowCount,
      columns: ds.columns.map((c) => {
        if (c.name === 'label' || c.name === 'y') return c;
        if (c.type === 'numeric') {
          return { ...c, values: c.values.map((v) => (prng.next() < 0.1 ? NaN : v * 1_000 + 9_000)) };
        }
        const levels = [...c.levels, 'never-seen'];
        return {
          ...c,
          levels,
          codes: c.codes.map((k) => {
            const u = prng.next();
            return u < 0.1 ? -1 : u < 0.15 ? levels.length - 1 : k;
          }),
        };
      }),
    };
  }

  it.each([
    ['logistic_regression', 2],
    ['logistic_regression', 3],
    ['gradient_boosting', 2],
    ['gradient_boosting', 3],
  ] as const)('%s, %i classes, on generated data with gaps and unseen levels', async (algorithm, classes) => {
    const ds = withGaps(
      syntheticClassification({ rows: 3_000, features: 5, seed: 11, withSegment: true, classes }),
      3,
    );
    const features = ['x0', 'x1', 'x2', 'x3', 'x4', 'segment'];
    const model = train(ds, {
      algorithm,
      target: 'label',
      features,
      ...(algorithm === 'gradient_boosting' ? { hyperparameters: fastGbt } : {}),
    });
    await expectSameScores(
      model,
      withGaps(
        syntheticClassification({ rows: 2_000, features: 5, seed: 12, withSegment: true, classes }),
        4,
      ),
    );
  });

  it.each([['ridge'], ['gradient_boosting']] as const)(
    '%s regression on generated data with gaps',
    async (algorithm) => {
      const ds = withGaps(syntheticRegression({ rows: 3_000, features: 6, seed: 5 }), 6);
      const features = ['x0', 'x1', 'x2', 'x3', 'x4', 'x5'];
      const model = train(ds, {
        algorithm,
        target: 'y',
        features,
        ...(algorithm === 'gradient_boosting' ? { task: 'regression', hyperparameters: fastGbt } : {}),
      });
      await expectSameScores(model, withGaps(syntheticRegression({ rows: 2_000, features: 6, seed: 7 }), 8));
    },
  );
});

describe('the built-in model folder', () => {
  let model: ModelJson;
  let ds: ColumnarDataset;
  beforeAll(async () => {
    ds = await demo('cps-wages-1985.csv');
    model = train(ds, { algorithm: 'logistic_regression', target: 'union', features: cpsFeatures });
  });

  it('is MLmodel (onnx flavor, signature), model.onnx and model.json, and the artifact says what it is', () => {
    const json = serializeModel(model).bytes;
    const { files, artifact } = builtInModelFolder(json);
    expect(files.map((f) => f.path)).toEqual(['MLmodel', 'model.onnx', 'model.json']);
    expect(Buffer.from(files[2]!.bytes).equals(json)).toBe(true);
    const info = parseMLmodel(Buffer.from(files[0]!.bytes).toString('utf8'));
    expect(info.flavor).toBe('onnx');
    expect(info.onnxPath).toBe('model.onnx');
    expect((info.signature!.inputs as { name: string }[]).map((i) => i.name)).toEqual(cpsFeatures);
    expect((info.signature!.outputs as { name: string }[]).map((i) => i.name)).toEqual([
      'label',
      'probabilities',
    ]);
    expect(artifact).toEqual<ModelArtifact>({
      format: 'mlflow',
      flavor: 'onnx',
      onnxPath: 'model.onnx',
      task: 'classification',
      target: 'union',
      features: model.features.map((f) => ({
        name: f.name,
        kind: f.type === 'numeric' ? 'number' : 'string',
      })),
      classes: ['0', '1'],
      inputLayout: 'per-feature',
      files: 3,
      bytes: files.reduce((s, f) => s + f.bytes.byteLength, 0),
    });
    // Deterministic: the same model gives the same folder, so a retried job stores the same digest.
    expect(builtInModelFolder(json).files).toEqual(files);
  });

  it("passes the same check a user's job output does (checkModelFolder)", async () => {
    const { files, artifact } = builtInModelFolder(serializeModel(model).bytes);
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-builtin-'));
    try {
      for (const f of files) {
        await mkdir(path.dirname(path.join(dir, f.path)), { recursive: true });
        await writeFile(path.join(dir, f.path), f.bytes);
      }
      const checked = await checkModelFolder(dir, {
        features: artifact.features,
        task: 'classification',
        classes: artifact.classes,
        maxBytes: 1 << 20,
        sample: rowsOfDataset(selectRows(ds, [0, 1, 2, 3, 4]), artifact.features),
      });
      expect(checked).toMatchObject({ flavor: 'onnx', onnxPath: 'model.onnx', inputLayout: 'per-feature' });
      expect(checked.sampleRows).toBe(5);
      const stored = await storeModelFiles(new MemoryFolderStore().folderStore, files);
      expect(checked.digest).toBe(stored.digest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is refused when a stored file was swapped (its digest no longer matches)', async () => {
    const { store, folder, artifact } = await stored(model);
    const onnxUri = folder.uri.replace('.manifest.json', '/model.onnx');
    store.overwrite(onnxUri, Buffer.from('not the model'));
    const fresh = new OnnxModels();
    await expect(
      loadScorer(
        { store: store.folderStore, onnx: fresh },
        { uri: folder.uri, digest: folder.digest, artifact },
      ),
    ).rejects.toMatchObject({ code: 'BLOB_DIGEST_MISMATCH' });
    await expect(
      loadScorer(
        { store: store.folderStore, onnx: fresh },
        { uri: folder.uri, digest: 'f'.repeat(64), artifact },
      ),
    ).rejects.toMatchObject({ code: 'model_digest_mismatch' });
    await fresh.dispose();
  });

  it('shares one ONNX session per digest across loads', async () => {
    const { store, folder, artifact } = await stored(model);
    const cache = new OnnxModels();
    const ref = { uri: folder.uri, digest: folder.digest, artifact };
    const first = await loadScorer({ store: store.folderStore, onnx: cache }, ref);
    const second = await loadScorer({ store: store.folderStore, onnx: cache }, ref);
    expect(cache.digests).toEqual([folder.digest]);
    // One session: the ONNX bytes were read (and a session built) once, and both score alike.
    await first.scoreRows([{}]).catch(() => undefined);
    await second.scoreRows([{}]).catch(() => undefined);
    expect(store.readKeys.filter((k) => k.endsWith('/model.onnx'))).toHaveLength(1);
    await cache.dispose();
  });

  it('a python_function-only model needs the score command (score_command_required)', async () => {
    const { store, folder, artifact } = await stored(model);
    const pyfunc: ModelArtifact = { ...artifact, flavor: 'python_function', onnxPath: undefined };
    const scorer = await loadScorer(
      { store: store.folderStore, onnx },
      { uri: folder.uri, digest: folder.digest, artifact: pyfunc },
    );
    expect(scorer.kind).toBe('python_function');
    await expect(scorer.scoreDataset(ds)).rejects.toMatchObject({ code: 'score_command_required' });
    // With one, its predictions are the scores (columns re-ordered by label).
    const withCommand = await loadScorer(
      {
        store: store.folderStore,
        onnx,
        pythonFunction: async ({ folder: f, ds: rows }) => {
          expect(f.digest).toBe(folder.digest);
          return {
            classes: ['1', '0'],
            probabilities: Array.from({ length: rows.rowCount }, () => [0.25, 0.75]),
          };
        },
      },
      { uri: folder.uri, digest: folder.digest, artifact: pyfunc },
    );
    const scores = await withCommand.scoreDataset(selectRows(ds, [0, 1]));
    expect(Array.from(scores.probabilities!)).toEqual([0.75, 0.25, 0.75, 0.25]);
    expect((await openModelFolder(store.folderStore, folder.uri, folder.digest)).has('model.json')).toBe(
      true,
    );
  });

  it("pythonFunctionScorer hands the pipeline's score command the verified folder on disk and the rows, then cleans up", async () => {
    const { store, folder, artifact } = await stored(model);
    const pyfunc: ModelArtifact = { ...artifact, flavor: 'python_function', onnxPath: undefined };
    const spec = trainingSpecSchema.parse({
      algorithm: 'custom',
      target: 'union',
      features: cpsFeatures,
      code: '/srv/code',
      command: 'python3 train.py',
      score: 'python3 score.py',
    });
    if (!isCustomSpec(spec)) throw new Error('a custom spec');
    const scratch = await mkdtemp(path.join(tmpdir(), 'sluice-pyfunc-'));
    const seen: { files: string[]; rows: number; task?: string; classes?: readonly string[] }[] = [];
    const run: RunScoreCommand = async (o) => {
      expect(o.spec.score).toBe('python3 score.py');
      seen.push({
        files: (await readdir(o.modelDir)).sort(),
        rows: o.rows.length,
        task: o.task,
        classes: o.classes,
      });
      expect(o.rows[0]).toEqual(rowsOfDataset(selectRows(ds, [0]), artifact.features)[0]);
      return { classes: ['0', '1'], probabilities: o.rows.map(() => [0.4, 0.6]) };
    };
    try {
      const scorer = await loadScorer(
        { store: store.folderStore, onnx, pythonFunction: pythonFunctionScorer(spec, run, scratch) },
        { uri: folder.uri, digest: folder.digest, artifact: pyfunc },
      );
      const scores = await scorer.scoreDataset(selectRows(ds, [0, 1, 2]));
      expect(Array.from(scores.probabilities!)).toEqual([0.4, 0.6, 0.4, 0.6, 0.4, 0.6]);
      expect(seen).toEqual([
        {
          files: ['MLmodel', 'model.json', 'model.onnx'],
          rows: 3,
          task: 'classification',
          classes: ['0', '1'],
        },
      ]);
      expect(await readdir(scratch)).toEqual([]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('describes a folder that came without its artifact (a run of an older pipeline revision) from its model.json', async () => {
    const { store, folder, artifact } = await stored(model);
    expect(await describeModel(store.folderStore, { uri: folder.uri, digest: folder.digest })).toEqual(
      artifact,
    );
    const scorer = await loadScorer(
      { store: store.folderStore, onnx },
      { uri: folder.uri, digest: folder.digest },
    );
    expect(scorer.kind).toBe('onnx');
    expect(scorer.classes).toEqual(['0', '1']);
    // A legacy JSON has no description; a user's folder without one is refused.
    const json = serializeModel(model);
    const legacyUri = store.uri({ container: 'models', path: `sha256/${json.digest}` });
    await store.put(legacyUri, json.bytes);
    expect(await describeModel(store.folderStore, { uri: legacyUri, digest: json.digest })).toBeUndefined();
    const userFolder = await storeModelFiles(store.folderStore, [
      { path: 'MLmodel', bytes: Buffer.from('flavors: {onnx: {data: m.onnx}}') },
      { path: 'm.onnx', bytes: Buffer.from('x') },
    ]);
    await expect(
      describeModel(store.folderStore, { uri: userFolder.uri, digest: userFolder.digest }),
    ).rejects.toMatchObject({ code: 'invalid_model' });
  });

  it('a wide model leaves its artifact off the job result (payloads stay small) and is described from its folder', async () => {
    const wide = syntheticClassification({ rows: 400, features: 150, seed: 9 });
    const features = wide.columns.filter((c) => c.name !== 'label').map((c) => c.name);
    const m = train(wide, { algorithm: 'logistic_regression', target: 'label', features });
    const { files, artifact } = builtInModelFolder(serializeModel(m).bytes);
    expect(JSON.stringify(artifact).length).toBeGreaterThan(MAX_INLINE_ARTIFACT_BYTES);
    expect(inlineArtifact(artifact)).toBeUndefined();
    const narrow = builtInModelFolder(serializeModel(model).bytes).artifact;
    expect(inlineArtifact(narrow)).toBe(narrow);
    const store = new MemoryFolderStore();
    const folder = await storeModelFiles(store.folderStore, files);
    expect(await describeModel(store.folderStore, { uri: folder.uri, digest: folder.digest })).toEqual(
      artifact,
    );
  });
});
