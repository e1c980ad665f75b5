/**
 * `sluice promote PIPELINE --mlflow URI (--data FILE | --blob CONTAINER/PATH)`: a run of PIPELINE
 * whose candidate is a model trained elsewhere and registered or logged in MLflow (docs/mlflow.md).
 * Sluice resolves the URI when the run starts, imports and checks the model instead of training,
 * then validates the data, evaluates the model against the champion on it, asks the reviewers and
 * deploys: the same gate as every run. This file builds the request; cli/sluice.ts sends it and
 * follows the run as `sluice run` does.
 */

/** The command's help entry (cli/sluice.ts COMMANDS). */
export const PROMOTE_COMMAND = {
  usage:
    'sluice promote PIPELINE --mlflow URI (--data FILE | --blob CONTAINER/PATH) [--wait] [--storage CONN]',
  about:
    'Put a model trained elsewhere through the gate of PIPELINE: Sluice downloads the MLflow model\n' +
    'URI (models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH) from the MLflow server in\n' +
    "MLFLOW_TRACKING_URI, checks it as a training job's output, validates the data, evaluates the\n" +
    'model against production on it, asks the reviewers and deploys. No training runs. An unknown\n' +
    'model is refused at once. With --wait, follow the run as `sluice run --wait` does.',
  options: {
    mlflow: { type: 'string' as const },
    data: { type: 'string' as const },
    blob: { type: 'string' as const },
    wait: { type: 'boolean' as const, default: false },
    storage: { type: 'string' as const },
  },
  optionHelp: `  --mlflow URI             the MLflow model: models:/NAME/VERSION, models:/NAME@ALIAS (pinned to
                           its version when the run starts) or runs:/RUN_ID/PATH
  --data FILE              the data to evaluate on (.csv, .jsonl/.ndjson, or Parquet)
  --blob CONTAINER/PATH    a blob of the app's storage instead
  --wait                   follow the run to its end
  --storage CONN           outbox storage for the approval links (default: the host's Azurite)`,
  examples: [
    'sluice promote churn --mlflow models:/churn/7 --data holdout.csv --wait',
    'sluice promote churn --mlflow models:/churn@challenger --blob datasets/churn/holdout.csv',
    'sluice promote churn --mlflow runs:/0f3a9c…/model --data holdout.csv',
  ],
};

/**
 * The start request of a promoted run: for a file, the file is the body and the URI a query
 * parameter (`?mlflow=`); for a blob, one JSON body with both.
 */
export function promoteRequest(
  pipeline: string,
  mlflow: string,
  data: { file: Buffer; type: string } | { blob: string },
): { path: string; body: { data: string | Buffer; type: string } } {
  const base = `/api/pipelines/${encodeURIComponent(pipeline)}/runs`;
  if ('blob' in data) {
    return {
      path: base,
      body: {
        data: JSON.stringify({ source: { blob: data.blob }, candidate: { mlflow } }),
        type: 'application/json',
      },
    };
  }
  return {
    path: `${base}?${new URLSearchParams({ mlflow }).toString()}`,
    body: { data: data.file, type: data.type },
  };
}
