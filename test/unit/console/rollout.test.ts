import { deployedLinks, deployedVersionOf, rolloutOf, rolloutSection } from '../../../lib/console/rollout';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { uploadedRunDocument } from '../../support/runSample';

const figures = (requests: number, errors: number) => ({
  requests,
  errors,
  errorRate: requests ? errors / requests : null,
  latencyP99Ms: 42,
  predictedRows: requests,
  psi: 0.31,
  compared: 0,
  agreement: null,
  productionRequests: 1000,
});

function runWith(over: Partial<RunDocument>): RunDocument {
  const run = uploadedRunDocument('run-1', 'churn', '2026-12-05T08:00:00.000Z');
  return { ...run, ...over };
}

describe('the Run page’s rollout', () => {
  const rolledBack = {
    rolloutId: 'run-1:rollout',
    modelName: 'churn',
    strategy: 'canary',
    state: 'rolled_back',
    step: 1,
    percent: 25,
    steps: [
      {
        step: 0,
        percent: 5,
        startedAt: '2026-12-05T09:00:00.000Z',
        endedAt: '2026-12-05T09:10:00.000Z',
        outcome: 'passed',
        figures: figures(200, 1),
      },
      {
        step: 1,
        percent: 25,
        startedAt: '2026-12-05T09:10:00.000Z',
        endedAt: '2026-12-05T09:12:00.000Z',
        outcome: 'rolled_back',
        figures: figures(80, 0),
      },
    ],
    outcome: 'rolled_back',
    reason: 'prediction PSI 0.31 above 0.25',
    breaches: [
      { guard: 'maxPredictionPsi', value: 0.31, limit: 0.25, message: 'prediction PSI 0.31 above 0.25' },
    ],
    endedAt: '2026-12-05T09:12:00.000Z',
  };

  it('shows every step with its figures, the outcome and the breaches', () => {
    const r = rolloutOf(runWith({ rollout: rolledBack }))!;
    expect(r).toBeDefined();
    const html = rolloutSection(r).toString();
    expect(html).toContain('data-rollout-state="rolled_back"');
    expect(html).toContain('data-rollout-row="0"');
    expect(html).toContain('data-rollout-row="1"');
    expect(html).toContain('<td class="n">200</td>');
    expect(html).toContain('1 (0.5 %)');
    expect(html).toContain('data-breach="maxPredictionPsi"');
    expect(html).toContain('prediction PSI 0.31 above 0.25');
  });

  it('says which step is live while the rollout runs, and escapes what it shows', () => {
    const live = {
      ...rolledBack,
      state: 'active',
      outcome: undefined,
      breaches: undefined,
      endedAt: undefined,
      notes: ['<b>paused</b> by ops'],
      steps: [{ step: 0, percent: 5, startedAt: '2026-12-05T09:00:00.000Z' }],
      step: 0,
      percent: 5,
    };
    const html = rolloutSection(rolloutOf(runWith({ rollout: live }))!).toString();
    expect(html).toContain('data-rollout-step="0"');
    expect(html).toContain('5 % of requests answered by the candidate');
    expect(html).toContain('in progress');
    expect(html).toContain('&lt;b&gt;paused&lt;/b&gt;');
  });

  it('ignores a rollout field that is not a rollout record', () => {
    expect(rolloutOf(runWith({ rollout: { nonsense: true } }))).toBeUndefined();
    expect(rolloutOf(runWith({}))).toBeUndefined();
  });

  it('links the deployed version’s evidence pack and MLflow zip', () => {
    const run = runWith({ deployment: { modelName: 'churn model', version: 7, moved: true } });
    const d = deployedVersionOf(run)!;
    expect(d).toEqual({ modelName: 'churn model', version: 7 });
    const html = deployedLinks(d).toString();
    expect(html).toContain('href="/api/models/churn%20model/versions/7/evidence"');
    expect(html).toContain('href="/models/churn%20model/versions/7/mlflow"');
    expect(deployedVersionOf(runWith({}))).toBeUndefined();
  });
});
