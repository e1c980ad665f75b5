/**
 * Review of issue 15, MEDIUM: approval bound the model but not the code that produced it. A local
 * user job now records its code folder's manifest digest (without .git and __pycache__) on the job
 * result, and the run's train step shows it.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { trainOutputsSchema } from '../../../lib/contracts/run';
import { jobResultSchema } from '../../../lib/contracts/trainingJob';
import { codeFolderDigest } from '../../../lib/training/userJob/codeDigest';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-code-digest-'));
  await writeFile(path.join(dir, 'train.py'), 'print("train")\n');
  await mkdir(path.join(dir, 'lib'));
  await writeFile(path.join(dir, 'lib', 'util.py'), 'X = 1\n');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the code digest of a local user job', () => {
  it('ignores .git and __pycache__, and changes with any file of the code', async () => {
    const first = await codeFolderDigest(dir);
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    await mkdir(path.join(dir, '__pycache__'));
    await writeFile(path.join(dir, '__pycache__', 'train.cpython-311.pyc'), 'bytecode');
    await mkdir(path.join(dir, '.git'));
    await writeFile(path.join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    expect(await codeFolderDigest(dir)).toBe(first);
    await writeFile(path.join(dir, 'lib', 'util.py'), 'X = 2\n');
    expect(await codeFolderDigest(dir)).not.toBe(first);
  });

  it('is left out, not a failure, when the folder is over the size limit', async () => {
    await expect(codeFolderDigest(dir, 4)).resolves.toBeUndefined();
  });

  it('is an optional field of the job result and of the train step outputs', async () => {
    const codeDigest = (await codeFolderDigest(dir))!;
    const result = {
      modelUri: 'https://a/models/x',
      modelDigest: 'a'.repeat(64),
      algorithm: 'custom',
      task: 'regression',
      metrics: {},
      rows: {},
      iterations: 0,
      converged: true,
    };
    expect(jobResultSchema.parse({ ...result, codeDigest }).codeDigest).toBe(codeDigest);
    expect(jobResultSchema.parse(result).codeDigest).toBeUndefined();
    expect(() => jobResultSchema.parse({ ...result, codeDigest: 'nope' })).toThrow();
    expect(trainOutputsSchema.parse({ jobId: 'j', backend: 'local', codeDigest }).codeDigest).toBe(
      codeDigest,
    );
  });
});
