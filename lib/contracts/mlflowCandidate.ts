import { z } from 'zod';
import { defineActivity } from './activity';
import { jobResultSchema } from './trainingJob';
import { trainingSpecSchema } from './trainingSpec';

/**
 * A model trained elsewhere and registered or logged in MLflow, promoted through Sluice's gate
 * (docs/mlflow.md, "Promote a model trained elsewhere"). Resolved when the run starts, so an
 * unknown model is refused then, and an alias is pinned to the version it pointed at: the run
 * imports exactly what was resolved, even if the alias moves while it runs.
 */
export const mlflowCandidateSchema = z.object({
  /** As given: `models:/<name>/<version>`, `models:/<name>@<alias>` or `runs:/<run_id>/<path>`. */
  uri: z.string().min(1).max(1_000),
  /**
   * The model folder: its path on the tracking server's artifact proxy (under `mlflow-artifacts:/`),
   * a Databricks workspace location (`dbfs:/…`, `/Volumes/…`; lib/mlflow/databricksArtifacts.ts),
   * or, with `registry: 'databricks-uc'`, the version's Unity Catalog storage location (`abfss://…`).
   */
  artifactPath: z.string().min(1).max(2_000),
  /**
   * `databricks-uc`: a Unity Catalog model version (MLFLOW_REGISTRY_URI=databricks-uc), its files
   * read from its storage location with temporary READ credentials (lib/mlflow/ucRead.ts).
   */
  registry: z.literal('databricks-uc').optional(),
  /** The registered model and version it resolved to (models:/ URIs). */
  name: z.string().max(500).optional(),
  version: z.string().max(32).optional(),
  /** The MLflow run that logged it, when MLflow says. */
  runId: z.string().max(64).optional(),
});
export type MlflowCandidate = z.infer<typeof mlflowCandidateSchema>;

/** A run's candidate when it is not trained by Sluice: `{ "mlflow": … }`. */
export const runCandidateSchema = z.object({ mlflow: mlflowCandidateSchema });
export type RunCandidate = z.infer<typeof runCandidateSchema>;

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * The train step of a promoted run: downloads the MLflow model folder, checks it as a user job's
 * output is checked (against the pipeline's features, task and classes, on the run's data split),
 * stores it under its digest and answers the same JobResult a training job does. Retries cover an
 * MLflow outage; a folder that fails the check is non-retriable.
 */
export const importModelActivity = defineActivity(
  'importModel',
  z.object({
    runId: z.string().min(1).max(200),
    candidate: mlflowCandidateSchema,
    spec: trainingSpecSchema,
    /** The run's dataset (columnar form): split as training would, for the check's sample rows. */
    dataset: z.object({ uri: z.string().min(1), sha256 }),
    pipeline: z.object({ name: z.string().min(1), version: z.number().int().positive() }).optional(),
  }),
  jobResultSchema,
  { firstRetryIntervalMs: 5_000, maxAttempts: 5, backoffCoefficient: 2, maxRetryIntervalMs: 60_000 },
);
