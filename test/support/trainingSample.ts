/** A finished training job's result as the worker writes it in `status.json`, for tests. */
export function sampleTrainingResult(modelDigest = 'a'.repeat(64)) {
  return {
    modelUri: `https://acct.blob.core.windows.net/models/sha256/${modelDigest}`,
    modelDigest,
    algorithm: 'logistic_regression',
    task: 'binary',
    metrics: { holdout: { roc_auc: 0.9 } },
    rows: { train: 70 },
    iterations: 12,
    converged: true,
  };
}
