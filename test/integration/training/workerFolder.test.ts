/**
 * The worker in folder mode, as an Azure ML command job runs it: request and dataset as mounted
 * files, the job's output folder as a directory.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadVerifiedModel } from '../../../lib/training/models/artifact';
import { syntheticClassification } from '../../../lib/training/synthetic';
import { columnarBytes } from '../../support/datasets';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..', '..');

describe('training worker in folder mode (Azure ML)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-worker-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ds = syntheticClassification({ rows: 1_500, features: 3, seed: 4 });
  const bytes = columnarBytes(ds);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(dir, 'dataset.bin'), bytes);

  const worker = (request: object, out: string) => {
    writeFileSync(join(dir, 'request.json'), JSON.stringify(request));
    return run(
      process.execPath,
      [
        '-r',
        join(ROOT, 'test/support/registerTs.js'),
        join(ROOT, 'worker/trainingJob.ts'),
        '--request',
        join(dir, 'request.json'),
        '--dataset',
        join(dir, 'dataset.bin'),
        '--out',
        join(dir, out),
      ],
      {
        env: {
          ...process.env,
          SLUICE_OUTPUT_URI: `https://acct.blob.core.windows.net/jobs/${out}/`,
          SLUICE_HEARTBEAT_MS: '200',
        },
      },
    ).then(
      () => 0,
      (err: { code?: number }) => err.code ?? 1,
    );
  };
  const spec = { algorithm: 'logistic_regression', target: 'label', features: ['x0', 'x1', 'x2'] };

  it('writes status, log, metrics and the model into the output folder', async () => {
    expect(
      await worker({ jobId: 'aml-1', spec, dataset: { uri: 'https://acct/datasets/x', sha256 } }, 'aml-1'),
    ).toBe(0);
    const status = JSON.parse(readFileSync(join(dir, 'aml-1', 'status.json'), 'utf8'));
    expect(status).toMatchObject({ jobId: 'aml-1', state: 'completed', progress: 1 });
    expect(status.result.modelUri).toBe('https://acct.blob.core.windows.net/jobs/aml-1/model.json');
    const model = loadVerifiedModel(
      readFileSync(join(dir, 'aml-1', 'model.json')),
      status.result.modelDigest,
    );
    expect(model.classes).toEqual(['no', 'yes']);
    // The MLflow folder, apart from the job's own files, for the backend to store.
    expect(readdirSync(join(dir, 'aml-1', 'model')).sort()).toEqual(['MLmodel', 'model.json', 'model.onnx']);
    expect(readFileSync(join(dir, 'aml-1', 'model', 'model.json'))).toEqual(
      readFileSync(join(dir, 'aml-1', 'model.json')),
    );
    expect(readFileSync(join(dir, 'aml-1', 'log.txt'), 'utf8')).toContain('trained logistic_regression');
    expect(JSON.parse(readFileSync(join(dir, 'aml-1', 'heartbeat.json'), 'utf8')).seq).toBeGreaterThan(0);
  }, 60_000);

  it('stores a model whose feature is named like an ONNX output as JSON only, as before model folders', async () => {
    const renamed = {
      ...ds,
      columns: ds.columns.map((c) => (c.name === 'x2' ? { ...c, name: 'probabilities' } : c)),
    };
    const odd = columnarBytes(renamed);
    writeFileSync(join(dir, 'dataset.bin'), odd);
    const oddSha = createHash('sha256').update(odd).digest('hex');
    const oddSpec = { ...spec, features: ['x0', 'x1', 'probabilities'] };
    try {
      expect(
        await worker(
          { jobId: 'aml-3', spec: oddSpec, dataset: { uri: 'https://acct/datasets/y', sha256: oddSha } },
          'aml-3',
        ),
      ).toBe(0);
    } finally {
      writeFileSync(join(dir, 'dataset.bin'), bytes);
    }
    const status = JSON.parse(readFileSync(join(dir, 'aml-3', 'status.json'), 'utf8'));
    expect(status).toMatchObject({ state: 'completed' });
    expect(status.result.artifact).toBeUndefined();
    expect(
      loadVerifiedModel(readFileSync(join(dir, 'aml-3', 'model.json')), status.result.modelDigest).classes,
    ).toEqual(['no', 'yes']);
    expect(existsSync(join(dir, 'aml-3', 'model'))).toBe(false);
    expect(readFileSync(join(dir, 'aml-3', 'log.txt'), 'utf8')).toContain('no ONNX export');
  }, 60_000);

  it('fails with a clear code on a dataset whose digest does not match', async () => {
    expect(
      await worker(
        { jobId: 'aml-2', spec, dataset: { uri: 'https://acct/datasets/x', sha256: '0'.repeat(64) } },
        'aml-2',
      ),
    ).toBe(1);
    const status = JSON.parse(readFileSync(join(dir, 'aml-2', 'status.json'), 'utf8'));
    expect(status).toMatchObject({ state: 'failed', error: { code: 'BLOB_DIGEST_MISMATCH' } });
  }, 60_000);

  it('fails with the training error when the spec does not fit the data', async () => {
    expect(
      await worker(
        {
          jobId: 'aml-3',
          spec: { ...spec, features: ['nope'] },
          dataset: { uri: 'https://acct/datasets/x', sha256 },
        },
        'aml-3',
      ),
    ).toBe(1);
    const status = JSON.parse(readFileSync(join(dir, 'aml-3', 'status.json'), 'utf8'));
    expect(status).toMatchObject({ state: 'failed', error: { code: 'missing_column' } });
    expect(status.logTail.join('\n')).toContain('no column "nope"');
  }, 60_000);
});
