/** A python_function model's score command runs on its pipeline's backend: Azure ML remotely, local on the host. */
import type { CustomTrainingSpec } from '../../../lib/contracts/trainingSpec';
import type { Scores } from '../../../lib/mlmodel/onnxModel';
import { AzureMlTrainingBackend } from '../../../lib/training/backends/azureml';
import { scoreCommandOnBackend } from '../../../lib/training/backends/scoreOnBackend';
import { DatabricksTrainingBackend } from '../../../lib/training/backends/databricks';
import { DatabricksClient } from '../../../lib/training/backends/databricksApi';
import type { ArtifactStore } from '../../../lib/storage/blob';
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
const databricks = new DatabricksTrainingBackend({
  client: new DatabricksClient({ host: 'https://adb-1.2.azuredatabricks.net', token: 't' }),
  store: {} as ArtifactStore,
  jobRoot: 'abfss://jobs@stabc.dfs.core.windows.net',
});
const dbxScores: Scores = { values: [3] };
jest.spyOn(databricks, 'score').mockImplementation(async () => {
  asked.push('databricks');
  return dbxScores;
});
const score = scoreCommandOnBackend(
  (name) =>
    name === 'azureml'
      ? azureml
      : name === 'databricks'
        ? databricks
        : ({ name } as unknown as TrainingBackend),
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

it('routes azureml to the Azure ML score job, databricks to a Databricks run, local to the host', async () => {
  await expect(score(options('azureml'))).resolves.toBe(remote);
  await expect(score(options('local'))).resolves.toBe(onHost);
  await expect(score(options('databricks'))).resolves.toBe(dbxScores);
  expect(asked).toEqual(['azureml', 'host', 'databricks']);
});
