/**
 * submitTraining hands a custom spec (the user's own code) to the backend verbatim, with the
 * pipeline's dataset contract in the request (the job gets it as SLUICE_CONTRACT); a built-in spec
 * gets the contract's categories instead, as before. A backend's refusal (a missing code folder)
 * reaches the caller unchanged.
 */
import { submitTraining } from '../../../activities/submitTraining';
import { submitTrainingActivity } from '../../../lib/contracts/training';
import { datasetContractSchema } from '../../../lib/contracts/datasetContract';
import type { TrainingJobRequestInput } from '../../../lib/contracts/trainingJob';
import { NonRetriableError } from '../../../lib/errors';
import type { TrainingBackend } from '../../../lib/training/backends/types';

const contract = datasetContractSchema.parse({
  columns: [
    { name: 'x', type: 'number' },
    { name: 'color', type: 'category', values: ['red', 'blue'] },
    { name: 'y', type: 'category', values: ['no', 'yes'] },
  ],
  target: 'y',
  task: 'binary',
});

function fakeBackend(refuse?: NonRetriableError) {
  const seen: TrainingJobRequestInput[] = [];
  const backend: TrainingBackend = {
    name: 'local',
    submit: async (request) => {
      if (refuse) throw refuse;
      seen.push(request);
      return { jobId: request.jobId, created: true };
    },
    status: () => Promise.reject(new Error('not used')),
    cancel: async () => undefined,
  };
  return { backend, seen };
}

const input = (spec: Record<string, unknown>) =>
  submitTrainingActivity.input.parse({
    runId: 'run-1',
    spec,
    dataset: { uri: 'http://blob/datasets/x', sha256: 'a'.repeat(64) },
    pipeline: { name: 'churn', version: 3 },
  });

describe('submitTraining', () => {
  it('passes a custom spec verbatim with the pipeline contract', async () => {
    const { backend, seen } = fakeBackend();
    const spec = {
      algorithm: 'custom',
      code: 'examples/training/sklearn',
      command: '/usr/bin/python3 train.py',
      target: 'y',
      features: ['x', 'color'],
      hyperparameters: { C: 0.5 },
    };
    await expect(
      submitTraining({ backend: () => backend, contractOf: async () => contract })(input(spec)),
    ).resolves.toMatchObject({ backend: 'local', created: true });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.contract).toEqual(contract);
    expect(seen[0]!.spec).toEqual(input(spec).spec);
    expect(seen[0]!.spec).not.toHaveProperty('categories');
  });

  it('gives a built-in spec the contract categories and no contract', async () => {
    const { backend, seen } = fakeBackend();
    await submitTraining({ backend: () => backend, contractOf: async () => contract })(
      input({ algorithm: 'logistic_regression', target: 'y', features: ['x', 'color'] }),
    );
    expect(seen[0]!.contract).toBeUndefined();
    expect(seen[0]!.spec).toMatchObject({ categories: { color: ['red', 'blue'] } });
  });

  it('lets a backend refusal through with its code', async () => {
    const { backend } = fakeBackend(
      new NonRetriableError('code_folder_missing', 'the code folder jobs/x does not exist'),
    );
    await expect(
      submitTraining({ backend: () => backend, contractOf: async () => contract })(
        input({ algorithm: 'custom', code: 'jobs/x', command: 'python3 t.py', target: 'y', features: ['x'] }),
      ),
    ).rejects.toMatchObject({ code: 'code_folder_missing' });
  });
});
