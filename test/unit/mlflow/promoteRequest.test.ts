/** `sluice promote`'s start request: the file as the body with the URI as a query, or one JSON body for a blob. */
import { promoteRequest } from '../../../cli/promote';
import { commandHelp } from '../../../cli/sluice';

describe('sluice promote', () => {
  it('sends a file as the body and the model URI as ?mlflow=', () => {
    const file = Buffer.from('a,b\n1,2\n');
    const r = promoteRequest('churn', 'models:/churn@champion', { file, type: 'text/csv' });
    expect(r.path).toBe('/api/pipelines/churn/runs?mlflow=models%3A%2Fchurn%40champion');
    expect(new URL(r.path, 'http://x').searchParams.get('mlflow')).toBe('models:/churn@champion');
    expect(r.body).toEqual({ data: file, type: 'text/csv' });
  });

  it('sends a blob and the model URI in one JSON body', () => {
    const r = promoteRequest('churn', 'runs:/abc/model', { blob: 'datasets/churn/holdout.csv' });
    expect(r.path).toBe('/api/pipelines/churn/runs');
    expect(JSON.parse(r.body.data as string)).toEqual({
      source: { blob: 'datasets/churn/holdout.csv' },
      candidate: { mlflow: 'runs:/abc/model' },
    });
  });

  it('has its own help', () => {
    expect(commandHelp('promote')).toContain('sluice promote PIPELINE --mlflow URI');
  });
});
