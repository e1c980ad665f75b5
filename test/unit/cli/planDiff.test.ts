/**
 * The field diff behind `sluice pipelines plan` (lib/pipelines/diff.ts) and its one-line format:
 * paths as the API names fields, key order ignored, arrays of objects element by element.
 */
import { changeLine, planHasChanges, planLines } from '../../../cli/pipelinesAsCode';
import { diffDefinitions, sameJson, shortJson } from '../../../lib/pipelines/diff';

describe('diffDefinitions', () => {
  it('finds nothing between equal definitions whatever their key order', () => {
    expect(diffDefinitions({ a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 })).toEqual(
      [],
    );
    expect(sameJson({ a: 1, b: undefined }, { a: 1 })).toBe(true);
  });

  it('names each added, removed and changed leaf by its path, sorted', () => {
    expect(
      diffDefinitions(
        { name: 'w', evaluation: { threshold: 0.1, minRows: 50 }, description: 'old' },
        { name: 'w', evaluation: { threshold: 0.2, minRows: 50 }, schedule: { cron: '0 0 6 * * 1' } },
      ),
    ).toEqual([
      { path: 'description', kind: 'removed', old: 'old' },
      { path: 'evaluation.threshold', kind: 'changed', old: 0.1, new: 0.2 },
      { path: 'schedule', kind: 'added', new: { cron: '0 0 6 * * 1' } },
    ]);
  });

  it('compares arrays of objects element by element, other arrays as one value', () => {
    const cols = (t: string) => [
      { name: 'a', type: 'number' },
      { name: 'b', type: t },
    ];
    expect(
      diffDefinitions({ columns: cols('number') }, { columns: [...cols('integer'), { name: 'c' }] }),
    ).toEqual([
      { path: 'columns.1.type', kind: 'changed', old: 'number', new: 'integer' },
      { path: 'columns.2', kind: 'added', new: { name: 'c' } },
    ]);
    expect(diffDefinitions({ features: ['a', 'b'] }, { features: ['b', 'a'] })).toEqual([
      { path: 'features', kind: 'changed', old: ['a', 'b'], new: ['b', 'a'] },
    ]);
  });
});

describe('the plan as people read it', () => {
  it('one line per change, long values cut', () => {
    expect(changeLine({ path: 'evaluation.threshold', kind: 'changed', old: 0.1, new: 0.2 })).toBe(
      '~ evaluation.threshold: 0.1 → 0.2',
    );
    expect(changeLine({ path: 'schedule', kind: 'added', new: { cron: 'x' } })).toBe(
      '+ schedule: {"cron":"x"}',
    );
    expect(shortJson('x'.repeat(100))).toHaveLength(60);
    expect(shortJson('x'.repeat(100)).endsWith('…')).toBe(true);
  });

  it('a block per pipeline and a summary; only creates and updates are changes', () => {
    const plan = {
      pipelines: [
        { name: 'a', action: 'create' as const, file: 'p/a.json', changes: [] },
        { name: 'b', action: 'server_only' as const, serverVersion: 4, changes: [] },
        { name: 'c', action: 'unchanged' as const, file: 'p/c.yaml', serverVersion: 2, changes: [] },
      ],
      summary: { create: 1, update: 0, unchanged: 1, serverOnly: 1 },
    };
    expect(planLines(plan, 'p/')).toEqual([
      '+ a (p/a.json): new pipeline',
      '? b: on the server (version 4) but not in p/; kept (apply never deletes)',
      '= c (p/c.yaml): unchanged (version 2)',
      'Plan: 1 to create, 0 to change, 1 unchanged, 1 only on the server.',
    ]);
    expect(planHasChanges(plan)).toBe(true);
    expect(planHasChanges({ ...plan, summary: { create: 0, update: 0, unchanged: 1, serverOnly: 1 } })).toBe(
      false,
    );
  });
});
