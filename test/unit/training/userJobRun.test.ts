import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { SluiceError } from '../../../lib/errors';
import type { Table } from '../../../lib/data/table';
import { valueAt } from '../../../lib/data/table';
import { SLUICE_VARIABLE_NAMES } from '../../../lib/contracts/job';
import { datasetFromTable } from '../../../lib/training/dataset';
import { splitByRowHash } from '../../../lib/training/split';
import type { JobData } from '../../../lib/training/userJob/jobData';
import { writeJobData } from '../../../lib/training/userJob/jobData';
import { resolveExecutable } from '../../../lib/training/userJob/process';
import type { ModelExpectation, RunUserJobOptions } from '../../../lib/training/userJob/run';
import { runUserJob, UserJobError } from '../../../lib/training/userJob/run';
import { defaultModelMaxBytes } from '../../../lib/mlmodel/folder';
import { gone } from '../../support/processes';

/** The fake jobs are Node scripts run by this very Node binary (quoted: the path may hold spaces). */
const NODE = `'${process.execPath}'`;

const CSV = [
  'x,color,flag,y',
  ...Array.from(
    { length: 60 },
    (_, i) => `${i % 7},${['red', 'green', 'blue'][i % 3]},${i % 2 === 0},${i % 5 === 0 ? 'churn' : 'stay'}`,
  ),
  '3,red,true,', // no target: left out
].join('\n');

let root: string;
let data: JobData;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-userjob-'));
  const { table } = await readDataset(Buffer.from(CSV));
  data = await writeJobData(join(root, 'data'), {
    table,
    contract: inferDatasetContract(table),
    target: 'y',
    features: ['x', 'color', 'flag'],
    seed: 7,
    split: { train: 0.6, validation: 0.2, holdout: 0.2 },
  });
});
afterAll(() => rm(root, { recursive: true, force: true }));

let n = 0;
/** A code folder holding `job.js`, and a fresh work folder. */
async function job(script: string): Promise<{ code: string; work: string }> {
  const dir = join(root, `job${++n}`);
  await mkdir(join(dir, 'code'), { recursive: true });
  await writeFile(join(dir, 'code', 'job.js'), script);
  return { code: join(dir, 'code'), work: join(dir, 'work') };
}

const writesModel = `
const fs = require('node:fs');
fs.writeFileSync(process.env.SLUICE_OUTPUT + '/MLmodel', 'flavors: {}\\n');
`;

function options(
  where: { code: string; work: string },
  over: Partial<RunUserJobOptions> & { command?: string; timeLimitSeconds?: number } = {},
): RunUserJobOptions & { seen: ModelExpectation[] } {
  const seen: ModelExpectation[] = [];
  return {
    jobId: 'job-1',
    spec: {
      code: where.code,
      command: over.command ?? `${NODE} job.js`,
      hyperparameters: { C: 0.5, note: 'kept "verbatim"' },
      timeLimitSeconds: over.timeLimitSeconds ?? 60,
    },
    data,
    workDir: where.work,
    check: async (dir, e) => {
      seen.push(e);
      return { digest: 'd'.repeat(64), manifest: [], flavor: 'onnx', onnxPath: join(dir, 'model.onnx') };
    },
    baseEnv: { PATH: process.env.PATH ?? '', HOME: '/nonexistent-home', SECRET_CONNECTION: 'must not leak' },
    killGraceMs: 200,
    ...over,
    seen,
  };
}

async function failure(p: Promise<unknown>): Promise<SluiceError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SluiceError) return err;
    throw err;
  }
  throw new Error('expected the job to fail');
}

describe('the job data under sluice.job/v1', () => {
  it('splits by the same row hash as the built-in training, over target + features, leaving out rows without a target', async () => {
    const { table } = await readDataset(Buffer.from(CSV));
    const ds = datasetFromTable(table);
    const split = splitByRowHash(ds, { train: 0.6, validation: 0.2, holdout: 0.2 }, 7, [
      'color',
      'flag',
      'x',
      'y',
    ]);
    const noTarget = table.rows - 1;
    const count = (rows: Uint32Array) => rows.filter((r) => r !== noTarget).length;
    expect([data.train.rows, data.validation.rows, data.holdout.rows]).toEqual([
      count(split.train),
      count(split.validation),
      count(split.holdout),
    ]);
    expect(data.missingTarget).toBe(1);
    expect(data.train.rows + data.validation.rows + data.holdout.rows).toBe(60);
    // The very rows the built-in split puts in each part, not only as many of them.
    const order = ['x', 'color', 'flag', 'y'].map((n) => table.columns.find((c) => c.name === n)!);
    const picked = (rows: Uint32Array) =>
      Array.from(rows)
        .filter((r) => r !== noTarget)
        .map((r) => order.map((c) => valueAt(c, r)).join('|'))
        .sort();
    for (const [part, rows] of [
      [data.train, split.train],
      [data.validation, split.validation],
      [data.holdout, split.holdout],
    ] as const) {
      const written = (await readDataset(await readFile(part.csv))).table;
      const lines = Array.from({ length: written.rows }, (_, i) =>
        written.columns.map((c) => valueAt(c, i)).join('|'),
      );
      expect(lines.sort()).toEqual(picked(rows));
    }
  });

  it('writes each part as CSV and Parquet holding the same rows, features first then the target', async () => {
    for (const part of [data.train, data.validation, data.holdout]) {
      const csv = await readDataset(await readFile(part.csv));
      const parquet = await readDataset(await readFile(part.parquet));
      expect(csv.table.columns.map((c) => c.name)).toEqual(['x', 'color', 'flag', 'y']);
      expect(parquet.format).toBe('parquet');
      // Typed columns in the Parquet file: integers, text, booleans (text as category or string by cardinality).
      expect(parquet.table.columns.map((c) => [c.name, c.type === 'category' ? 'string' : c.type])).toEqual([
        ['x', 'integer'],
        ['color', 'string'],
        ['flag', 'boolean'],
        ['y', 'string'],
      ]);
      expect(parquet.table.rows).toBe(part.rows);
      expect(csv.table.rows).toBe(part.rows);
      const rows = (t: Table) =>
        Array.from({ length: t.rows }, (_, i) => t.columns.map((c) => valueAt(c, i)).join('|'));
      expect(rows(parquet.table)).toEqual(rows(csv.table));
    }
    expect(readFileSync(data.train.csv, 'utf8').split('\n')[0]).toBe('x,color,flag,y');
  });

  it('writes numbers, missing values, datetimes and quoted text alike to CSV and Parquet', async () => {
    const csv = [
      'full,gappy,at,text,y',
      ...Array.from(
        { length: 40 },
        (_, i) =>
          `${i / 8},${i % 4 === 0 ? '' : i * 1.5},2024-01-${String((i % 28) + 1).padStart(2, '0')}T10:00:00Z,"a, ""b"" ${i % 3}",${i % 2}`,
      ),
    ].join('\n');
    const { table } = await readDataset(Buffer.from(csv));
    const written = await writeJobData(join(root, 'typed'), {
      table,
      contract: inferDatasetContract(table),
      target: 'y',
      features: ['full', 'gappy', 'at', 'text'],
      seed: 3,
      split: { train: 1, validation: 0, holdout: 0 },
    });
    expect(written.train.rows).toBe(40);
    expect(written.task).toBe('regression');
    expect(written.validation.rows).toBe(0);
    const fromCsv = (await readDataset(await readFile(written.train.csv))).table;
    const fromParquet = (await readDataset(await readFile(written.train.parquet))).table;
    expect(fromParquet.columns.map((c) => c.type)).toEqual([
      'number',
      'number',
      'datetime',
      'category',
      'integer',
    ]);
    const rows = (t: Table) => Array.from({ length: t.rows }, (_, i) => t.columns.map((c) => valueAt(c, i)));
    expect(rows(fromParquet)).toEqual(rows(fromCsv));
    expect(rows(fromCsv)).toEqual(rows(table));
    expect(readFileSync(written.validation.csv, 'utf8')).toBe('full,gappy,at,text,y\n');
  });

  it('writes the dataset contract and describes the task, classes and feature kinds', () => {
    const contract = JSON.parse(readFileSync(data.contractFile, 'utf8')) as { columns: { name: string }[] };
    expect(contract.columns.map((c) => c.name)).toEqual(['x', 'color', 'flag', 'y']);
    expect(data.task).toBe('classification');
    expect(data.classes).toEqual(['churn', 'stay']);
    expect(data.featureKinds).toEqual([
      { name: 'x', kind: 'number' },
      { name: 'color', kind: 'string' },
      { name: 'flag', kind: 'string' },
    ]);
    expect(data.sample[0]).toEqual({
      x: expect.any(Number),
      color: expect.any(String),
      flag: expect.stringMatching(/^(true|false)$/),
    });
  });

  it('refuses a target listed as a feature, a missing column, and regression on a text target', async () => {
    const { table } = await readDataset(Buffer.from(CSV));
    const base = {
      table,
      contract: inferDatasetContract(table),
      seed: 1,
      split: { train: 0.6, validation: 0.2, holdout: 0.2 },
    };
    const dir = join(root, 'refused');
    expect((await failure(writeJobData(dir, { ...base, target: 'y', features: ['x', 'y'] }))).code).toBe(
      'target_is_feature',
    );
    expect((await failure(writeJobData(dir, { ...base, target: 'y', features: ['nope'] }))).message).toMatch(
      /no column "nope"/,
    );
    expect(
      (await failure(writeJobData(dir, { ...base, target: 'y', features: ['x'], task: 'regression' }))).code,
    ).toBe('target_not_numeric');
  });
});

describe('runUserJob (local, sluice.job/v1)', () => {
  it('sets every contract variable, passes only the allowed environment, and runs in the code folder', async () => {
    const where = await job(`
const fs = require('node:fs');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('SLUICE_') || ['HOME', 'SECRET_CONNECTION', 'PYTHONUNBUFFERED'].includes(k)));
fs.writeFileSync(process.env.SLUICE_OUTPUT + '/env.json', JSON.stringify({ env, cwd: process.cwd(), argv: process.argv.slice(2) }));
`);
    const o = options(where, {
      command: `${NODE} job.js --out=\${SLUICE_OUTPUT} "\${SLUICE_HYPERPARAMETERS}"`,
    });
    const outcome = await runUserJob(o);
    const seen = JSON.parse(readFileSync(join(outcome.outputDir, 'env.json'), 'utf8')) as {
      env: Record<string, string>;
      cwd: string;
      argv: string[];
    };
    expect(
      Object.keys(seen.env)
        .filter((k) => k.startsWith('SLUICE_'))
        .sort(),
    ).toEqual([...SLUICE_VARIABLE_NAMES].sort());
    expect(seen.env).toMatchObject({
      SLUICE_JOB_ID: 'job-1',
      SLUICE_TRAIN: data.train.csv,
      SLUICE_VALIDATION: data.validation.csv,
      SLUICE_HOLDOUT: data.holdout.csv,
      SLUICE_TRAIN_PARQUET: data.train.parquet,
      SLUICE_CONTRACT: data.contractFile,
      SLUICE_TARGET: 'y',
      SLUICE_FEATURES: '["x","color","flag"]',
      SLUICE_TASK: 'classification',
      SLUICE_HYPERPARAMETERS: '{"C":0.5,"note":"kept \\"verbatim\\""}',
      SLUICE_SEED: '7',
      SLUICE_OUTPUT: join(where.work, 'output'),
      HOME: '/nonexistent-home',
      PYTHONUNBUFFERED: '1',
    });
    expect(seen.env.SECRET_CONNECTION).toBe('must not leak'); // the caller's baseEnv is the whole environment given
    expect(seen.cwd).toBe(where.code);
    expect(seen.argv).toEqual([
      `--out=${join(where.work, 'output')}`,
      '{"C":0.5,"note":"kept \\"verbatim\\""}',
    ]);
    expect(outcome.model.digest).toBe('d'.repeat(64));
    expect(o.seen).toEqual([
      {
        features: data.featureKinds,
        task: 'classification',
        classes: ['churn', 'stay'],
        maxBytes: defaultModelMaxBytes,
        sample: data.sample,
      },
    ]);
  });

  it("by default hands the job PATH, HOME and the locale of Sluice's environment, never its other settings", async () => {
    const where = await job(`
require('node:fs').writeFileSync(process.env.SLUICE_OUTPUT + '/keys.json', JSON.stringify(Object.keys(process.env)));
`);
    process.env.SLUICE_TEST_SECRET_SETTING = 'x';
    try {
      const o = options(where);
      delete o.baseEnv;
      const outcome = await runUserJob(o);
      const keys = JSON.parse(readFileSync(join(outcome.outputDir, 'keys.json'), 'utf8')) as string[];
      expect(keys).not.toContain('SLUICE_TEST_SECRET_SETTING');
      expect(
        keys
          .filter((k) => !k.startsWith('SLUICE_'))
          .every((k) =>
            [
              'PATH',
              'HOME',
              'LANG',
              'LC_ALL',
              'LC_CTYPE',
              'TMPDIR',
              'TZ',
              'USER',
              'PYTHONUNBUFFERED',
            ].includes(k),
          ),
      ).toBe(true);
    } finally {
      delete process.env.SLUICE_TEST_SECRET_SETTING;
    }
  });

  it('streams output lines as they come, writes them to job.log and keeps the tail', async () => {
    const where = await job(`${writesModel}
for (let i = 1; i <= 60; i++) console.log('line ' + i);
console.error('to stderr');
process.stdout.write('no newline at the end');
`);
    const lines: string[] = [];
    const outcome = await runUserJob({ ...options(where), onLine: (l) => lines.push(l) });
    expect(lines).toHaveLength(62);
    expect(lines).toContain('to stderr');
    expect(lines.at(-1)).toBe('no newline at the end');
    expect(outcome.logTail).toHaveLength(50);
    expect(outcome.logTail.at(-1)).toBe('no newline at the end');
    const log = readFileSync(outcome.logFile, 'utf8');
    expect(log).toContain('line 1\n');
    expect(log).toContain('to stderr');
  });

  it('fails a job that exits non-zero with job_failed, the exit code and the log tail', async () => {
    const where = await job(
      `console.log('loading'); console.error('ValueError: bad column'); process.exit(3);`,
    );
    const err = await failure(runUserJob(options(where)));
    expect(err).toBeInstanceOf(UserJobError);
    expect(err.code).toBe('job_failed');
    expect(err.message).toMatch(
      /exited with code 3; last lines of the log:\nloading\nValueError: bad column$/,
    );
    expect((err as UserJobError).logTail).toEqual(['loading', 'ValueError: bad column']);
  });

  it('stops a job past its time limit by killing its whole process group, grandchildren included', async () => {
    const where = await job(`
const { spawn } = require('node:child_process');
const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
require('node:fs').writeFileSync(process.argv[2], String(child.pid));
console.log('started ' + child.pid);
process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
setInterval(() => {}, 1000);
`);
    const pidFile = join(where.code, 'grandchild.pid');
    const err = await failure(
      runUserJob(options(where, { command: `${NODE} job.js ${pidFile}`, timeLimitSeconds: 1 })),
    );
    expect(err.code).toBe('time_limit_exceeded');
    expect(err.message).toMatch(/past its time limit of 1 s/);
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    expect(await gone(grandchild)).toBe(true);
  });

  it('kills what a successful job left running in its group', async () => {
    const where = await job(`${writesModel}
const { spawn } = require('node:child_process');
const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'inherit' });
require('node:fs').writeFileSync(process.argv[2], String(child.pid));
child.unref();
`);
    const pidFile = join(where.code, 'left.pid');
    await runUserJob(options(where, { command: `${NODE} job.js ${pidFile}` }));
    expect(await gone(Number(readFileSync(pidFile, 'utf8')))).toBe(true);
  });

  it('does not wait forever on a process that left the group and still holds the output pipes', async () => {
    const where = await job(`${writesModel}
const { spawn } = require('node:child_process');
const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'inherit', detached: true });
require('node:fs').writeFileSync(process.argv[2], String(child.pid));
child.unref();
console.log('leaving');
`);
    const pidFile = join(where.code, 'escaped.pid');
    try {
      const outcome = await runUserJob(options(where, { command: `${NODE} job.js ${pidFile}` }));
      expect(outcome.logTail).toEqual(['leaving']);
    } finally {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); // the test's own grandchild
    }
  });

  it('stops a job when the caller cancels', async () => {
    const where = await job(`console.log('up'); setInterval(() => {}, 1000);`);
    const abort = new AbortController();
    const err = await failure(
      runUserJob({ ...options(where), onLine: (l) => l === 'up' && abort.abort(), signal: abort.signal }),
    );
    expect(err.code).toBe('canceled');
  });

  it('names a command that is not on PATH', async () => {
    const where = await job(writesModel);
    const err = await failure(runUserJob(options(where, { command: 'python3-sluice-absent train.py' })));
    expect(`${err.code}: ${err.message}`).toBe('command_not_found: python3-sluice-absent not found on PATH');
  });

  it('names a relative command missing from the code folder, and one that is not executable', async () => {
    const where = await job(writesModel);
    expect((await failure(runUserJob(options(where, { command: './train.sh' })))).message).toBe(
      './train.sh not found in the code folder',
    );
    await writeFile(join(where.code, 'train.sh'), '#!/bin/sh\n');
    await chmod(join(where.code, 'train.sh'), 0o644);
    expect((await failure(runUserJob(options(where, { command: './train.sh' })))).code).toBe(
      'command_not_executable',
    );
  });

  it('looks a bare command up on the PATH the job gets, not on the current directory', async () => {
    await expect(resolveExecutable('sh', '/', '/nonexistent:/bin:/usr/bin')).resolves.toMatch(/\/sh$/);
    const err = await failure(resolveExecutable('job.js', root, '/nonexistent'));
    expect(err.message).toBe('job.js not found on PATH');
  });

  it('fails when the code folder is missing, before anything runs', async () => {
    const where = { code: join(root, 'no-such-folder'), work: join(root, 'work-missing') };
    const err = await failure(runUserJob(options(where)));
    expect(`${err.code}: ${err.message}`).toBe(
      `code_folder_missing: the code folder ${where.code} does not exist`,
    );
    expect(existsSync(where.work)).toBe(false);
  });

  it('fails a job that exits 0 but writes nothing, without calling the check', async () => {
    const where = await job(`console.log('done, I think');`);
    const o = options(where);
    const err = await failure(runUserJob(o));
    expect(err.code).toBe('output_empty');
    expect(err.message).toMatch(/wrote nothing to SLUICE_OUTPUT/);
    expect(o.seen).toEqual([]);
  });

  it("passes the check's refusal on as it is", async () => {
    const where = await job(writesModel);
    const o = options(where);
    o.check = () => Promise.reject(new UserJobError('onnx_invalid', 'model.onnx does not load', []));
    expect((await failure(runUserJob(o))).code).toBe('onnx_invalid');
  });
});
