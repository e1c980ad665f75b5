// The Durable backend is a deployment choice (durableBackend): Azure Storage, as devhost runs it,
// or the managed Durable Task Scheduler. host.json stays on Azure Storage; Bicep overrides the
// storage provider with app settings whose names come from lib/resources.json, and the scheduler
// gets its task hub, the identity-based connection and the app identity's data role.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { declsOf, Evaluator, propAt, tokensIn, Unknown } from './bicep';
import type { Value } from './bicep';
import { appSettings, bicep, mainEvaluator, moduleDecl, moduleParam, ROOT, sharedNames } from './helpers';

const durable = sharedNames().durable;
const prefix = durable.storageProviderSettingPrefix;
const show = (v: Value | undefined) => (v instanceof Unknown ? v.text : v);
const hostJson = JSON.parse(readFileSync(join(ROOT, 'host.json'), 'utf8')) as {
  extensions: { durableTask: Record<string, unknown> };
};

describe('the names contract', () => {
  it("overrides exactly host.json's extensions.durableTask.storageProvider (the host's AzureFunctionsJobHost__ form)", () => {
    expect(prefix).toBe(
      ['AzureFunctionsJobHost', 'extensions', 'durableTask', 'storageProvider', ''].join('__'),
    );
    expect(durable.schedulerProviderType).toBe('azureManaged');
    expect(durable.schedulerConnectionSetting).toBe('DURABLE_TASK_SCHEDULER_CONNECTION_STRING');
    // host.json names no provider type: Azure Storage unless a deployment's settings say otherwise,
    // so devhost, azurite and the default deployment agree.
    const provider = (hostJson.extensions.durableTask.storageProvider ?? {}) as Record<string, unknown>;
    expect(provider.type).toBeUndefined();
    expect(hostJson.extensions.durableTask.hubName).toBe('%DURABLE_TASK_HUB%');
  });

  it('main.bicep spells none of these names itself', () => {
    const source = readFileSync(join(ROOT, 'infra/main.bicep'), 'utf8');
    expect(source).not.toMatch(/AzureFunctionsJobHost|DURABLE_TASK_SCHEDULER_CONNECTION_STRING|azureManaged/);
  });
});

describe('durableBackend = azureStorage (the default)', () => {
  it('deploys no scheduler and polls idle queues at most every durableQueuePollingSeconds', () => {
    const ev = mainEvaluator();
    expect(ev.param('durableBackend')).toBe('azureStorage');
    expect(ev.variable('useScheduler')).toBe(false);
    const settings = appSettings();
    expect(settings[`${prefix}maxQueuePollingInterval`]).toBe('00:00:10');
    expect(settings[`${prefix}type`]).toBeUndefined();
    expect(settings[durable.schedulerConnectionSetting]).toBeUndefined();
    expect(appSettings({ durableQueuePollingSeconds: 5 })[`${prefix}maxQueuePollingInterval`]).toBe(
      '00:00:05',
    );
    expect(appSettings({ durableQueuePollingSeconds: 30 })[`${prefix}maxQueuePollingInterval`]).toBe(
      '00:00:30',
    );
    expect(moduleParam(ev, 'modules/roles.bicep', 'enableDurableTaskScheduler')).toBe(false);
  });

  it('keeps the polling interval within what Microsoft recommends on Flex by default (10 s or less)', () => {
    const param = declsOf(bicep('main.bicep'), 'param').find((p) => p.name === 'durableQueuePollingSeconds')!;
    expect(mainEvaluator().param('durableQueuePollingSeconds')).toBeLessThanOrEqual(10);
    expect(param.decorators.map((d) => d.name)).toEqual(expect.arrayContaining(['minValue', 'maxValue']));
  });
});

describe('durableBackend = durableTaskScheduler', () => {
  const overrides = { durableBackend: 'durableTaskScheduler' };

  it('deploys the scheduler module with the task hub the app binds', () => {
    const decl = moduleDecl('modules/durable.bicep');
    expect(decl.value?.kind === 'if' && decl.value.condition.text).toBe('useScheduler');
    const ev = mainEvaluator(overrides);
    expect(ev.variable('useScheduler')).toBe(true);
    expect(moduleParam(ev, 'modules/durable.bicep', 'taskHubName')).toBe('SluiceHub');
    expect(moduleParam(ev, 'modules/durable.bicep', 'skuName')).toBe('Consumption');
    expect(appSettings(overrides).DURABLE_TASK_HUB).toBe('SluiceHub');
    const name = (ev.variable('names') as Record<string, string>).durableScheduler!;
    expect(name).toMatch(/^dts-[a-z0-9]{13}$/);
    expect(name).toMatch(/^[a-zA-Z0-9-]{3,64}$/);
  });

  it('switches the host to the azureManaged provider with an identity-based connection', () => {
    const settings = appSettings(overrides);
    expect(settings[`${prefix}type`]).toBe('azureManaged');
    expect(settings[`${prefix}connectionStringName`]).toBe('DURABLE_TASK_SCHEDULER_CONNECTION_STRING');
    expect(show(settings.DURABLE_TASK_SCHEDULER_CONNECTION_STRING)).toBe(
      'Endpoint=<durable.outputs.endpoint>;Authentication=ManagedIdentity;ClientID=<identity.outputs.clientId>',
    );
    // No key or secret in the connection, and the Azure Storage polling override is gone.
    expect(String(show(settings.DURABLE_TASK_SCHEDULER_CONNECTION_STRING))).not.toMatch(
      /AccessKey|SharedAccess/,
    );
    expect(settings[`${prefix}maxQueuePollingInterval`]).toBeUndefined();
    // The Functions host still has its own storage (keys, timers' leases).
    expect(show(settings.AzureWebJobsStorage__accountName)).toBe('storage.outputs.name');
  });

  it('grants the app identity Durable Task Data Contributor on that scheduler', () => {
    const ev = mainEvaluator(overrides);
    expect(moduleParam(ev, 'modules/roles.bicep', 'enableDurableTaskScheduler')).toBe(true);
    expect(show(moduleParam(ev, 'modules/roles.bicep', 'durableSchedulerName'))).toBe('durable.outputs.name');
    const roles = new Evaluator(bicep('modules/roles.bicep'), {
      appPrincipalId: 'APP',
      storageAccountName: 'st',
      cosmosAccountName: 'c',
      keyVaultName: 'kv',
      applicationInsightsName: 'appi',
    });
    expect((roles.variable('roles') as Record<string, string>).durableTaskDataContributor).toBe(
      '0ad04412-c4d5-4796-b79c-f76d14c8d402',
    );
    const assignment = declsOf(bicep('modules/roles.bicep'), 'resource').find(
      (r) => r.name === 'appDurableTasks',
    )!;
    expect(tokensIn(propAt(assignment.value, 'scope')).map((t) => t.text)).toEqual(['durableScheduler']);
  });

  it('the scheduler admits traffic (an empty allow list blocks everything) and sizes Dedicated by capacity', () => {
    const file = bicep('modules/durable.bicep');
    const base = { name: 'dts-x', location: 'l', tags: {}, taskHubName: 'SluiceHub' };
    const scheduler = declsOf(file, 'resource').find((r) =>
      r.target?.startsWith('Microsoft.DurableTask/schedulers@'),
    )!;
    const hub = declsOf(file, 'resource').find((r) =>
      r.target?.startsWith('Microsoft.DurableTask/schedulers/taskHubs@'),
    )!;
    const props = (overrides: Record<string, Value>) =>
      new Evaluator(file, { ...base, ...overrides }).node(propAt(scheduler.value, 'properties')!, new Map());
    expect(props({})).toEqual({ ipAllowlist: ['0.0.0.0/0'], sku: { name: 'Consumption' } });
    expect(props({ skuName: 'Dedicated', skuCapacity: 2 })).toEqual({
      ipAllowlist: ['0.0.0.0/0'],
      sku: { name: 'Dedicated', capacity: 2 },
    });
    expect(tokensIn(propAt(hub.value, 'parent')).map((t) => t.text)).toEqual([scheduler.name]);
    expect(new Evaluator(file, base).node(propAt(hub.value, 'name')!, new Map())).toBe('SluiceHub');
  });
});

describe('Flex Consumption and Durable Functions', () => {
  const file = bicep('modules/functionapp.bicep');
  const site = declsOf(file, 'resource').find((r) => r.target?.startsWith('Microsoft.Web/sites@'))!;
  const base = {
    name: 'func',
    planName: 'plan',
    location: 'l',
    tags: {},
    serviceName: 'api',
    identityId: 'IDENTITY',
    storageBlobEndpoint: 'https://st.blob.core.windows.net/',
    deploymentContainerName: 'app-package',
    appSettings: {},
  };
  const scale = (n: number) =>
    new Evaluator(file, { ...base, durableAlwaysReadyInstances: n }).node(
      propAt(site.value, 'properties.functionAppConfig.scaleAndConcurrency.alwaysReady')!,
      new Map(),
    );

  it('keeps durableAlwaysReadyInstances warm in the durable function group', () => {
    expect(scale(1)).toEqual([{ name: 'durable', instanceCount: 1 }]);
    expect(scale(3)).toEqual([{ name: 'durable', instanceCount: 3 }]);
    expect(scale(0)).toEqual([]);
  });

  it('main.bicep asks for one always-ready durable instance by default, as Microsoft recommends', () => {
    expect(moduleParam(mainEvaluator(), 'modules/functionapp.bicep', 'durableAlwaysReadyInstances')).toBe(1);
    expect(
      moduleParam(
        mainEvaluator({ durableAlwaysReadyInstances: 0 }),
        'modules/functionapp.bicep',
        'durableAlwaysReadyInstances',
      ),
    ).toBe(0);
  });
});
