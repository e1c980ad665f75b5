// Every blob container and Cosmos DB container the code uses (lib/resources.json) is created by the
// Bicep, with the partition key the code writes with, because main.bicep loads the same file.
import { declsOf, Evaluator, propAt, bodyOf, literal, tokensIn } from './bicep';
import type { Decl } from './bicep';
import { bicep, mainEvaluator, moduleParam, SCENARIOS, sharedNames } from './helpers';

const names = sharedNames();
const blobNames = Object.values(names.blobContainers);
const cosmosContainers = Object.values(names.cosmos.containers);
const byType = (path: string, type: string): Decl =>
  declsOf(bicep(path), 'resource').find((r) => r.target?.split('@')[0] === type)!;

describe('lib/resources.json', () => {
  it('holds valid blob container names and Cosmos partition key paths', () => {
    expect(blobNames.length).toBeGreaterThan(0);
    for (const name of blobNames) expect(name).toMatch(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/);
    expect(cosmosContainers.length).toBeGreaterThan(0);
    for (const c of cosmosContainers) {
      expect(c.name).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/);
      expect(c.partitionKey).toMatch(/^\/[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/);
    }
    expect(names.cosmos.database).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/);
  });
});

describe('blob containers', () => {
  it.each(Object.entries(SCENARIOS))(
    'main.bicep creates each one plus the deployment container (%s)',
    (_n, o) => {
      const ev = mainEvaluator(o);
      const passed = moduleParam(ev, 'modules/storage.bicep', 'containerNames') as string[];
      const deployment = ev.variable('deploymentContainerName') as string;
      expect([...passed].sort()).toEqual([...blobNames, deployment].sort());
      // Flex Consumption reads the package from that same container.
      expect(moduleParam(ev, 'modules/functionapp.bicep', 'deploymentContainerName')).toBe(deployment);
    },
  );

  it('the storage module declares one private container per name', () => {
    const containers = byType(
      'modules/storage.bicep',
      'Microsoft.Storage/storageAccounts/blobServices/containers',
    );
    expect(containers.value?.kind).toBe('for');
    const loop = containers.value as Extract<typeof containers.value, { kind: 'for' }>;
    expect(tokensIn({ kind: 'expr', parts: loop.header, text: '', line: 0 }).map((t) => t.text)).toEqual([
      'containerNames',
    ]);
    const ev = new Evaluator(bicep('modules/storage.bicep'), {});
    const body = ev.node(bodyOf(loop)!, new Map([[loop.variables[0]!, 'models']])) as Record<string, unknown>;
    expect(body.name).toBe('models');
    expect(body.properties).toEqual({ publicAccess: 'None' });
  });
});

describe('Cosmos DB', () => {
  it.each(Object.entries(SCENARIOS))('main.bicep passes the database and every container (%s)', (_n, o) => {
    const ev = mainEvaluator(o);
    expect(moduleParam(ev, 'modules/cosmos.bicep', 'databaseName')).toBe(names.cosmos.database);
    const passed = moduleParam(ev, 'modules/cosmos.bicep', 'containers') as { name: string }[];
    const byName = (list: { name: string }[]) => [...list].sort((a, b) => a.name.localeCompare(b.name));
    expect(byName(passed)).toEqual(byName(cosmosContainers));
  });

  it('the module creates the database and each container with its hash partition key', () => {
    const file = bicep('modules/cosmos.bicep');
    const ev = new Evaluator(file, { databaseName: 'sluice' });
    const database = byType('modules/cosmos.bicep', 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases');
    expect(ev.node(propAt(database.value, 'properties.resource.id')!, new Map())).toBe('sluice');
    const containers = byType(
      'modules/cosmos.bicep',
      'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers',
    );
    expect(containers.value?.kind).toBe('for');
    const loop = containers.value as Extract<typeof containers.value, { kind: 'for' }>;
    expect(loop.header.map((t) => t.text)).toEqual(['containers']);
    expect(tokensIn(propAt(loop, 'parent')).map((t) => t.text)).toEqual([database.name]);
    for (const c of cosmosContainers) {
      const body = ev.node(bodyOf(loop)!, new Map([[loop.variables[0]!, { ...c }]])) as {
        name: string;
        properties: { resource: { id: string; partitionKey: unknown }; options?: unknown };
      };
      expect(body.name).toBe(c.name);
      expect(body.properties.resource.id).toBe(c.name);
      expect(body.properties.resource.partitionKey).toEqual({
        paths: [c.partitionKey],
        kind: 'Hash',
        version: 2,
      });
      // Serverless accounts take no provisioned throughput.
      expect(body.properties.options).toBeUndefined();
    }
    expect(literal(propAt(database.value, 'properties.options'))).toBeUndefined();
  });
});
