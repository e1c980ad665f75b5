// Secure defaults, as in Azure Verified Modules: Entra ID only (shared keys and local auth off),
// TLS 1.2, no public blobs, HTTPS only, RBAC Key Vaults, and a Flex Consumption app that runs as
// its user-assigned identity.
import { declsOf, Evaluator, literal, propAt, tokensIn } from './bicep';
import type { Decl, Value } from './bicep';
import { bicep, bicepPaths } from './helpers';

const all = (type: string): [string, Decl][] =>
  bicepPaths().flatMap((path) =>
    declsOf(bicep(path), 'resource')
      .filter((r) => !r.existing && r.target?.split('@')[0] === type)
      .map((r) => [`${path}: ${r.name}`, r] as [string, Decl]),
  );
const at = (r: Decl, path: string) => literal(propAt(r.value, path));

describe('storage accounts', () => {
  const accounts = all('Microsoft.Storage/storageAccounts');
  it('exist (the app account and the Azure ML one)', () => expect(accounts.length).toBe(2));

  it.each(accounts)('%s: keys off, no public blobs, TLS 1.2, HTTPS only', (_name, r) => {
    expect(at(r, 'properties.allowSharedKeyAccess')).toBe(false);
    expect(at(r, 'properties.allowBlobPublicAccess')).toBe(false);
    expect(at(r, 'properties.minimumTlsVersion')).toBe('TLS1_2');
    expect(at(r, 'properties.supportsHttpsTrafficOnly')).toBe(true);
    expect(at(r, 'properties.defaultToOAuthAuthentication')).toBe(true);
  });
});

describe('data and secrets services', () => {
  it.each(all('Microsoft.DocumentDB/databaseAccounts'))('%s: serverless, local (key) auth off', (_n, r) => {
    expect(at(r, 'properties.disableLocalAuth')).toBe(true);
    const ev = new Evaluator(bicep('modules/cosmos.bicep'), { name: 'c', location: 'l', tags: {} });
    expect(ev.node(propAt(r.value, 'properties.capabilities')!, new Map())).toEqual([
      { name: 'EnableServerless' },
    ]);
  });

  it.each(all('Microsoft.KeyVault/vaults'))(
    '%s: RBAC authorization, soft delete, no access policies',
    (_n, r) => {
      expect(at(r, 'properties.enableRbacAuthorization')).toBe(true);
      expect(at(r, 'properties.enableSoftDelete')).toBe(true);
      expect(propAt(r.value, 'properties.accessPolicies')).toBeUndefined();
    },
  );

  it.each(all('Microsoft.Insights/components'))('%s: local (instrumentation key) auth off', (_n, r) => {
    expect(at(r, 'properties.DisableLocalAuth')).toBe(true);
  });

  it.each(all('Microsoft.MachineLearningServices/workspaces'))('%s: datastores use identities', (_n, r) => {
    expect(at(r, 'properties.systemDatastoresAuthMode')).toBe('identity');
  });

  it("the jobs datastore reaches the artifact account's jobs container with the workspace identity, no key or SAS", () => {
    const stores = all('Microsoft.MachineLearningServices/workspaces/datastores');
    expect(stores.map(([n]) => n)).toEqual(['modules/ml.bicep: jobsDatastore']);
    const ev = new Evaluator(bicep('modules/ml.bicep'), {
      name: 'mlw',
      location: 'l',
      tags: {},
      storageAccountName: 'stml',
      keyVaultName: 'kvml',
      applicationInsightsId: 'APPI',
      artifactStorageAccountName: 'stabc',
      artifactBlobEndpoint: 'https://stabc.blob.core.windows.net/',
      jobsContainerName: 'jobs',
    });
    expect(ev.node(propAt(stores[0]![1].value, 'properties')!, new Map())).toEqual({
      datastoreType: 'AzureBlob',
      accountName: 'stabc',
      containerName: 'jobs',
      endpoint: 'core.windows.net',
      protocol: 'https',
      credentials: { credentialsType: 'None' },
      serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity',
      description: expect.any(String),
    });
  });
});

describe('the Function App', () => {
  const file = bicep('modules/functionapp.bicep');
  const ev = new Evaluator(file, {
    name: 'func',
    planName: 'plan',
    location: 'swedencentral',
    tags: {},
    serviceName: 'api',
    identityId: 'IDENTITY',
    storageBlobEndpoint: 'https://st.blob.core.windows.net/',
    deploymentContainerName: 'app-package',
    appSettings: { A: 'b' },
  });
  const [[, site]] = all('Microsoft.Web/sites') as [[string, Decl]];
  const value = (path: string): Value => ev.node(propAt(site.value, path)!, new Map());

  it('runs on a Flex Consumption (FC1) Linux plan', () => {
    const [[, plan]] = all('Microsoft.Web/serverfarms') as [[string, Decl]];
    expect(at(plan, 'sku.name')).toBe('FC1');
    expect(at(plan, 'sku.tier')).toBe('FlexConsumption');
    expect(at(plan, 'properties.reserved')).toBe(true);
    expect(at(site, 'kind')).toBe('functionapp,linux');
    expect(tokensIn(propAt(site.value, 'properties.serverFarmId')).map((t) => t.text)).toEqual([
      plan.name,
      '.',
      'id',
    ]);
  });

  it('runs Node 22 from a package its identity downloads', () => {
    expect(value('properties.functionAppConfig.runtime')).toEqual({ name: 'node', version: '22' });
    expect(value('properties.functionAppConfig.deployment.storage')).toEqual({
      type: 'blobContainer',
      value: 'https://st.blob.core.windows.net/app-package',
      authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: 'IDENTITY' },
    });
  });

  it('runs as the user-assigned identity only, which also resolves Key Vault references', () => {
    expect(value('identity')).toEqual({ type: 'UserAssigned', userAssignedIdentities: { IDENTITY: {} } });
    expect(value('properties.keyVaultReferenceIdentity')).toBe('IDENTITY');
  });

  it('is HTTPS only with TLS 1.2, and FTP and basic-auth publishing are off', () => {
    expect(value('properties.httpsOnly')).toBe(true);
    expect(value('properties.siteConfig.minTlsVersion')).toBe('1.2');
    // Flex Consumption rejects siteConfig.ftpsState (it offers no FTP at all): setting it fails the
    // first deployment. Basic-auth publishing off (below) is what it was meant to ensure.
    expect(propAt(site.value, 'properties.siteConfig.ftpsState')).toBeUndefined();
    const policies = declsOf(file, 'resource').filter((r) =>
      r.target?.startsWith('Microsoft.Web/sites/basicPublishingCredentialsPolicies@'),
    );
    expect(policies.map((p) => at(p, 'name')).sort()).toEqual(['ftp', 'scm']);
    for (const p of policies) expect(at(p, 'properties.allow')).toBe(false);
  });

  it('gets exactly the app settings main.bicep builds', () => {
    const config = declsOf(file, 'resource').find((r) =>
      r.target?.startsWith('Microsoft.Web/sites/config@'),
    )!;
    expect(at(config, 'name')).toBe('appsettings');
    expect(tokensIn(propAt(config.value, 'parent')).map((t) => t.text)).toEqual([site.name]);
    expect(ev.node(propAt(config.value, 'properties')!, new Map())).toEqual({ A: 'b' });
  });

  it('sets no worker runtime or content-share settings of its own', () => {
    const source = file.source;
    expect(source).not.toMatch(
      /^\s*(FUNCTIONS_WORKER_RUNTIME|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT\w*)\s*:/m,
    );
  });
});
