/** @jest-environment ./test/support/onnxEnvironment.js */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobTestArgs } from '../../../cli/jobTest';
import { jobTest } from '../../../cli/jobTest';
import { checkModelFolder } from '../../../lib/mlmodel/check';

/** `sluice job test` with Node scripts as the job (the Python example has its own integration test). */
const NODE = `'${process.execPath}'`;

let root: string;
let csv: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-jobtest-'));
  csv = join(root, 'data.csv');
  await writeFile(
    csv,
    [
      'a,b,label',
      ...Array.from({ length: 200 }, (_, i) => `${i % 13},${(i * 7) % 11},${i % 3 === 0 ? 'x' : 'z'}`),
    ].join('\n'),
  );
});
afterAll(() => rm(root, { recursive: true, force: true }));

let n = 0;
async function folder(files: Record<string, string>): Promise<string> {
  const dir = join(root, `job${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

async function run(
  args: Partial<JobTestArgs> & { folder: string },
): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await jobTest(
    { data: csv, target: 'label', work: join(root, `work${++n}`), ...args },
    { check: checkModelFolder, out: (l) => lines.push(l) },
  );
  return { code, lines };
}

const writesFolder = `
const fs = require('node:fs');
const out = process.env.SLUICE_OUTPUT;
// A model without ONNX (scored by its own \`score\` command): the folder checks apply, no ONNX ones.
fs.writeFileSync(out + '/MLmodel', 'flavors:\\n  python_function:\\n    loader_module: train\\n');
fs.writeFileSync(out + '/metrics.json', JSON.stringify({ accuracy: 0.5 }));
console.log('rows ' + fs.readFileSync(process.env.SLUICE_TRAIN, 'utf8').trim().split('\\n').length);
`;

describe('sluice job test', () => {
  it('takes the command from job.json, samples --rows rows, and prints the checked folder', async () => {
    const dir = await folder({
      'job.json': JSON.stringify({ command: `${NODE} job.js`, timeLimitSeconds: 30 }),
      'job.js': writesFolder,
    });
    const { code, lines } = await run({ folder: dir, rows: 50 });
    const text = lines.join('\n');
    expect(code).toBe(0);
    expect(text).toMatch(/50 of 200 rows; classification of label on 2 features \(classes x, z\)/);
    expect(text).toMatch(/ {2}│ rows \d+/);
    expect(text).toMatch(/digest: sha256:[0-9a-f]{64}/);
    expect(text).toContain('metrics: accuracy 0.5');
    expect(text).toContain('flavor: python_function');
  });

  it('lets --command override job.json', async () => {
    const dir = await folder({
      'job.json': JSON.stringify({ command: `${NODE} missing.js` }),
      'job.js': writesFolder,
    });
    expect((await run({ folder: dir, command: `${NODE} job.js` })).code).toBe(0);
  });

  it.each([
    [
      { 'job.json': '{"command": "x", "timeLimitSeconds": 0}' },
      {},
      /^✖ bad_job_file: job.json: timeLimitSeconds: /,
    ],
    [{ 'job.json': '{not json' }, {}, /^✖ bad_job_file: job.json is not valid JSON/],
    [{}, {}, /^✖ no_command: give --command "…" or put a job.json with a "command" in /],
    [
      {},
      { command: 'x', data: '/nonexistent.csv' },
      /^✖ data_missing: cannot read the data file \/nonexistent.csv$/,
    ],
    [
      {},
      { command: 'x', target: 'nope' },
      /^✖ missing_column: the data has no column "nope" \(columns: a, b, label\)$/,
    ],
    [{}, { command: 'x', features: ['a', 'c'] }, /^✖ missing_column: the dataset has no column "c"/],
    // The options go through the pipeline's job spec schema: its limits hold here too.
    [
      {},
      { command: 'x', hyperparameters: { blob: 'x'.repeat(40_000) } },
      /^✖ bad_job_spec: hyperparameters: hyperparameters are over 32 KB of JSON$/,
    ],
  ])('refuses %j %j with a named error and exit 1', async (files, args, expected) => {
    const { code, lines } = await run({ folder: await folder(files), ...args });
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(expected);
  });

  it('names the file the MLmodel points at when it is missing', async () => {
    const dir = await folder({
      'job.js': `require('node:fs').writeFileSync(process.env.SLUICE_OUTPUT + '/MLmodel', 'flavors:\\n  onnx:\\n    data: m.onnx\\n');`,
    });
    const { code, lines } = await run({ folder: dir, command: `${NODE} job.js` });
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe(
      '✖ onnx_invalid: MLmodel names the ONNX file m.onnx, which the folder does not have',
    );
  });

  it('shows the time limit as the reason a slow job failed', async () => {
    const dir = await folder({ 'job.js': 'setInterval(() => {}, 1000);' });
    const { code, lines } = await run({ folder: dir, command: `${NODE} job.js`, timeLimitSeconds: 1 });
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe(
      '✖ time_limit_exceeded: the job ran past its time limit of 1 s and was stopped',
    );
  });
});
