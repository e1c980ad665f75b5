/** A python_function model's score command runs on its pipeline's backend: Azure ML remotely, local on the host. */
import type { CustomTrainingSpec } from '../../../lib/contracts/trainingSpec';
import type { Scores } from '../../../lib/mlmodel/onnxModel';
import { AzureMlTrainingBackend } from '../../../lib/training/backends/azureml';
import { scoreCommandOnBackend } from '../../../lib/training/backends/scoreOnBackend';
import type { TrainingBackend } from '../../../lib/training/backends/types';

const azureml = new AzureMlTrainingBackend({
  subscriptionId: 's',
  resourceGroup: 'rg',
  workspace: 'w',
  credential: { getToken: async () => null },
  storageBlobEndpoint: 'https://st.blob.core.windows.net',
});
const remote: Scores = { values: [1] };
const onHost: Scores = { values: [2] };
const asked: string[] = [];
jest.spyOn(azureml, 'score').mockImplementation(async () => {
  asked.push('azureml');
  return remote;
});
const score = scoreCommandOnBackend(
  (name) => (name === 'azureml' ? azureml : ({ name } as unknown as TrainingBackend)),
  async () => {
    asked.push('host');
    return onHost;
  },
);
const options = (backend: string) => ({
  spec: { backend, code: 'c', score: 'python score.py' } as unknown as CustomTrainingSpec,
  modelDir: '/m',
  rows: [],
  workDir: '/w',
});

it('routes azureml to the Azure ML score job, local and databricks to the host', async () => {
  await expect(score(options('azureml'))).resolves.toBe(remote);
  await expect(score(options('local'))).resolves.toBe(onHost);
  await expect(score(options('databricks'))).resolves.toBe(onHost);
  expect(asked).toEqual(['azureml', 'host', 'host']);
});
