import type { Config } from '../config';
import { getConfig } from '../config';
import { ModelRegistry } from '../registry/registry';
import type { ArtifactStore } from '../storage/blob';
import { getArtifactStore } from '../storage/blob';
import { getCosmos } from '../storage/cosmos';
import { azureCredential } from '../storage/credential';
import { NonRetriableError } from '../errors';
import { AzureMlTrainingBackend } from './backends/azureml';
import { LocalTrainingBackend } from './backends/local';
import type { TrainingBackend } from './backends/types';
import type { DataDeps } from '../data/deps';
import { getDataDeps } from '../data/deps';

/** What the train, evaluate and register activities and the models API need; injected in tests. */
export interface TrainingDeps {
  store: ArtifactStore;
  registry: ModelRegistry;
  backend(name: 'local' | 'azureml'): TrainingBackend;
  /** The dataset contract of a pipeline version, to parse a golden set. */
  contractOf?: DataDeps['contractOf'];
}

/** The backends configured by the app settings (azureml only when its workspace is set). */
export function backendsFromConfig(config: Config, store: ArtifactStore): TrainingDeps['backend'] {
  const local = new LocalTrainingBackend({
    files: store,
    heartbeatStaleMs: config.TRAINING_HEARTBEAT_STALE_SECONDS * 1000,
    env: {
      ARTIFACT_STORAGE_CONNECTION: config.ARTIFACT_STORAGE_CONNECTION,
      ARTIFACT_STORAGE_ACCOUNT_URL: config.ARTIFACT_STORAGE_ACCOUNT_URL,
      AZURE_CLIENT_ID: config.AZURE_CLIENT_ID,
    },
  });
  let azureml: AzureMlTrainingBackend | undefined;
  return (name) => {
    if (name === 'local') return local;
    if (
      !config.AZUREML_SUBSCRIPTION_ID ||
      !config.AZUREML_RESOURCE_GROUP ||
      !config.AZUREML_WORKSPACE_NAME ||
      !config.AZUREML_ENVIRONMENT_ID
    ) {
      throw new NonRetriableError(
        'azureml_not_configured',
        'the azureml backend needs AZUREML_SUBSCRIPTION_ID, AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME and AZUREML_ENVIRONMENT_ID',
      );
    }
    azureml ??= new AzureMlTrainingBackend({
      endpoint: config.AZUREML_ENDPOINT,
      subscriptionId: config.AZUREML_SUBSCRIPTION_ID,
      resourceGroup: config.AZUREML_RESOURCE_GROUP,
      workspace: config.AZUREML_WORKSPACE_NAME,
      apiVersion: config.AZUREML_API_VERSION,
      credential: azureCredential(config.AZURE_CLIENT_ID),
      environmentId: config.AZUREML_ENVIRONMENT_ID,
      instanceType: config.AZUREML_INSTANCE_TYPE,
      ...(config.AZUREML_COMPUTE_ID ? { computeId: config.AZUREML_COMPUTE_ID } : {}),
      ...(config.AZUREML_CODE_ID ? { codeId: config.AZUREML_CODE_ID } : {}),
      storageBlobEndpoint: store.service.url,
      files: store,
      heartbeatStaleMs: Math.max(10 * 60_000, config.TRAINING_HEARTBEAT_STALE_SECONDS * 1000),
    });
    return azureml;
  };
}

let deps: Promise<TrainingDeps> | undefined;

/** Built once per process from the app settings. */
export function getTrainingDeps(config?: Config): Promise<TrainingDeps> {
  deps ??= (async (): Promise<TrainingDeps> => {
    const c = config ?? getConfig();
    const cosmos = getCosmos(c);
    if (c.COSMOS_KEY) await cosmos.ensure();
    const store = getArtifactStore(c);
    if (c.ARTIFACT_STORAGE_CONNECTION) await store.ensureContainers();
    const data = await getDataDeps();
    return {
      store,
      registry: new ModelRegistry(cosmos.container('models')),
      backend: backendsFromConfig(c, store),
      contractOf: data.contractOf,
    };
  })().catch((err: unknown) => {
    deps = undefined;
    throw err;
  });
  return deps;
}
