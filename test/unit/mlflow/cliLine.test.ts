import { mlflowLine } from '../../../cli/sluice';

describe('sluice run shows the MLflow mirror', () => {
  it('says synced with the MLflow run and the registry copy', () => {
    expect(
      mlflowLine({
        status: 'synced',
        runId: 'abc',
        model: { name: 'churn', version: '7', alias: 'champion' },
      }),
    ).toBe('  mlflow: synced run abc, model churn v7 @champion');
  });

  it('says pending with the next retry and the reason after an outage', () => {
    expect(
      mlflowLine({
        status: 'pending',
        runId: 'abc',
        attempts: 2,
        nextAttemptAt: '2026-03-01T12:02:00.000Z',
        error: { code: 'mlflow_unavailable', message: 'MLflow runs/log-batch answered 503' },
      }),
    ).toBe('  mlflow: pending, retry after 2026-03-01T12:02:00.000Z (mlflow_unavailable) run abc');
    expect(mlflowLine({ status: 'pending' })).toBe('  mlflow: pending');
  });

  it('says failed with the reason', () => {
    expect(
      mlflowLine({
        status: 'failed',
        error: { code: 'mlflow_unauthorized', message: 'MLflow answered 401' },
      }),
    ).toBe('  mlflow: failed (mlflow_unauthorized: MLflow answered 401)');
  });
});
