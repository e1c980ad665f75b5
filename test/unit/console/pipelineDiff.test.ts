import { diffJson } from '../../../lib/console/pages/diff';

describe('field-level diff of two pipeline versions', () => {
  const v1 = {
    name: 'wages',
    training: { algorithm: 'ridge', params: { l2: 1 }, features: ['age', 'hours'] },
    dataset: {
      columns: [
        { name: 'age', type: 'integer', min: 16 },
        { name: 'hours', type: 'number' },
      ],
    },
  };

  it('names each changed leaf by its path, matching named items by name', () => {
    const v2 = {
      name: 'wages',
      description: 'weekly wages',
      training: { algorithm: 'ridge', params: { l2: 0.5 }, features: ['age', 'hours', 'region'] },
      dataset: {
        columns: [
          { name: 'region', type: 'string' },
          { name: 'age', type: 'integer', min: 18 },
          { name: 'hours', type: 'number' },
        ],
      },
    };
    expect(diffJson(v1, v2)).toEqual([
      { path: 'training.params.l2', change: 'changed', before: 1, after: 0.5 },
      {
        path: 'training.features',
        change: 'changed',
        before: ['age', 'hours'],
        after: ['age', 'hours', 'region'],
      },
      { path: 'dataset.columns[age].min', change: 'changed', before: 16, after: 18 },
      { path: 'dataset.columns[region]', change: 'added', after: { name: 'region', type: 'string' } },
      { path: 'description', change: 'added', after: 'weekly wages' },
    ]);
  });

  it('is empty for equal documents and reports removals and reordering', () => {
    expect(diffJson(v1, structuredClone(v1))).toEqual([]);
    const swapped = structuredClone(v1);
    swapped.dataset.columns.reverse();
    delete (swapped.training.params as { l2?: number }).l2;
    expect(diffJson(v1, swapped)).toEqual([
      { path: 'training.params.l2', change: 'removed', before: 1 },
      {
        path: 'dataset.columns (order)',
        change: 'changed',
        before: ['age', 'hours'],
        after: ['hours', 'age'],
      },
    ]);
  });
});
