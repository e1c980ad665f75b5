/**
 * @jest-environment ./test/support/onnxEnvironment.js
 *
 * `runScoreCommand`: a python_function-only model scored by the pipeline's own `score` command.
 * The real example (examples/training/sklearn-pyfunc, Debian's /usr/bin/python3 with
 * python3-sklearn) trains, its folder passes the model-folder check, and score.py scores the holdout;
 * fake score commands (Node scripts) show each way the predictions file is refused.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkModelFolder } from '../../../lib/mlmodel/check';
import { conformTable } from '../../../lib/data/checking/conform';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import type { Table } from '../../../lib/data/table';
import type { JobData } from '../../../lib/training/userJob/jobData';
import { writeJobData } from '../../../lib/training/userJob/jobData';
import { runUserJob } from '../../../lib/training/userJob/run';
import type { ScoreCommandOptions } from '../../../lib/training/userJob/score';
import { parsePredictions, runScoreCommand } from '../../../lib/training/userJob/score';

const ROOT = join(__dirname, '..', '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'training', 'sklearn-pyfunc');
const NODE = `'${process.execPath}'`;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sluice-score-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

async function trained(name: string, file: string, target: string, features: string[]) {
  const read = await readDataset(await readFile(join(ROOT, 'data', file)));
  const contract = inferDatasetContract(read.table);
  const data = await writeJobData(join(work, name, 'data'), {
    table: conformTable(read.table, contract),
    contract,
    target,
    features,
    seed: 42,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
  });
  const outcome = await runUserJob({
    jobId: `it-${name}`,
    spec: { code: EXAMPLE, command: '/usr/bin/python3 train.py', hyperparameters: {}, timeLimitSeconds: 300 },
    data,
    workDir: join(work, name),
    check: checkModelFolder,
  });
  const holdout = (await readDataset(await readFile(data.holdout.csv))).table;
  return { data, outcome, holdout };
}

function spec(data: JobData, over: Partial<ScoreCommandOptions['spec']> = {}): ScoreCommandOptions['spec'] {
  return {
    code: EXAMPLE,
    score: '/usr/bin/python3 score.py',
    features: data.features,
    target: data.target,
    task: data.task,
    hyperparameters: {},
    timeLimitSeconds: 120,
    ...over,
  };
}

describe('the python_function example scored by score.py', () => {
  it('classifies the holdout: one label and one probability row per input row, classes of the contract', async () => {
    const { data, outcome, holdout } = await trained('weather', 'seattle-weather-2015.csv', 'weather', [
      'precipitation',
      'temp_max',
      'temp_min',
      'wind',
    ]);
    expect(outcome.model.flavor).toBe('python_function');
    expect(outcome.model.onnxPath).toBeUndefined();
    const scores = await runScoreCommand({
      spec: spec(data),
      modelDir: outcome.outputDir,
      rows: holdout,
      workDir: join(work, 'weather-score'),
      classes: data.classes,
    });
    expect(scores.labels).toHaveLength(data.holdout.rows);
    expect(scores.probabilities).toHaveLength(data.holdout.rows);
    expect(new Set(scores.classes)).toEqual(new Set(data.classes));
    // The label is the most probable class, and the model is better than always saying "sun".
    const truth = (holdout.columns.find((c) => c.name === 'weather') as Table['columns'][number] & {
      dictionary: string[];
      codes: Int32Array;
    })!;
    let right = 0;
    scores.labels!.forEach((l, i) => {
      const p = scores.probabilities![i]!;
      expect(scores.classes![p.indexOf(Math.max(...p))]).toBe(l);
      if (truth.dictionary[truth.codes[i]!] === l) right++;
    });
    expect(right / data.holdout.rows).toBeGreaterThan(0.5);
  });

  it('regresses from a CSV path and from row objects alike', async () => {
    const { data, outcome } = await trained('wages', 'cps-wages-1985.csv', 'wage', [
      'education',
      'experience',
      'gender',
      'occupation',
    ]);
    expect(data.task).toBe('regression');
    const fromFile = await runScoreCommand({
      spec: spec(data),
      modelDir: outcome.outputDir,
      rows: data.holdout.csv,
      workDir: join(work, 'wages-file'),
    });
    expect(fromFile.values).toHaveLength(data.holdout.rows);
    fromFile.values!.forEach((v) => expect(Number.isFinite(v)).toBe(true));
    const [header, ...lines] = (await readFile(data.holdout.csv, 'utf8')).trimEnd().split('\n');
    const names = header!.split(',');
    const objects = lines.map((l) =>
      Object.fromEntries(l.split(',').map((v, i) => [names[i]!, /^[\d.]+$/.test(v) ? Number(v) : v])),
    );
    const fromRows = await runScoreCommand({
      spec: spec(data),
      modelDir: outcome.outputDir,
      rows: objects,
      workDir: join(work, 'wages-rows'),
    });
    expect(fromRows.values).toEqual(fromFile.values);
  });
});

describe('score commands that fail or answer badly', () => {
  let model: string;
  let n = 0;
  beforeAll(async () => {
    model = join(work, 'fake-model');
    await mkdir(model, { recursive: true });
    await writeFile(join(model, 'MLmodel'), 'flavors:\n  python_function: {}\n');
  });

  /** A code folder whose score.js writes `body` (a function of the input's row count) to SLUICE_PREDICTIONS. */
  async function fake(script: string): Promise<string> {
    const dir = join(work, `fake${++n}`);
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'score.js'),
      `const fs = require('node:fs');
const rows = fs.readFileSync(process.env.SLUICE_INPUT, 'utf8').trimEnd().split('\\n').length - 1;
${script}`,
    );
    return dir;
  }
  const rows = [
    { x: 1, color: 'red' },
    { x: 2, color: 'blue, "dark"' },
    { x: null, color: 'green' },
  ];
  async function score(script: string, over: Partial<ScoreCommandOptions> = {}) {
    const code = await fake(script);
    return runScoreCommand({
      spec: {
        code,
        score: `${NODE} score.js`,
        features: ['x', 'color'],
        target: 'y',
        task: 'classification',
        hyperparameters: { k: 1 },
        timeLimitSeconds: 30,
      },
      modelDir: model,
      rows,
      workDir: join(code, 'work'),
      classes: ['no', 'yes'],
      ...over,
    });
  }
  const write = (body: string) => `fs.writeFileSync(process.env.SLUICE_PREDICTIONS, ${body});`;
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'resolved',
      (e: { code?: string; message: string }) => `${e.code}: ${e.message}`,
    );

  it('reads CSV and JSON Lines predictions, classes in the order of the file', async () => {
    const seen = await score(`
${write(`'label,no,yes\\n' + 'no,0.9,0.1\\n'.repeat(rows - 1) + 'yes,0.2,0.8\\n'`)}`);
    expect(seen).toEqual({
      labels: ['no', 'no', 'yes'],
      probabilities: [
        [0.9, 0.1],
        [0.9, 0.1],
        [0.2, 0.8],
      ],
      classes: ['no', 'yes'],
    });
    const jsonl = await score(
      write(
        `Array.from({ length: rows }, (_, i) => JSON.stringify({ label: i ? 'yes' : 'no', probabilities: { yes: i ? 0.7 : 0.4, no: i ? 0.3 : 0.6 } })).join('\\n')`,
      ),
    );
    expect(jsonl).toEqual({
      labels: ['no', 'yes', 'yes'],
      probabilities: [
        [0.4, 0.6],
        [0.7, 0.3],
        [0.7, 0.3],
      ],
      classes: ['yes', 'no'],
    });
  });

  it('passes SLUICE_MODEL, SLUICE_INPUT, SLUICE_PREDICTIONS and the job variables, and quotes the input', async () => {
    const code = await fake(`
fs.writeFileSync(process.env.SLUICE_PREDICTIONS, 'value\\n1\\n2\\n3\\n');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SLUICE_')));
const input = fs.readFileSync(process.env.SLUICE_INPUT, 'utf8');
fs.writeFileSync('seen.json', JSON.stringify({ env, argv: process.argv.slice(2), input }));`);
    const scores = await runScoreCommand({
      spec: {
        code,
        score: `${NODE} score.js \${SLUICE_MODEL} "\${SLUICE_FEATURES}"`,
        features: ['x', 'color'],
        target: 'y',
        hyperparameters: { k: 1 },
        timeLimitSeconds: 30,
      },
      modelDir: model,
      rows,
      workDir: join(code, 'work'),
    });
    expect(scores).toEqual({ values: [1, 2, 3] });
    const seen = JSON.parse(await readFile(join(code, 'seen.json'), 'utf8')) as {
      env: Record<string, string>;
      argv: string[];
      input: string;
    };
    expect(seen.env).toEqual({
      SLUICE_MODEL: model,
      SLUICE_INPUT: join(code, 'work', 'input.csv'),
      SLUICE_PREDICTIONS: join(code, 'work', 'predictions.csv'),
      SLUICE_FEATURES: '["x","color"]',
      SLUICE_TARGET: 'y',
      SLUICE_HYPERPARAMETERS: '{"k":1}',
    });
    expect(seen.argv).toEqual([model, '["x","color"]']);
    expect(seen.input).toBe('x,color\n1,red\n2,"blue, ""dark"""\n,green\n');
  });

  it.each([
    ['no score command', '', { spec: undefined }, /^score_command_required: /],
    [
      'exit non-zero',
      'console.error("boom"); process.exit(3);',
      {},
      /^score_failed: .*exited with code 3.*\nboom/s,
    ],
    ['writes nothing', '', {}, /^predictions_missing: /],
    [
      'one row short',
      write(`'label,no,yes\\n' + 'no,0.5,0.5\\n'.repeat(rows - 1)`),
      {},
      /^predictions_invalid: .*2 predictions for 3 input rows/,
    ],
    [
      'NaN',
      write(`'label,no,yes\\nno,NaN,0.5\\nno,0.5,0.5\\nno,0.5,0.5\\n'`),
      {},
      /^predictions_invalid: .*"NaN", not a finite number/,
    ],
    [
      'sum not 1',
      write(`'label,no,yes\\nno,0.5,0.6\\nno,0.5,0.5\\nno,0.5,0.5\\n'`),
      {},
      /^predictions_invalid: .*sum to 1\.1/,
    ],
    [
      'out of range',
      write(`'label,no,yes\\nno,1.5,-0.5\\nno,0.5,0.5\\nno,0.5,0.5\\n'`),
      {},
      /^predictions_invalid: .*outside \[0, 1\]/,
    ],
    [
      'unknown class column',
      write(`'label,no,maybe\\nno,0.5,0.5\\nno,0.5,0.5\\nno,0.5,0.5\\n'`),
      {},
      /^predictions_invalid: .*"maybe" are not classes/,
    ],
    [
      'unknown label',
      write(`'label,no,yes\\nperhaps,0.5,0.5\\nno,0.5,0.5\\nno,0.5,0.5\\n'`),
      {},
      /^predictions_invalid: .*label "perhaps"/,
    ],
    [
      'value for a classifier',
      write(`'value\\n1\\n2\\n3\\n'`),
      {},
      /^predictions_invalid: .*the task is classification/,
    ],
    [
      'neither column',
      write(`'prediction\\n1\\n2\\n3\\n'`),
      {},
      /^predictions_invalid: .*expected a "label" column/,
    ],
    [
      'time limit',
      'setTimeout(() => {}, 60_000);',
      { timeLimitSeconds: 1, killGraceMs: 200 },
      /^score_time_limit_exceeded: /,
    ],
  ])('%s', async (_name, script, over, expected) => {
    const o: Partial<ScoreCommandOptions> = { ...over };
    if ('spec' in over) {
      const code = await fake(script);
      await expect(
        codeOf(
          runScoreCommand({
            spec: { code, features: ['x', 'color'], target: 'y', hyperparameters: {}, timeLimitSeconds: 30 },
            modelDir: model,
            rows,
            workDir: join(code, 'work'),
          }),
        ),
      ).resolves.toMatch(expected);
      return;
    }
    await expect(codeOf(score(script, o))).resolves.toMatch(expected);
  });

  it('a missing code folder is named', async () => {
    await expect(
      codeOf(
        runScoreCommand({
          spec: {
            code: join(work, 'nope'),
            score: 'x',
            features: ['x'],
            target: 'y',
            hyperparameters: {},
            timeLimitSeconds: 5,
          },
          modelDir: model,
          rows: [],
          workDir: join(work, 'nope-work'),
        }),
      ),
    ).resolves.toMatch(/^code_folder_missing: the code folder .*nope does not exist/);
  });

  it('parses quoted CSV cells and a BOM, and refuses an empty file', () => {
    expect(parsePredictions('\uFEFFlabel,"a,b",c\r\n"a,b","0.25",0.75\r\n', undefined, ['a,b', 'c'])).toEqual(
      {
        labels: ['a,b'],
        probabilities: [[0.25, 0.75]],
        classes: ['a,b', 'c'],
      },
    );
    expect(() => parsePredictions('', 'regression')).toThrow(/the file is empty/);
  });
});
