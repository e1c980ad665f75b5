// Every Azure service Sluice calls grants the app's user-assigned identity the data-plane role it
// needs, on the resource it calls, in infra/modules/roles.bicep; and every role id there is the
// built-in one (ids from Azure Verified Modules' builtInRoleNames unless noted).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bodyOf, declsOf, Evaluator, literal, propAt, tokensIn, Unknown } from './bicep';
import type { Decl } from './bicep';
import { bicep, INFRA, mainEvaluator, moduleParam, ROOT, SCENARIOS } from './helpers';

const ROLE_ASSIGNMENT = 'Microsoft.Authorization/roleAssignments';
const COSMOS_ASSIGNMENT = 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments';

/** What the code calls → the role it needs, where, and when the service is deployed. */
const NEEDED: { service: string; role: string; on: string; scope?: string; when?: string }[] = [
  {
    service: 'Blob (host storage, artifacts, deployment package, Durable leases)',
    role: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
    on: 'Microsoft.Storage/storageAccounts',
    scope: 'storage',
  }, // Storage Blob Data Owner: the Functions host's documented minimum on its storage
  {
    service: 'Blob of the Azure ML workspace storage (user code uploaded as code assets)',
    role: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
    on: 'Microsoft.Storage/storageAccounts',
    scope: 'mlStorage',
    when: 'enableAzureMl',
  }, // Storage Blob Data Contributor
  {
    service: 'Queue (Durable task hub)',
    role: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
    on: 'Microsoft.Storage/storageAccounts',
  }, // Storage Queue Data Contributor
  {
    service: 'Table (Durable task hub)',
    role: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
    on: 'Microsoft.Storage/storageAccounts',
  }, // Storage Table Data Contributor
  {
    service: 'Key Vault secrets (Key Vault references)',
    role: '4633458b-17de-408a-b874-0445c86b69e6',
    on: 'Microsoft.KeyVault/vaults',
  }, // Key Vault Secrets User
  {
    service: 'Application Insights with Entra auth',
    role: '3913510d-42f4-4e42-8a64-420c390055eb',
    on: 'Microsoft.Insights/components',
  }, // Monitoring Metrics Publisher
  {
    service: 'Durable Task Scheduler (durableBackend = durableTaskScheduler)',
    role: '0ad04412-c4d5-4796-b79c-f76d14c8d402',
    on: 'Microsoft.DurableTask/schedulers',
    when: 'enableDurableTaskScheduler',
  }, // Durable Task Data Contributor
  {
    service: 'Azure ML jobs',
    role: 'f6c7c914-8db3-469d-8ca1-694a8f32e121',
    on: 'Microsoft.MachineLearningServices/workspaces',
    when: 'enableAzureMl',
  }, // AzureML Data Scientist
];
const COSMOS_DATA_CONTRIBUTOR = '00000000-0000-0000-0000-000000000002';

const roles = bicep('modules/roles.bicep');
const PARAMS = {
  appPrincipalId: 'APP',
  principalId: 'DEPLOYER',
  storageAccountName: 'st',
  cosmosAccountName: 'cosmos',
  keyVaultName: 'kv',
  applicationInsightsName: 'appi',
  mlJobsPrincipalId: 'MLJOBS',
};
const ev = new Evaluator(roles, PARAMS);
const source = (file: { source: string }) => file.source;
const resources = declsOf(roles, 'resource');
const typeOf = (d: Decl) => d.target!.split('@')[0]!;

interface Assignment {
  decl: Decl;
  scopeSymbol: string;
  scopeType: string;
  roleId: string;
  principal: string;
  principalType: unknown;
  condition?: string;
  nameArgs: string;
}

function assignments(): Assignment[] {
  return resources
    .filter((r) => typeOf(r) === ROLE_ASSIGNMENT)
    .map((decl) => {
      const body = bodyOf(decl.value)!;
      const scopeSymbol = tokensIn(propAt(body, 'scope'))
        .map((t) => t.text)
        .join('');
      const scope = resources.find((r) => r.name === scopeSymbol);
      const roleDefinitionId = String(ev.node(propAt(body, 'properties.roleDefinitionId')!, new Map()));
      return {
        decl,
        scopeSymbol,
        scopeType: scope ? typeOf(scope) : `<${scopeSymbol}>`,
        roleId:
          /\/providers\/Microsoft\.Authorization\/roleDefinitions\/([0-9a-f-]{36})$/.exec(
            roleDefinitionId,
          )?.[1] ?? roleDefinitionId,
        principal: String(ev.node(propAt(body, 'properties.principalId')!, new Map())),
        principalType: ev.node(propAt(body, 'properties.principalType')!, new Map()),
        condition: decl.value?.kind === 'if' ? decl.value.condition.text : undefined,
        nameArgs: tokensIn(propAt(body, 'name'))
          .map((t) => t.text)
          .join(''),
      };
    });
}

describe('role assignments for the app identity', () => {
  it.each(NEEDED)('$service: the role on the resource the code calls', ({ role, on, scope, when }) => {
    const found = assignments().filter(
      (a) =>
        a.principal === 'APP' &&
        a.roleId === role &&
        a.scopeType === on &&
        (scope === undefined || a.scopeSymbol === scope),
    );
    expect(found).toHaveLength(1);
    expect(found[0]!.principalType).toBe('ServicePrincipal');
    expect(found[0]!.condition).toBe(when);
    // Deterministic names: redeploying finds the same assignment instead of failing on a duplicate.
    const roleKey = Object.entries(ev.variable('roles') as Record<string, string>).find(
      ([, id]) => id === role,
    )![0];
    expect(found[0]!.nameArgs).toBe(`guid(${found[0]!.scopeSymbol}.id,appPrincipalId,roles.${roleKey})`);
  });

  it('Cosmos DB data plane: Built-in Data Contributor on the account', () => {
    const cosmos = resources.filter((r) => typeOf(r) === COSMOS_ASSIGNMENT);
    const app = cosmos.find(
      (r) => String(ev.node(propAt(r.value, 'properties.principalId')!, new Map())) === 'APP',
    );
    expect(app).toBeDefined();
    const body = bodyOf(app!.value)!;
    const parent = resources.find(
      (r) =>
        r.name ===
        tokensIn(propAt(body, 'parent'))
          .map((t) => t.text)
          .join(''),
    );
    expect(parent && typeOf(parent)).toBe('Microsoft.DocumentDB/databaseAccounts');
    const roleDefinitionId = ev.node(propAt(body, 'properties.roleDefinitionId')!, new Map());
    expect(roleDefinitionId instanceof Unknown && roleDefinitionId.text).toBe(
      `<${parent!.name}.id>/sqlRoleDefinitions/${COSMOS_DATA_CONTRIBUTOR}`,
    );
    expect((ev.variable('roles') as Record<string, string>).cosmosDbBuiltInDataContributor).toBe(
      COSMOS_DATA_CONTRIBUTOR,
    );
    expect(
      tokensIn(propAt(body, 'properties.scope'))
        .map((t) => t.text)
        .join(''),
    ).toBe(`${parent!.name}.id`);
  });

  it('grants nothing broader than data-plane roles (no Owner, Contributor or User Access Administrator)', () => {
    const broad = [
      '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
      'b24988ac-6180-42a0-ab88-20f7382dd24c',
      '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
    ];
    expect(assignments().filter((a) => broad.includes(a.roleId))).toEqual([]);
  });

  it('every assignment targets a resource declared as existing in the module', () => {
    for (const a of assignments()) expect(a.scopeType).toMatch(/^Microsoft\./);
    // Besides assignments, the module creates only the email sender's custom role.
    for (const r of resources.filter((d) => !d.existing && d.name !== 'emailSenderRole'))
      expect([ROLE_ASSIGNMENT, COSMOS_ASSIGNMENT]).toContain(typeOf(r));
  });

  it('ACS email: a custom role with only the send actions, or the built-in Owner when asked', () => {
    const email = assignments().filter(
      (a) => a.principal === 'APP' && a.scopeType === 'Microsoft.Communication/communicationServices',
    );
    expect(email).toHaveLength(1);
    expect(email[0]!.condition).toBe('enableEmail');
    expect(email[0]!.principalType).toBe('ServicePrincipal');
    expect(email[0]!.roleId).toBe('<emailSenderRole.id>');
    expect(email[0]!.nameArgs).toBe('guid(communication.id,appPrincipalId,emailRoleDefinitionId)');
    const definition = resources.find((r) => r.name === 'emailSenderRole')!;
    expect(typeOf(definition)).toBe('Microsoft.Authorization/roleDefinitions');
    expect(definition.value?.kind === 'if' && definition.value.condition.text).toBe(
      "enableEmail && emailRole == 'custom'",
    );
    const props = ev.node(propAt(definition.value, 'properties')!, new Map()) as Record<string, unknown>;
    // Microsoft's documented minimum for sending with an Entra principal: no ListKeys, no delete.
    expect(props.permissions).toEqual([
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read',
          'Microsoft.Communication/CommunicationServices/Write',
          'Microsoft.Communication/EmailServices/write',
        ],
        notActions: [],
        dataActions: [],
        notDataActions: [],
      },
    ]);
    expect(props.type).toBe('CustomRole');
    expect(String(props.assignableScopes)).toBe('<resourceGroup(…).id>');
    // emailRole = builtIn: Communication and Email Service Owner instead.
    const builtIn = new Evaluator(roles, { ...PARAMS, emailRole: 'builtIn' });
    expect(builtIn.variable('emailRoleDefinitionId')).toBe(
      '/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/09976791-48a7-449e-bb21-39d1a415f350',
    );
  });

  it('creates the Cosmos data-plane assignments one after the other (parallel writes fail with 412)', () => {
    const cosmos = resources.filter((r) => typeOf(r) === COSMOS_ASSIGNMENT);
    expect(cosmos.map((r) => r.name).sort()).toEqual(['appCosmosData', 'deployerCosmosData']);
    const after = (name: string) =>
      tokensIn(propAt(resources.find((r) => r.name === name)!.value, 'dependsOn')).map((t) => t.text);
    expect(after('deployerCosmosData')).toContain('appCosmosData');
    expect(after('appCosmosData')).not.toContain('deployerCosmosData');
  });

  it("Azure ML jobs: their own user-assigned identity reads the artifact storage's inputs (not the workspace's identity), and writes none of it", () => {
    // Issue 15: jobs write only their own output container through a per-job SAS
    // (lib/training/userJob/outputGrant.ts); test/infra/jobIdentities.test.ts checks the whole set.
    const jobs = assignments().filter((a) => a.principal === 'MLJOBS' && a.scopeSymbol !== 'mlStorage');
    expect(jobs.map((a) => [a.scopeSymbol, a.roleId, a.condition]).sort()).toEqual([
      ['datasetsContainer', '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', 'enableAzureMl'],
      ['jobsContainer', '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', 'enableAzureMl'],
    ]);
    expect(source(roles)).not.toMatch(/mlWorkspacePrincipalId/);
    // And it reads (only) the workspace storage, where its code snapshot is.
    const code = assignments().filter((a) => a.decl.name === 'mlJobsIdentityCode');
    expect(code.map((a) => [a.principal, a.scopeSymbol, a.roleId, a.condition])).toEqual([
      ['MLJOBS', 'mlStorage', '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1', 'enableAzureMl'],
    ]);
  });
});

describe('the role map', () => {
  const source = readFileSync(join(INFRA, 'modules/roles.bicep'), 'utf8');
  const lines = source.split('\n');

  it('names and comments every role id, and the ids are the built-in ones', () => {
    const guidLines = lines
      .map((text, i) => ({ text, i }))
      .filter(({ text }) => /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.test(text));
    expect(guidLines.length).toBeGreaterThanOrEqual(NEEDED.length + 1);
    for (const { text, i } of guidLines) {
      expect(text).toMatch(/^ {2}[a-zA-Z]+: '[0-9a-f-]{36}'$/);
      expect(lines[i - 1]).toMatch(/^ {2}\/\/ /);
    }
    const map = ev.variable('roles') as Record<string, string>;
    for (const { role } of NEEDED) expect(Object.values(map)).toContain(role);
  });

  it('is used by name: no assignment spells out a role id', () => {
    for (const a of resources.filter((r) => !r.existing)) {
      const text = tokensIn(a.value)
        .map((t) => t.text)
        .join(' ');
      expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
    }
  });
});

describe('main.bicep wires the roles module to the deployed resources', () => {
  it.each(Object.entries(SCENARIOS))('names the same resources it deploys (%s)', (_name, overrides) => {
    const main = mainEvaluator(overrides);
    const passed = (param: string) => String(moduleParam(main, 'modules/roles.bicep', param));
    expect(passed('appPrincipalId')).toBe('<identity.outputs.principalId>');
    expect(passed('storageAccountName')).toBe('<storage.outputs.name>');
    expect(passed('cosmosAccountName')).toBe('<cosmos.outputs.name>');
    expect(passed('keyVaultName')).toBe('<keyVault.outputs.name>');
    expect(passed('applicationInsightsName')).toBe('<monitoring.outputs.applicationInsightsName>');
    expect(passed('communicationServiceName')).toBe(
      String(moduleParam(main, 'modules/communication.bicep', 'communicationServiceName')),
    );
    expect(passed('mlWorkspaceName')).toBe(String(moduleParam(main, 'modules/ml.bicep', 'name')));
    expect(passed('mlStorageAccountName')).toBe(
      String(moduleParam(main, 'modules/ml.bicep', 'storageAccountName')),
    );
    expect(moduleParam(main, 'modules/roles.bicep', 'enableEmail')).toBe(overrides.enableEmail ?? false);
    expect(moduleParam(main, 'modules/roles.bicep', 'enableAzureMl')).toBe(overrides.enableAzureMl ?? false);
  });

  it('deploys the Function App only after its roles exist', () => {
    const api = declsOf(bicep('main.bicep'), 'module').find((m) => m.target === 'modules/functionapp.bicep')!;
    expect(tokensIn(propAt(api.value, 'dependsOn')).map((t) => t.text)).toContain('roles');
    expect(literal(propAt(api.value, 'scope'))).toBeUndefined();
  });
});

describe('services found in the code', () => {
  /** A marker in app code (lib, functions, activities) → the role the app's identity then needs. */
  const MARKERS: [RegExp, string, string][] = [
    [/from '@azure\/storage-blob'/, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe', 'Storage Blob Data Contributor'],
    [
      /from '@azure\/storage-queue'/,
      '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
      'Storage Queue Data Contributor',
    ],
    [/from '@azure\/data-tables'/, '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3', 'Storage Table Data Contributor'],
    [/from '@azure\/keyvault-secrets'/, '4633458b-17de-408a-b874-0445c86b69e6', 'Key Vault Secrets User'],
    [
      /from '@azure\/communication-email'|communication\.azure\.com/,
      '<emailSenderRole.id>',
      'Sluice Email Sender',
    ],
    [
      /from '@azure\/arm-machinelearning'|MachineLearningServices|management\.azure\.com/,
      'f6c7c914-8db3-469d-8ca1-694a8f32e121',
      'AzureML Data Scientist',
    ],
  ];

  const appSources = (): string[] => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith('.ts')) files.push(readFileSync(path, 'utf8'));
      }
    };
    for (const dir of ['lib', 'functions', 'activities', 'orchestrators']) {
      if (existsSync(join(ROOT, dir))) walk(join(ROOT, dir));
    }
    return files;
  };

  it('every Azure SDK or endpoint the app code uses has its role for the app identity', () => {
    const sources = appSources();
    expect(sources.length).toBeGreaterThan(0);
    const granted = new Set(
      assignments()
        .filter((a) => a.principal === 'APP')
        .map((a) => a.roleId),
    );
    const used = MARKERS.filter(([marker]) => sources.some((s) => marker.test(s)));
    expect(used.map(([, role, name]) => (granted.has(role) ? 'granted' : `missing ${name}`))).toEqual(
      used.map(() => 'granted'),
    );
    // Cosmos DB is granted on its data plane (checked above); the client is in use.
    expect(sources.some((s) => /from '@azure\/cosmos'/.test(s))).toBe(true);
  });
});
