/**
 * Review of issue 15, HIGH: any pipeline author could run commands on the Functions host — a custom
 * spec on the `local` backend ran `command` in any host folder `code`, and a python_function
 * model's `score` command ran on the host whatever the backend. USER_CODE_LOCAL (default true only
 * on a laptop) and USER_CODE_ROOT now bound both, at PUT, at submit and at scoring, and a path
 * outside the root is refused without telling whether it exists.
 */
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HttpRequest } from '@azure/functions';
import { putPipeline } from '../../../functions/putPipeline';
import { loadConfig, runsLocally } from '../../../lib/config';
import type { Services } from '../../../lib/services';
import { userCodeBackends, userCodeScoreCommand } from '../../../lib/services';
import type { RunScoreCommand } from '../../../lib/scoring/scoreCommand';
import type { TrainingBackend } from '../../../lib/training/backends/types';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import { confineCodeFolder, userCodePolicy } from '../../../lib/training/userJob/codePolicy';
import { preflightLocalJob } from '../../../lib/training/userJob/preflight';

const repo = path.resolve(__dirname, '..', '..', '..');
const base = { COSMOS_ENDPOINT: 'http://127.0.0.1:8081' };

let work: string;
let root: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sluice-usercode-'));
  root = path.join(work, 'root');
  await mkdir(path.join(root, 'job'), { recursive: true });
  await writeFile(path.join(root, 'job', 'train.py'), 'print(1)\n');
  await mkdir(path.join(work, 'elsewhere'));
  await symlink(path.join(work, 'elsewhere'), path.join(root, 'escape'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('USER_CODE_LOCAL defaults to true only on a laptop', () => {
  it.each([
    ['UseDevelopmentStorage=true', {}, true],
    [
      'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;BlobEndpoint=http://127.0.0.1:10000/a;',
      {},
      true,
    ],
    [
      'DefaultEndpointsProtocol=http;AccountName=a;AccountKey=k;BlobEndpoint=http://localhost:10000/a',
      {},
      true,
    ],
    ['DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;EndpointSuffix=core.windows.net', {}, false],
    ['DefaultEndpointsProtocol=http;BlobEndpoint=http://127.evil.example.com/a', {}, false],
    ['UseDevelopmentStorage=true', { WEBSITE_INSTANCE_ID: 'abc123' }, false],
  ])('%s %j → %s', (connection, extra, local) => {
    const env = { ...base, ARTIFACT_STORAGE_CONNECTION: connection, ...extra };
    expect(runsLocally(env)).toBe(local);
    expect(loadConfig(env).USER_CODE_LOCAL).toBe(local);
  });

  it('is false with an account URL (Azure), and an explicit setting wins either way', () => {
    expect(
      loadConfig({ ...base, ARTIFACT_STORAGE_ACCOUNT_URL: 'https://a.blob.core.windows.net' })
        .USER_CODE_LOCAL,
    ).toBe(false);
    expect(
      loadConfig({
        ...base,
        ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
        USER_CODE_LOCAL: 'false',
      }).USER_CODE_LOCAL,
    ).toBe(false);
    expect(
      loadConfig({
        ...base,
        ARTIFACT_STORAGE_ACCOUNT_URL: 'https://a.blob.core.windows.net',
        USER_CODE_LOCAL: 'true',
      }).USER_CODE_LOCAL,
    ).toBe(true);
    expect(
      loadConfig({ ...base, ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true' }).USER_CODE_ROOT,
    ).toBe('.');
  });
});

describe('code folders are confined to USER_CODE_ROOT', () => {
  it('returns the folder inside the root, symlinks resolved', async () => {
    await expect(confineCodeFolder('job', root, root)).resolves.toBe(path.join(await realRoot(), 'job'));
  });

  it('refuses a host folder outside the root without saying whether it exists', async () => {
    const existing = await confineCodeFolder('/etc', root, root).catch((e: unknown) => e);
    const missing = await confineCodeFolder('/no/such/folder/anywhere', root, root).catch((e: unknown) => e);
    const dotdot = await confineCodeFolder('../elsewhere', root, root).catch((e: unknown) => e);
    for (const err of [existing, missing, dotdot]) expect(err).toMatchObject({ code: 'code_outside_root' });
    expect((existing as Error).message.replace('/etc', 'X')).toBe(
      (missing as Error).message.replace('/no/such/folder/anywhere', 'X'),
    );
    expect((existing as Error).message).toContain('USER_CODE_ROOT');
  });

  it('refuses a symlink inside the root that leads out of it', async () => {
    await expect(confineCodeFolder('escape', root, root)).rejects.toMatchObject({
      code: 'code_outside_root',
    });
  });

  it('a missing folder inside the root is still code_folder_missing', async () => {
    await expect(confineCodeFolder('nope', root, root)).rejects.toMatchObject({
      code: 'code_folder_missing',
    });
  });

  it('preflightLocalJob applies the policy: user_code_disabled, then code_outside_root, on the code field', async () => {
    const spec = { code: 'job', command: '/usr/bin/python3 train.py' };
    await expect(
      preflightLocalJob(spec, { cwd: root, policy: { local: false, root } }),
    ).rejects.toMatchObject({ code: 'user_code_disabled', field: 'code' });
    await expect(
      preflightLocalJob({ ...spec, code: '/etc' }, { cwd: root, policy: { local: true, root } }),
    ).rejects.toMatchObject({ code: 'code_outside_root', field: 'code' });
    await expect(
      preflightLocalJob(spec, { cwd: root, policy: { local: true, root } }),
    ).resolves.toMatchObject({
      code: path.join(await realRoot(), 'job'),
    });
  });
});

async function realRoot() {
  const { realpath } = await import('node:fs/promises');
  return realpath(root);
}

describe('PUT /api/pipelines refuses users code the host does not allow', () => {
  const definition = async (training: Record<string, unknown>) => {
    const def = JSON.parse(
      await readFile(path.join(repo, 'examples', 'pipelines', 'wages.json'), 'utf8'),
    ) as Record<string, unknown>;
    def.training = {
      algorithm: 'custom',
      code: 'examples/training/sklearn',
      command: '/usr/bin/python3 train.py',
      target: 'wage',
      features: ['education', 'experience'],
      split: { train: 0.7, validation: 0.1, holdout: 0.2 },
      ...training,
    };
    return def;
  };
  const put = async (config: { USER_CODE_LOCAL: boolean; USER_CODE_ROOT: string }, def: unknown) => {
    const stored = jest.fn(async (name: string) => ({
      name,
      version: 1,
      createdAt: '2026-03-01T00:00:00.000Z',
    }));
    const deps = {
      config,
      pipelines: { put: stored },
      artifacts: { exists: async () => true },
    } as unknown as Pick<Services, 'pipelines' | 'artifacts' | 'config'>;
    const res = (await putPipeline(deps)(
      new HttpRequest({
        method: 'PUT',
        url: 'http://localhost:7071/api/pipelines/wages',
        params: { name: 'wages' },
        headers: { 'content-type': 'application/json' },
        body: { string: JSON.stringify(def) },
      }),
    )) as { status: number; jsonBody: { code?: string; field?: string; detail?: string } };
    return { res, stored };
  };

  it('a local custom job with USER_CODE_LOCAL=false: 400 user_code_disabled naming the setting', async () => {
    const { res, stored } = await put({ USER_CODE_LOCAL: false, USER_CODE_ROOT: repo }, await definition({}));
    expect(res.status).toBe(400);
    expect(res.jsonBody).toMatchObject({ code: 'user_code_disabled', field: 'training.code' });
    expect(res.jsonBody.detail).toContain('USER_CODE_LOCAL');
    expect(stored).not.toHaveBeenCalled();
  });

  it('a local custom job whose code is a host folder outside the root: 400 code_outside_root', async () => {
    const { res, stored } = await put(
      { USER_CODE_LOCAL: true, USER_CODE_ROOT: repo },
      await definition({ code: '/etc' }),
    );
    expect(res.status).toBe(400);
    expect(res.jsonBody).toMatchObject({ code: 'code_outside_root', field: 'training.code' });
    expect(stored).not.toHaveBeenCalled();
  });

  it('a score command on another backend needs USER_CODE_LOCAL too (it runs on this host)', async () => {
    const def = await definition({
      backend: 'azureml',
      score: '/usr/bin/python3 score.py',
    });
    const off = await put({ USER_CODE_LOCAL: false, USER_CODE_ROOT: repo }, def);
    expect(off.res.status).toBe(400);
    expect(off.res.jsonBody).toMatchObject({ code: 'user_code_disabled', field: 'training.score' });
    const outside = await put(
      { USER_CODE_LOCAL: true, USER_CODE_ROOT: repo },
      await definition({ backend: 'azureml', code: '/etc', score: '/usr/bin/python3 score.py' }),
    );
    expect(outside.res.jsonBody).toMatchObject({ code: 'code_outside_root', field: 'training.code' });
  });

  it('the allowed case still saves', async () => {
    const { res, stored } = await put({ USER_CODE_LOCAL: true, USER_CODE_ROOT: repo }, await definition({}));
    expect(res.status).toBe(201);
    expect(stored).toHaveBeenCalled();
  });
});

describe('submit and score apply the same rules (a stored pipeline may predate them)', () => {
  const request = (backend: 'local' | 'azureml', code: string): TrainingJobRequestInput =>
    ({
      jobId: 'job-1',
      spec: {
        algorithm: 'custom',
        backend,
        code,
        command: '/usr/bin/python3 train.py',
        target: 'y',
        features: ['x'],
      },
    }) as unknown as TrainingJobRequestInput;
  const fakeBackends = () => {
    const submitted: TrainingJobRequestInput[] = [];
    const backend = (name: 'local' | 'azureml'): TrainingBackend => ({
      name,
      submit: async (r) => {
        submitted.push(r);
        return { jobId: r.jobId, created: true };
      },
      status: () => Promise.reject(new Error('not used')),
      cancel: async () => undefined,
    });
    const local = backend('local');
    const azureml = backend('azureml');
    return { submitted, backends: (n: string) => (n === 'local' ? local : azureml) };
  };

  it('local submit: user_code_disabled, code_outside_root, and the backend never sees the job', async () => {
    const { submitted, backends } = fakeBackends();
    const off = userCodeBackends(backends as never, { local: false, root });
    await expect(off('local').submit(request('local', path.join(root, 'job')))).rejects.toMatchObject({
      code: 'user_code_disabled',
    });
    const on = userCodeBackends(backends as never, { local: true, root });
    await expect(on('local').submit(request('local', '/etc'))).rejects.toMatchObject({
      code: 'code_outside_root',
    });
    expect(submitted).toEqual([]);
    await on('local').submit(request('local', path.join(root, 'job')));
    expect(submitted).toHaveLength(1);
  });

  it('azureml submit: a host folder must be inside the root (it is uploaded); an asset is not a host folder', async () => {
    const { submitted, backends } = fakeBackends();
    const guarded = userCodeBackends(backends as never, { local: false, root });
    await expect(guarded('azureml').submit(request('azureml', '/home'))).rejects.toMatchObject({
      code: 'code_outside_root',
    });
    await guarded('azureml').submit(request('azureml', path.join(root, 'job')));
    await guarded('azureml').submit(request('azureml', 'azureml:my-code:3'));
    expect(submitted).toHaveLength(2);
  });

  it('score command: user_code_disabled whatever the backend, code confined, run in the real folder', async () => {
    const calls: string[] = [];
    const run: RunScoreCommand = async (o) => {
      calls.push(o.spec.code);
      return { values: [1] } as never;
    };
    const options = (code: string) =>
      ({
        spec: { code, score: 'x' },
        modelDir: work,
        rows: [],
        workDir: work,
      }) as unknown as Parameters<RunScoreCommand>[0];
    await expect(
      userCodeScoreCommand(run, { local: false, root })(options(path.join(root, 'job'))),
    ).rejects.toMatchObject({
      code: 'user_code_disabled',
    });
    const on = userCodeScoreCommand(run, { local: true, root });
    await expect(on(options('/etc'))).rejects.toMatchObject({ code: 'code_outside_root' });
    await expect(on(options(path.join(root, 'escape')))).rejects.toMatchObject({ code: 'code_outside_root' });
    expect(calls).toEqual([]);
    await on(options(path.join(root, 'job')));
    expect(calls).toEqual([path.join(await realRoot(), 'job')]);
  });

  it('userCodePolicy resolves a relative root against the working directory', () => {
    expect(userCodePolicy({ USER_CODE_LOCAL: true, USER_CODE_ROOT: 'code' }, '/srv/app')).toEqual({
      local: true,
      root: '/srv/app/code',
    });
  });
});
