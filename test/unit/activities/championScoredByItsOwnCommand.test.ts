/** @jest-environment ./test/support/onnxEnvironment.js */
/**
 * Review of issue 15, HIGH: a python_function champion was scored by the CANDIDATE pipeline's
 * `score` command, so the team being judged decided the champion's predictions. evaluateModel now
 * scores the champion with the `score` and `code` recorded on its own registry version, and stops
 * with `champion_not_scorable` when that version records none.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { championScorers } from '../../../activities/evaluateModel';
import type { ModelArtifact } from '../../../lib/contracts/modelArtifact';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { OnnxModels } from '../../../lib/mlmodel';
import { storeModelFiles } from '../../../lib/mlmodel/blobFolder';
import type { RunScoreCommand } from '../../../lib/scoring/scoreCommand';
import { loadScorer } from '../../../lib/scoring/scorer';
import type { TrainingDeps } from '../../../lib/services';
import type { ColumnarDataset } from '../../../lib/training/dataset';
import { datasetFromTable, selectRows } from '../../../lib/training/dataset';
import { serializeModel } from '../../../lib/training/models/artifact';
import { builtInModelFolder } from '../../../lib/training/models/mlflowFolder';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import { MemoryFolderStore } from '../../support/memoryFolderStore';

const features = ['education', 'experience', 'gender'];
const onnx = new OnnxModels();
afterAll(() => onnx.dispose());

let ds: ColumnarDataset;
let store: MemoryFolderStore;
let folder: { uri: string; digest: string };
let pyfunc: ModelArtifact;
let onnxArtifact: ModelArtifact;
beforeAll(async () => {
  const file = path.resolve(__dirname, '..', '..', '..', 'data', 'cps-wages-1985.csv');
  ds = datasetFromTable((await readDataset(readFileSync(file))).table);
  const model = trainModel(
    ds,
    parseTrainingSpec({ algorithm: 'logistic_regression', target: 'union', features }),
  ).model;
  const { files, artifact } = builtInModelFolder(serializeModel(model).bytes);
  store = new MemoryFolderStore();
  folder = await storeModelFiles(store.folderStore, files);
  // The same folder, described as a python_function-only model (no ONNX it could be scored by).
  onnxArtifact = artifact;
  pyfunc = { ...artifact, flavor: 'python_function', onnxPath: undefined };
});

const championSpec = {
  algorithm: 'custom',
  target: 'union',
  features,
  code: '/srv/champion-code',
  command: 'python3 train.py',
  score: 'python3 champion_score.py',
};

function recorder() {
  const seen: { code: string; score?: string }[] = [];
  const run: RunScoreCommand = async (o) => {
    seen.push({ code: o.spec.code, score: o.spec.score });
    return { classes: ['0', '1'], probabilities: o.rows.map(() => [0.3, 0.7]) };
  };
  return { seen, run };
}

const deps = (run: RunScoreCommand) =>
  ({ store: store.folderStore, onnx, scoreCommand: run }) as unknown as Pick<
    TrainingDeps,
    'store' | 'onnx' | 'scoreCommand'
  >;

describe("a python_function champion is scored by its own registry version's score command", () => {
  it('uses the score and code recorded on the champion version, not the candidate pipeline', async () => {
    const { seen, run } = recorder();
    // championScorers is built from the champion's version alone: no candidate spec is in reach.
    const champion = await loadScorer(
      championScorers(deps(run), { version: 4, trainingSpec: championSpec }),
      {
        uri: folder.uri,
        digest: folder.digest,
        artifact: pyfunc,
      },
    );
    expect(champion.kind).toBe('python_function');
    const scores = await champion.scoreDataset(selectRows(ds, [0, 1]));
    expect(Array.from(scores.probabilities!)).toEqual([0.3, 0.7, 0.3, 0.7]);
    expect(seen).toEqual([{ code: '/srv/champion-code', score: 'python3 champion_score.py' }]);
  });

  it.each([
    ['a built-in spec', { algorithm: 'logistic_regression', target: 'union', features }],
    ['a custom spec without score', { ...championSpec, score: undefined }],
    ['no usable spec at all', {}],
  ])('stops with champion_not_scorable when the version records %s', async (_what, trainingSpec) => {
    const { seen, run } = recorder();
    const champion = await loadScorer(
      championScorers(deps(run), { version: 7, trainingSpec: trainingSpec as Record<string, unknown> }),
      { uri: folder.uri, digest: folder.digest, artifact: pyfunc },
    );
    await expect(champion.scoreDataset(selectRows(ds, [0]))).rejects.toMatchObject({
      code: 'champion_not_scorable',
      message: expect.stringContaining('version 7'),
    });
    expect(seen).toEqual([]);
  });

  it('an ONNX champion is still scored in-process, whatever its version records', async () => {
    const { seen, run } = recorder();
    const artifact = onnxArtifact;
    const champion = await loadScorer(championScorers(deps(run), { version: 1, trainingSpec: {} }), {
      uri: folder.uri,
      digest: folder.digest,
      artifact,
    });
    expect(champion.kind).not.toBe('python_function');
    const scores = await champion.scoreDataset(selectRows(ds, [0, 1]));
    expect(scores.probabilities!.length).toBe(4);
    expect(seen).toEqual([]);
  });
});
