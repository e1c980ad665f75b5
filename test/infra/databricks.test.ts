// The optional Azure Databricks wiring: no setting and no role unless a workspace URL is given;
// with it, DATABRICKS_HOST and the optional settings from their parameters, the PAT and the
// webhook password only as Key Vault references to secrets main.bicep stores, and the Databricks
// access connector's identity limited to the jobs container. The app identity gets no Azure role
// on Databricks: workspace membership is not an Azure role (docs/training.md, "Azure Databricks").
import { loadConfig } from '../../lib/config';
import { bodyOf, declsOf, Evaluator, propAt, tokensIn, Unknown } from './bicep';
import type { Value } from './bicep';
import {
  appSettings,
  bicep,
  mainEvaluator,
  moduleParam,
  REQUIRED_PARAMS,
  SCENARIOS,
  sharedNames,
} from './helpers';

const show = (v: Value | undefined) => (v instanceof Unknown ? v.text : String(v));
const dbx = SCENARIOS.databricksAll!;

describe('Databricks app settings', () => {
  it('sets none without a workspace URL, even when the other parameters are given', () => {
    const { databricksHost: _host, ...rest } = dbx;
    for (const settings of [appSettings(), appSettings(rest)]) {
      expect(Object.keys(settings).filter((k) => k.startsWith('DATABRICKS_'))).toEqual([]);
    }
  });

  it('with only the workspace URL: DATABRICKS_HOST, everything else defaulted by the app', () => {
    const settings = appSettings(SCENARIOS.databricks);
    expect(Object.keys(settings).filter((k) => k.startsWith('DATABRICKS_'))).toEqual(['DATABRICKS_HOST']);
    expect(settings.DATABRICKS_HOST).toBe(SCENARIOS.databricks!.databricksHost);
  });

  it('with everything: plain settings from their parameters, the two secrets as Key Vault references', () => {
    const settings = appSettings(dbx);
    expect(settings).toMatchObject({
      DATABRICKS_HOST: dbx.databricksHost,
      DATABRICKS_JOB_ROOT: dbx.databricksJobRoot,
      DATABRICKS_WEBHOOK_DESTINATION_ID: dbx.databricksWebhookDestinationId,
    });
    expect(show(settings.DATABRICKS_TOKEN)).toBe(
      '@Microsoft.KeyVault(SecretUri=<keyVault.outputs.uri>secrets/databricks-token/)',
    );
    expect(show(settings.DATABRICKS_WEBHOOK_SECRET)).toBe(
      '@Microsoft.KeyVault(SecretUri=<keyVault.outputs.uri>secrets/databricks-webhook-secret/)',
    );
    const secrets = moduleParam(mainEvaluator(dbx), 'modules/keyvault.bicep', 'secrets') as Record<
      string,
      Value
    >;
    expect(secrets['databricks-token']).toBe(dbx.databricksToken);
    expect(secrets['databricks-webhook-secret']).toBe(dbx.databricksWebhookSecret);
    // Without them, Key Vault holds no empty secret.
    const plain = moduleParam(
      mainEvaluator(SCENARIOS.databricks),
      'modules/keyvault.bicep',
      'secrets',
    ) as Record<string, Value>;
    expect(Object.keys(plain).filter((k) => k.startsWith('databricks'))).toEqual([]);
  });

  it('loads with loadConfig once the references resolve, and names come from lib/resources.json', () => {
    const settings = appSettings(dbx);
    const env = Object.fromEntries(
      Object.entries(settings)
        .filter(([k]) => k.startsWith('DATABRICKS_'))
        .map(([k, v]) => [
          k,
          k === 'DATABRICKS_TOKEN'
            ? String(dbx.databricksToken)
            : k === 'DATABRICKS_WEBHOOK_SECRET'
              ? String(dbx.databricksWebhookSecret)
              : String(v),
        ]),
    );
    const config = loadConfig({
      ...env,
      COSMOS_ENDPOINT: 'https://cosmos.example.net/',
      ARTIFACT_STORAGE_ACCOUNT_URL: 'https://st.blob.core.windows.net/',
    });
    expect(config).toMatchObject({
      DATABRICKS_HOST: dbx.databricksHost,
      DATABRICKS_TOKEN: dbx.databricksToken,
      DATABRICKS_WEBHOOK_SECRET: dbx.databricksWebhookSecret,
      DATABRICKS_JOB_ROOT: '/Volumes/main/sluice/jobs',
    });
    const azure = Object.values(sharedNames().appSettings.azure);
    expect(Object.keys(env).filter((k) => !azure.includes(k))).toEqual([]);
  });
});

describe('Databricks roles', () => {
  const roles = bicep('modules/roles.bicep');
  const assignment = declsOf(roles, 'resource').find((r) => r.name === 'databricksJobs')!;

  it('the access connector may read the jobs container and write the joboutputs container, and nothing else of the account', () => {
    const ev = new Evaluator(roles, {
      appPrincipalId: 'APP',
      storageAccountName: 'st',
      cosmosAccountName: 'cosmos',
      keyVaultName: 'kv',
      applicationInsightsName: 'appi',
      databricksAccessConnectorPrincipalId: 'CONNECTOR',
    });
    const expectations: [string, string, string, RegExp][] = [
      // Sluice's records and the staged data: read only (Storage Blob Data Reader).
      ['databricksJobs', 'jobsContainer', 'st/default/jobs', /2a2b9908-6ea1-4ae2-8e65-a410df84e7d1$/],
      // The runs' model folders: read and write (Storage Blob Data Contributor).
      [
        'databricksOutputs',
        'jobOutputsContainer',
        'st/default/joboutputs',
        /ba92f5b4-2d11-453d-a403-e96b0029c9fe$/,
      ],
    ];
    for (const [name, scope, containerName, role] of expectations) {
      const a = declsOf(roles, 'resource').find((r) => r.name === name)!;
      expect(a.value?.kind).toBe('if');
      const body = bodyOf(a.value)!;
      expect(tokensIn(propAt(body, 'scope')).map((t) => t.text)).toEqual([scope]);
      const container = declsOf(roles, 'resource').find((r) => r.name === scope)!;
      expect(container.existing).toBe(true);
      expect(container.target).toMatch(/^Microsoft\.Storage\/storageAccounts\/blobServices\/containers@/);
      expect(ev.node(propAt(bodyOf(container.value), 'name')!, new Map())).toBe(containerName);
      expect(ev.node(propAt(body, 'properties.principalId')!, new Map())).toBe('CONNECTOR');
      expect(String(ev.node(propAt(body, 'properties.roleDefinitionId')!, new Map()))).toMatch(role);
    }
    expect(assignment).toBeDefined();
  });

  it('main.bicep passes the jobs container name and the connector principal through', () => {
    const main = mainEvaluator(dbx);
    expect(moduleParam(main, 'modules/roles.bicep', 'jobsContainerName')).toBe(
      sharedNames().blobContainers.jobs,
    );
    expect(moduleParam(main, 'modules/roles.bicep', 'databricksAccessConnectorPrincipalId')).toBe(
      dbx.databricksAccessConnectorPrincipalId,
    );
    expect(
      moduleParam(
        mainEvaluator(REQUIRED_PARAMS),
        'modules/roles.bicep',
        'databricksAccessConnectorPrincipalId',
      ),
    ).toBe('');
  });

  it('the app identity gets no Azure role on a Databricks workspace (membership is granted in Databricks)', () => {
    const text = declsOf(roles, 'resource')
      .map((r) => r.target ?? '')
      .join('\n');
    expect(text).not.toMatch(/Microsoft\.Databricks/);
  });
});
