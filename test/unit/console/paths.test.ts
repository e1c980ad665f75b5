import { runPagePath } from '../../../lib/console/paths';

describe('runPagePath', () => {
  it('names the pipeline (the partition key) when it is known, so the page is one point read', () => {
    expect(runPagePath('churn-20261205-0001', 'churn')).toBe('/runs/churn/churn-20261205-0001');
  });
  it('falls back to the id-only path, which redirects, and escapes both segments', () => {
    expect(runPagePath('run 1')).toBe('/runs/run%201');
    expect(runPagePath('a/b', 'p q')).toBe('/runs/p%20q/a%2Fb');
  });
});
