import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Evaluator, readBicep, declNamed, bodyOf, propAt, literal, Unknown } from './bicep';
import type { BicepFile, Decl, Value } from './bicep';

export const ROOT = resolve(__dirname, '../..');
export const INFRA = join(ROOT, 'infra');
export const MAIN = join(INFRA, 'main.bicep');

/** Every Bicep file in infra/, relative to infra/. */
export function bicepPaths(): string[] {
  const modules = readdirSync(join(INFRA, 'modules'))
    .filter((f) => f.endsWith('.bicep'))
    .map((f) => `modules/${f}`);
  return ['main.bicep', ...modules.sort()];
}

const cache = new Map<string, BicepFile>();
/** A parsed Bicep file under infra/ (cached: the files do not change during a test run). */
export function bicep(relativePath: string): BicepFile {
  let file = cache.get(relativePath);
  if (!file) {
    file = readBicep(join(INFRA, relativePath));
    cache.set(relativePath, file);
  }
  return file;
}

export const readJson = <T = unknown>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

export interface SharedNames {
  blobContainers: Record<string, string>;
  cosmos: { database: string; containers: Record<string, { name: string; partitionKey: string }> };
  appSettings: { azure: Record<string, string>; localOnly: Record<string, string> };
  durable: {
    storageProviderSettingPrefix: string;
    schedulerProviderType: string;
    schedulerConnectionSetting: string;
  };
}
export const sharedNames = () => readJson<SharedNames>(join(ROOT, 'lib/resources.json'));

/** Values for main.bicep's required parameters, as azd would supply them. */
export const REQUIRED_PARAMS: Record<string, Value> = {
  environmentName: 'sluice-dev',
  location: 'swedencentral',
  approvalSigningKeyA: 'A'.repeat(64),
  approvalSigningKeyB: 'B'.repeat(64),
  notifyWebhookSecret: 'W'.repeat(48),
};

/** The deployment variants the templates branch on. */
export const SCENARIOS: Record<string, Record<string, Value>> = {
  defaults: {},
  email: { enableEmail: true },
  customSender: { enableEmail: true, emailSenderAddress: 'approvals@mail.contoso.com' },
  webhook: { notifyWebhookUrl: 'https://hooks.example.com/sluice' },
  azureml: { enableAzureMl: true },
  azuremlAssets: {
    enableAzureMl: true,
    azureMlEnvironmentId: 'azureml:sluice-node22:1',
    azureMlCodeId: 'azureml:sluice-worker:3',
    azureMlInstanceType: 'Standard_D2s_v3',
    azureMlUserEnvironment: 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest',
    azureMlQueuedLimitSeconds: '1800',
    azureMlComputeId:
      '/subscriptions/0/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/gpu',
  },
  databricks: { databricksHost: 'https://adb-1234567890123456.7.azuredatabricks.net' },
  databricksAll: {
    databricksHost: 'https://adb-1234567890123456.7.azuredatabricks.net',
    databricksJobRoot: '/Volumes/main/sluice/jobs',
    databricksOutputRoot: '/Volumes/main/sluice/joboutputs',
    databricksWebhookDestinationId: '2b7d5c3e-1f00-4a00-8000-000000000001',
    databricksAccessConnectorPrincipalId: '6a1f0000-0000-4000-8000-00000000dbac',
    databricksToken: 'dapi' + '0'.repeat(32),
    databricksWebhookSecret: 'S'.repeat(40),
  },
  github: {
    githubAppId: '424242',
    githubAppPrivateKey: '-----BEGIN PRIVATE KEY-----\\nMIIE...\\n-----END PRIVATE KEY-----',
    githubWebhookSecret: 'G'.repeat(40),
  },
  mlflow: { mlflowTrackingUri: 'https://mlflow.example.com' },
  mlflowAll: {
    mlflowTrackingUri: 'https://mlflow.example.com',
    mlflowRegistryUri: 'https://registry.example.com',
    mlflowExperimentPrefix: 'sluice/',
    mlflowTrackingUsername: 'sluice',
    mlflowTrackingPassword: 'P'.repeat(24),
  },
  mlflowDatabricks: {
    databricksHost: 'https://adb-1234567890123456.7.azuredatabricks.net',
    mlflowTrackingUri: 'databricks',
    mlflowExperimentPrefix: '/Shared/sluice/',
    mlflowTrackingToken: 'dapi' + '1'.repeat(32),
  },
  mlflowUnityCatalog: {
    databricksHost: 'https://adb-1234567890123456.7.azuredatabricks.net',
    mlflowTrackingUri: 'databricks',
    mlflowRegistryUri: 'databricks-uc',
    mlflowUcSchema: 'main.ml',
    mlflowExperimentPrefix: '/Shared/sluice/',
  },
  everything: {
    enableEmail: true,
    enableAzureMl: true,
    notifyWebhookUrl: 'https://hooks.example.com/sluice',
  },
  scheduler: { durableBackend: 'durableTaskScheduler' },
  schedulerDedicated: { durableBackend: 'durableTaskScheduler', durableSchedulerSku: 'Dedicated' },
  emailBuiltInRole: { enableEmail: true, emailRole: 'builtIn' },
  noAlwaysReady: { durableAlwaysReadyInstances: 0, durableQueuePollingSeconds: 5 },
  consoleAuth: { consoleAuthClientId: '3f1c0d8e-5b7a-4e2b-9a61-0c2d4e6f8a10' },
  everythingScheduler: {
    enableEmail: true,
    enableAzureMl: true,
    durableBackend: 'durableTaskScheduler',
    consoleAuthClientId: '3f1c0d8e-5b7a-4e2b-9a61-0c2d4e6f8a10',
  },
};

export function mainEvaluator(overrides: Record<string, Value> = {}): Evaluator {
  return new Evaluator(bicep('main.bicep'), { ...REQUIRED_PARAMS, ...overrides });
}

/** The module declaration in main.bicep that deploys `modulePath` (e.g. modules/functionapp.bicep). */
export function moduleDecl(modulePath: string, file: BicepFile = bicep('main.bicep')): Decl {
  const found = file.decls.find((d) => d.kind === 'module' && d.target === modulePath);
  if (!found) throw new Error(`${file.path} deploys no module ${modulePath}`);
  return found;
}

/** Evaluates a parameter that main.bicep passes to a module. */
export function moduleParam(ev: Evaluator, modulePath: string, param: string): Value {
  const value = propAt(moduleDecl(modulePath, ev.file).value, `params.${param}`);
  if (!value) throw new Error(`main.bicep passes no ${param} to ${modulePath}`);
  return ev.node(value, new Map());
}

/**
 * The Function App settings a scenario deploys: main.bicep's parameters for the function app
 * module, fed through that module's appsettings resource. Name → value (Unknown until deployed).
 */
export function appSettings(overrides: Record<string, Value> = {}): Record<string, Value> {
  const main = mainEvaluator(overrides);
  const passed = bodyOf(propAt(moduleDecl('modules/functionapp.bicep').value, 'params'))!;
  const params = Object.fromEntries(passed.props.map((p) => [p.key, main.node(p.value, new Map())]));
  const module = bicep('modules/functionapp.bicep');
  const config = resourcesOfType(module, 'Microsoft.Web/sites/config')[0]!;
  const value = new Evaluator(module, params).node(propAt(config.value, 'properties')!, new Map());
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Unknown)
    throw new Error('the app settings do not evaluate to an object');
  return value as Record<string, Value>;
}

/** A resource declaration by symbolic name, with its evaluated-literal helper. */
export function resource(file: BicepFile, name: string): Decl {
  return declNamed(file, 'resource', name);
}

export function resourcesOfType(file: BicepFile, type: string): Decl[] {
  return file.decls.filter((d) => d.kind === 'resource' && d.target?.split('@')[0] === type);
}

/** The literal at a property path of a resource body. */
export function literalAt(decl: Decl, path: string): unknown {
  return literal(propAt(bodyOf(decl.value), path));
}

export { bodyOf, propAt, literal };
