// Console sign-in (issue 18): App Service Authentication with Microsoft Entra on the Function App,
// only when an app registration is given. Browsers without a session are sent to the sign-in;
// /api/* keeps its function keys. The app roles the console reads are declared in
// infra/console-app-roles.json, the manifest `az ad app create --app-roles` takes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { declsOf, Evaluator, propAt, tokensIn } from './bicep';
import { bicep, INFRA, mainEvaluator, moduleParam } from './helpers';

const file = bicep('modules/functionapp.bicep');
const auth = declsOf(file, 'resource').find(
  (r) => r.target?.startsWith('Microsoft.Web/sites/config@') && r.name === 'auth',
)!;
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
  authClientId: 'CLIENT',
  authTenantId: 'TENANT',
};
const props = () =>
  new Evaluator(file, base).node(propAt(auth.value, 'properties')!, new Map()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('App Service Authentication', () => {
  it('is authsettingsV2 on the site, deployed only with an app registration', () => {
    expect(new Evaluator(file, base).node(propAt(auth.value, 'name')!, new Map())).toBe('authsettingsV2');
    expect(tokensIn(propAt(auth.value, 'parent')).map((t) => t.text)).toEqual(['site']);
    expect(auth.value?.kind === 'if' && auth.value.condition.text).toBe('!empty(authClientId)');
    // After the app settings: one write to the site's config at a time.
    expect(tokensIn(propAt(auth.value, 'dependsOn')).map((t) => t.text)).toContain('settings');
  });

  it('redirects browsers without a session to the Entra sign-in, except on /api/* and the runtime endpoints', () => {
    const p = props();
    expect(p.platform).toEqual({ enabled: true, runtimeVersion: '~1' });
    expect(p.globalValidation).toEqual({
      requireAuthentication: true,
      unauthenticatedClientAction: 'RedirectToLoginPage',
      redirectToProvider: 'azureactivedirectory',
      excludedPaths: ['/api/*', '/runtime/*'],
    });
    expect(p.httpSettings.requireHttps).toBe(true);
    expect(p.login.tokenStore).toEqual({ enabled: false });
  });

  it('trusts tokens of its own tenant and registration only, with no client secret', () => {
    const aad = props().identityProviders.azureActiveDirectory;
    expect(aad.enabled).toBe(true);
    expect(aad.registration).toEqual({
      openIdIssuer: 'https://login.microsoftonline.com/TENANT/v2.0',
      clientId: 'CLIENT',
    });
    expect(aad.validation.allowedAudiences).toEqual(['CLIENT', 'api://CLIENT']);
    expect(JSON.stringify(props())).not.toMatch(/clientSecret/);
  });

  it("main.bicep wires it from consoleAuthClientId, the tenant defaulting to the deployment's", () => {
    expect(moduleParam(mainEvaluator(), 'modules/functionapp.bicep', 'authClientId')).toBe('');
    const on = mainEvaluator({ consoleAuthClientId: 'APPREG' });
    expect(moduleParam(on, 'modules/functionapp.bicep', 'authClientId')).toBe('APPREG');
    expect(moduleParam(on, 'modules/functionapp.bicep', 'authTenantId')).toBe(
      '11111111-1111-1111-1111-111111111111',
    );
    const other = mainEvaluator({ consoleAuthClientId: 'APPREG', consoleAuthTenantId: 'OTHER' });
    expect(moduleParam(other, 'modules/functionapp.bicep', 'authTenantId')).toBe('OTHER');
  });
});

describe('console app roles', () => {
  const roles = JSON.parse(readFileSync(join(INFRA, 'console-app-roles.json'), 'utf8')) as {
    allowedMemberTypes: string[];
    description: string;
    displayName: string;
    id: string;
    isEnabled: boolean;
    value: string;
  }[];

  it('declares Sluice.Viewer, Sluice.Operator and Sluice.BreakGlass for users, with fixed distinct ids', () => {
    expect(roles.map((r) => r.value)).toEqual(['Sluice.Viewer', 'Sluice.Operator', 'Sluice.BreakGlass']);
    for (const r of roles) {
      expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(r.allowedMemberTypes).toEqual(['User']);
      expect(r.isEnabled).toBe(true);
      expect(r.description.length).toBeGreaterThan(10);
      expect(r.displayName.length).toBeGreaterThan(3);
    }
    expect(new Set(roles.map((r) => r.id)).size).toBe(roles.length);
  });
});
