/**
 * The `score` command on Azure ML: a python_function-only model (examples/training/sklearn-pyfunc,
 * trained here on the host) is scored by a command job the ARM fake runs for real, with the model
 * folder and the rows staged as inputs and the predictions coming back through the job's own SAS
 * datastore; they equal the host's score command's and get the same checks.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CustomTrainingSpec } from '../../../lib/contracts/trainingSpec';
import { trainingSpecSchema } from '../../../lib/contracts/trainingSpec';
import { conformTable } from '../../../lib/data/checking/conform';
import { inferDatasetContract } from '../../../lib/data/checking/inferDatasetContract';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { checkModelFolder } from '../../../lib/mlmodel/check';
import { ArtifactStore } from '../../../lib/storage';
import { AzureMlTrainingBackend, jobOutputDatastore } from '../../../lib/training/backends/azureml';
import type { JobData } from '../../../lib/training/userJob/jobData';
import { writeJobData } from '../../../lib/training/userJob/jobData';
import { runUserJob } from '../../../lib/training/userJob/run';
import { jobOutputContainer } from '../../../lib/training/userJob/outputGrant';
import { runScoreCommand } from '../../../lib/training/userJob/score';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';
import type { FakeAzureMl } from '../../support/fakes/azureml';
import { startFakeAzureMl } from '../../support/fakes/azureml';

jest.setTimeout(180_000);

class TestCredential implements TokenCredential {
  async getToken(): Promise<AccessToken> {
    return { token: 'fake-arm-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

const ROOT = path.join(__dirname, '..', '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'training', 'sklearn-pyfunc');
const IMAGE = 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest';

let azurite: BlobEmulator;
let store: ArtifactStore;
let fake: FakeAzureMl;
let work: string;
let data: JobData;
let modelDir: string;
let rows: Record<string, unknown>[];

beforeAll(async () => {
  azurite = await startAzuriteBlob();
  store = ArtifactStore.fromConnectionString(azurite.connectionString);
  await store.ensureContainers();
  work = await mkdtemp(path.join(tmpdir(), 'sluice-azureml-score-'));
  const read = await readDataset(await readFile(path.join(ROOT, 'data', 'seattle-weather-2015.csv')));
  const contract = inferDatasetContract(read.table);
  data = await writeJobData(path.join(work, 'data'), {
    table: conformTable(read.table, contract),
    contract,
    target: 'weather',
    features: ['precipitation', 'temp_max', 'temp_min', 'wind'],
    seed: 42,
    split: { train: 0.7, validation: 0.15, holdout: 0.15 },
  });
  const outcome = await runUserJob({
    jobId: 'it-pyfunc',
    spec: { code: EXAMPLE, command: '/usr/bin/python3 train.py', hyperparameters: {}, timeLimitSeconds: 300 },
    data,
    workDir: path.join(work, 'train'),
    check: checkModelFolder,
  });
  expect(outcome.model.flavor).toBe('python_function');
  modelDir = outcome.outputDir;
  const [header, ...lines] = (await readFile(data.holdout.csv, 'utf8')).trimEnd().split('\n');
  const names = header!.split(',');
  rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [names[i]!, v])));
});
afterAll(async () => {
  await azurite?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  fake = await startFakeAzureMl({
    blobAccountUrl: store.service.url,
    execute: {
      read: async (uri) => (await store.getBuffer(uri)).data,
      write: async (uri, bytes) => {
        await store.put(uri, bytes, { condition: 'overwrite' });
      },
      list: async (folder) => {
        const [container, ...rest] = folder.slice(store.service.url.length + 1).split('/');
        const prefix = rest.join('/');
        const out: string[] = [];
        for await (const b of store.list(container!, prefix))
          out.push(`${store.service.url}/${container}/${b.path}`);
        return out;
      },
    },
  });
});
afterEach(() => fake.close());

const backend = () =>
  new AzureMlTrainingBackend({
    endpoint: fake.url,
    subscriptionId: 'sub-1',
    resourceGroup: 'rg-sluice',
    workspace: 'mlw-sluice',
    credential: new TestCredential(),
    storageBlobEndpoint: store.service.url,
    files: store,
    store,
    workspaceStorageEndpoint: fake.storageUrl,
    sleep: async () => undefined,
    scorePollMs: 1,
  });

const spec = (over: Record<string, unknown> = {}): CustomTrainingSpec =>
  trainingSpecSchema.parse({
    algorithm: 'custom',
    backend: 'azureml',
    code: EXAMPLE,
    command: '/usr/bin/python3 train.py',
    score: '/usr/bin/python3 score.py',
    target: 'weather',
    features: ['precipitation', 'temp_max', 'temp_min', 'wind'],
    azureml: { environment: IMAGE },
    timeLimitSeconds: 300,
    ...over,
  }) as CustomTrainingSpec;

describe('the score command as an Azure ML command job', () => {
  it('scores the holdout remotely, equal to the host, once per model and rows', async () => {
    const b = backend();
    const input = {
      spec: spec(),
      modelDir,
      rows,
      workDir: path.join(work, 'remote-1'),
      task: 'classification' as const,
      classes: data.classes!,
    };
    const scores = await b.score(input);
    const host = await runScoreCommand({ ...input, workDir: path.join(work, 'host-1') });
    expect(scores.labels).toHaveLength(data.holdout.rows);
    expect(scores.labels).toEqual(host.labels);
    expect(scores.probabilities).toEqual(host.probabilities);

    const [job] = [...fake.jobs.values()];
    const p = job!.body.properties as {
      command: string;
      inputs: Record<string, { jobInputType: string; uri: string }>;
      outputs: Record<string, { uri: string }>;
      tags: Record<string, string>;
    };
    expect(job!.id).toMatch(/^sluice-score-[0-9a-f]{40}$/);
    expect(p.tags).toMatchObject({ 'sluice.kind': 'score' });
    expect(p.inputs.model).toMatchObject({
      jobInputType: 'uri_folder',
      uri: expect.stringContaining(`/jobs/${job!.id}/model/`),
    });
    expect(p.inputs.input).toMatchObject({
      jobInputType: 'uri_file',
      uri: expect.stringContaining(`/jobs/${job!.id}/input.csv`),
    });
    expect(p.outputs.predictions!.uri).toBe(`azureml://datastores/${jobOutputDatastore(job!.id)}/paths/`);
    expect(p.command).toContain('SLUICE_PREDICTIONS="${{outputs.predictions}}/predictions.csv"');
    expect(fake.datastores.size).toBe(0); // the SAS datastore went with the job's end

    // The activity retried: the same job is found and read again, no second job.
    const again = await b.score({ ...input, workDir: path.join(work, 'remote-1b') });
    expect(again.labels).toEqual(scores.labels);
    expect(fake.jobs.size).toBe(1);
    expect(fake.requests.filter((r) => r.method === 'PUT' && r.path.includes('/jobs/'))).toHaveLength(1);
  });

  it('a score command that fails, or writes nothing, or writes too few rows fails with a named code', async () => {
    const bad = await mkdtemp(path.join(work, 'bad-'));
    await writeFile(
      path.join(bad, 'crash.py'),
      'import sys\nprint("no model here", file=sys.stderr)\nsys.exit(2)\n',
    );
    await writeFile(path.join(bad, 'nothing.py'), 'print("done")\n');
    await writeFile(
      path.join(bad, 'short.py'),
      'import os\nopen(os.environ["SLUICE_PREDICTIONS"], "w").write("label,p_sun\\nsun,1\\n")\n',
    );
    const b = backend();
    const run = (script: string) =>
      b.score({
        spec: spec({ code: bad, score: `/usr/bin/python3 ${script}` }),
        modelDir,
        rows,
        workDir: path.join(work, `bad-${script}`),
        task: 'classification',
        classes: data.classes!,
      });
    await expect(run('crash.py')).rejects.toMatchObject({ code: 'score_failed' });
    await expect(run('nothing.py')).rejects.toMatchObject({ code: 'predictions_missing' });
    await expect(run('short.py')).rejects.toMatchObject({ code: 'predictions_invalid' });
    await expect(
      b.score({ spec: spec({ score: undefined }), modelDir, rows, workDir: path.join(work, 'none') }),
    ).rejects.toMatchObject({ code: 'score_command_required' });
  });

  it('predictions over the size limit are predictions_invalid; rewritten after the first read (the SAS outlives the datastore), predictions_tampered', async () => {
    const input = {
      spec: spec(),
      modelDir,
      rows,
      workDir: path.join(work, 'pin'),
      task: 'classification' as const,
      classes: data.classes!,
    };
    const small = new AzureMlTrainingBackend({
      endpoint: fake.url,
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-sluice',
      workspace: 'mlw-sluice',
      credential: new TestCredential(),
      storageBlobEndpoint: store.service.url,
      files: store,
      store,
      workspaceStorageEndpoint: fake.storageUrl,
      sleep: async () => undefined,
      scorePollMs: 1,
      maxPredictionBytes: 100,
    });
    await expect(small.score(input)).rejects.toMatchObject({
      code: 'predictions_invalid',
      message: expect.stringContaining('over the limit of 100'),
    });
    const b = backend();
    const first = await b.score({ ...input, workDir: path.join(work, 'pin-1') });
    const [job] = [...fake.jobs.values()];
    expect(await store.exists({ container: 'jobs', path: `${job!.id}/predictions.pin.json` })).toBe(true);

    // The job's SAS outlives its datastore: whoever holds it rewrites the predictions (still valid).
    const at = { container: jobOutputContainer(job!.id), path: 'predictions.csv' };
    const text = (await store.getBuffer(at)).data.toString('utf8');
    const [header, ...lines] = text.trimEnd().split('\n');
    const flipped = lines.map((l) =>
      l.startsWith('sun,') ? l.replace(/^sun,/, 'rain,') : l.replace(/^\w+,/, 'sun,'),
    );
    await store.put(at, `${header}\n${flipped.join('\n')}\n`, { condition: 'overwrite' });
    await expect(b.score({ ...input, workDir: path.join(work, 'pin-2') })).rejects.toMatchObject({
      code: 'predictions_tampered',
    });
    await store.put(at, text, { condition: 'overwrite' });
    await expect(b.score({ ...input, workDir: path.join(work, 'pin-3') })).resolves.toEqual(first);
    expect(fake.jobs.size).toBe(1);
  });

  it('a score job that failed is followed by a new one on the next call, at most three in all', async () => {
    const flaky = await mkdtemp(path.join(work, 'flaky-'));
    const marker = path.join(flaky, 'flaky.marker');
    await writeFile(
      path.join(flaky, 'flaky.py'),
      [
        'import os, runpy, sys',
        `marker = ${JSON.stringify(marker)}`,
        'if not os.path.exists(marker):',
        '    open(marker, "w").close()',
        '    raise SystemExit("the first job fails")',
        `sys.path.insert(0, ${JSON.stringify(EXAMPLE)})`,
        `runpy.run_path(${JSON.stringify(path.join(EXAMPLE, 'score.py'))}, run_name="__main__")`,
        '',
      ].join('\n'),
    );
    await writeFile(path.join(flaky, 'crash.py'), 'raise SystemExit("no model here")\n');
    const b = backend();
    const input = (script: string) => ({
      spec: spec({ code: flaky, score: `/usr/bin/python3 ${script}` }),
      modelDir,
      rows,
      workDir: path.join(work, `flaky-${script}-${fake.jobs.size}`),
      task: 'classification' as const,
      classes: data.classes!,
    });
    await expect(b.score(input('flaky.py'))).rejects.toMatchObject({ code: 'score_failed' });
    const [failed] = [...fake.jobs.keys()];
    expect(failed).toMatch(/^sluice-score-[0-9a-f]{40}$/);
    const scores = await b.score(input('flaky.py'));
    expect(scores.labels).toHaveLength(data.holdout.rows);
    expect([...fake.jobs.keys()]).toEqual([failed, `${failed}-a1`]);
    await expect(b.score(input('flaky.py'))).resolves.toEqual(scores);
    expect(fake.jobs.size).toBe(2);

    for (let i = 0; i < 3; i++)
      await expect(b.score(input('crash.py'))).rejects.toMatchObject({ code: 'score_failed' });
    const crashed = [...fake.jobs.keys()].slice(2);
    expect(crashed).toEqual([crashed[0], `${crashed[0]}-a1`, `${crashed[0]}-a2`]);
    await expect(b.score(input('crash.py'))).rejects.toMatchObject({
      code: 'score_failed',
      message: expect.stringContaining('3 Azure ML score jobs'),
    });
    expect(fake.jobs.size).toBe(5);
  });
});
