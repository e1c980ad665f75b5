// The identities training jobs run as (the Azure ML workspace's, and the Databricks access
// connector's) must not be able to write where Sluice keeps its records of the jobs (the jobs
// container) or anything else of the artifact account but job outputs: a job's own code runs with
// them. Azure ML jobs write through a per-job SAS only (lib/training/userJob/outputGrant.ts);
// Databricks runs write the joboutputs container only.
import { bodyOf, declsOf, Evaluator, propAt, tokensIn } from './bicep';
import type { Decl } from './bicep';
import { bicep, mainEvaluator, moduleParam, SCENARIOS, sharedNames } from './helpers';

const roles = bicep('modules/roles.bicep');
const resources = declsOf(roles, 'resource');
const ev = new Evaluator(roles, {
  appPrincipalId: 'APP',
  principalId: 'DEPLOYER',
  storageAccountName: 'st',
  cosmosAccountName: 'cosmos',
  keyVaultName: 'kv',
  applicationInsightsName: 'appi',
  enableAzureMl: true,
  mlWorkspaceName: 'mlw',
  mlStorageAccountName: 'stml',
  mlJobsPrincipalId: 'WORKSPACE',
  databricksAccessConnectorPrincipalId: 'CONNECTOR',
});
const roleIds = ev.variable('roles') as Record<string, string>;
const READER = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1';

interface Grant {
  name: string;
  principal: string;
  scope: string;
  scopeName: unknown;
  role: string;
}

const grants: Grant[] = resources
  .filter((r) => r.target?.startsWith('Microsoft.Authorization/roleAssignments@'))
  .map((decl: Decl) => {
    const body = bodyOf(decl.value)!;
    const scope = tokensIn(propAt(body, 'scope'))
      .map((t) => t.text)
      .join('');
    const scopeDecl = resources.find((r) => r.name === scope);
    return {
      name: decl.name,
      principal: String(ev.node(propAt(body, 'properties.principalId')!, new Map())),
      scope,
      scopeName: scopeDecl ? ev.node(propAt(bodyOf(scopeDecl.value), 'name')!, new Map()) : undefined,
      role: String(ev.node(propAt(body, 'properties.roleDefinitionId')!, new Map()))
        .split('/')
        .pop()!,
    };
  });
const jobIdentities = grants.filter((g) => g.principal === 'WORKSPACE' || g.principal === 'CONNECTOR');
// On the artifact account (the Azure ML workspace's own storage, mlStorage, is checked apart).
const jobGrants = jobIdentities.filter((g) => g.scope !== 'mlStorage');

describe('what training jobs can reach in the artifact account', () => {
  it('the role map has the read-only role the job identities get', () => {
    expect(roleIds.storageBlobDataReader).toBe(READER);
  });

  it('job identities get container-scoped roles only, never the whole account', () => {
    expect(jobGrants.length).toBeGreaterThanOrEqual(4);
    for (const g of jobGrants) {
      expect(g.scope).not.toBe('storage');
      expect(String(g.scopeName)).toMatch(/^st\/default\/[a-z0-9-]+$/);
    }
  });

  it('on the workspace’s own storage the Azure ML jobs identity only reads (code snapshots)', () => {
    expect(jobIdentities.filter((g) => g.scope === 'mlStorage').map((g) => [g.principal, g.role])).toEqual([
      ['WORKSPACE', READER],
    ]);
  });

  it("the Azure ML jobs' identity can only read (jobs and datasets): its jobs write with a per-job SAS", () => {
    const ml = jobGrants.filter((g) => g.principal === 'WORKSPACE');
    expect(ml.map((g) => [g.scopeName, g.role]).sort()).toEqual(
      [
        ['st/default/datasets', READER],
        ['st/default/jobs', READER],
      ].sort(),
    );
  });

  it('the jobs container (Sluice’s records) is read-only to every job identity', () => {
    const onJobs = jobGrants.filter((g) => g.scopeName === 'st/default/jobs');
    expect(onJobs.map((g) => g.principal).sort()).toEqual(['CONNECTOR', 'WORKSPACE']);
    for (const g of onJobs) expect(g.role).toBe(READER);
  });

  it('the only write role a job identity has is the Databricks connector’s on joboutputs', () => {
    const writes = jobGrants.filter((g) => g.role !== READER);
    expect(writes.map((g) => [g.principal, g.scopeName, g.role])).toEqual([
      ['CONNECTOR', 'st/default/joboutputs', roleIds.storageBlobDataContributor],
    ]);
  });

  it('main.bicep passes the container names of lib/resources.json', () => {
    const main = mainEvaluator(SCENARIOS.databricksAll);
    const names = sharedNames().blobContainers as Record<string, string>;
    expect(moduleParam(main, 'modules/roles.bicep', 'jobsContainerName')).toBe(names.jobs);
    expect(moduleParam(main, 'modules/roles.bicep', 'datasetsContainerName')).toBe(names.datasets);
    expect(moduleParam(main, 'modules/roles.bicep', 'jobOutputsContainerName')).toBe(names.jobOutputs);
    expect(names.jobOutputs).not.toBe(names.jobs);
  });
});
