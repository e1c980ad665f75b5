/**
 * The files a training backend's job leaves under `jobs/<jobId>/` (request.json at submit, then
 * status.json), for tests that play the job themselves: a logistic regression on one feature that
 * is running, or has completed with a model reference.
 */

const HOUR_S = 3_600;

export function fakeJobRequest(jobId: string, runId: string): Record<string, unknown> {
  return {
    jobId,
    runId,
    spec: { algorithm: 'logistic_regression', target: 'y', features: ['x'], timeLimitSeconds: HOUR_S },
    dataset: { uri: 'http://127.0.0.1/datasets/columnar/x', sha256: 'b'.repeat(64) },
  };
}

export function fakeJobStatus(jobId: string, state: 'running' | 'completed'): Record<string, unknown> {
  const now = new Date().toISOString();
  const done = state === 'completed';
  return {
    jobId,
    state,
    progress: done ? 1 : 0.3,
    iteration: done ? 40 : 12,
    metrics: { loss: 0.41 },
    logTail: [`iteration ${done ? 40 : 12}`],
    startedAt: now,
    updatedAt: now,
    timeLimitSeconds: HOUR_S,
    ...(done
      ? {
          finishedAt: now,
          result: {
            modelUri: `http://127.0.0.1/models/sha256/${'a'.repeat(64)}`,
            modelDigest: 'a'.repeat(64),
            algorithm: 'logistic_regression',
            task: 'binary',
            metrics: { holdout: { roc_auc: 0.91 } },
            rows: { train: 700, validation: 150, holdout: 150 },
            iterations: 40,
            converged: true,
          },
        }
      : {}),
  };
}
