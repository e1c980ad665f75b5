// The audit trail's anchors need storage that cannot be rewritten: the container named in
// lib/resources.json immutableBlobContainers gets version-level immutability with a retention
// policy, and the account blob versioning that requires.
import { Evaluator } from './bicep';
import {
  bicep,
  bodyOf,
  literalAt,
  mainEvaluator,
  moduleParam,
  propAt,
  resource,
  SCENARIOS,
  ROOT,
  readJson,
} from './helpers';

const immutable = Object.values(
  readJson<{ immutableBlobContainers: Record<string, string> }>(`${ROOT}/lib/resources.json`)
    .immutableBlobContainers,
);

describe('audit anchors container', () => {
  it.each(Object.entries(SCENARIOS))('main.bicep passes every immutable container (%s)', (_n, o) => {
    const ev = mainEvaluator(o);
    expect(moduleParam(ev, 'modules/storage.bicep', 'immutableContainerNames')).toEqual(immutable);
    expect(immutable).toContain('audit-anchors');
  });

  it('the storage module turns on versioning and version-level immutability with a retention policy', () => {
    const file = bicep('modules/storage.bicep');
    const ev = new Evaluator(file, {
      name: 'st',
      location: 'x',
      tags: {},
      containerNames: [],
      immutableContainerNames: immutable,
    });
    const blobService = resource(file, 'blobService');
    expect(ev.node(propAt(bodyOf(blobService.value), 'properties.isVersioningEnabled')!, new Map())).toBe(
      true,
    );
    const containers = resource(file, 'immutableContainers');
    const loop = containers.value as { kind: 'for'; variables: string[] };
    const body = ev.node(bodyOf(containers.value)!, new Map([[loop.variables[0]!, 'audit-anchors']])) as {
      properties: Record<string, unknown>;
    };
    expect(body.properties).toEqual({
      publicAccess: 'None',
      immutableStorageWithVersioning: { enabled: true },
    });
    const policy = resource(file, 'immutabilityPolicies');
    expect(literalAt(policy, 'properties.allowProtectedAppendWrites')).toBe(false);
    expect(
      ev.node(propAt(bodyOf(policy.value), 'properties.immutabilityPeriodSinceCreationInDays')!, new Map()),
    ).toBe(2555);
  });
});
