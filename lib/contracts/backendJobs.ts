import { z } from 'zod';

/**
 * Backend-specific settings of a user job (`algorithm: "custom"`): where an Azure ML command job or
 * an Azure Databricks run executes the user's code. Plain data: it travels in the training spec.
 */

/** Azure ML command job: the environment and compute the user's code runs on. */
export const azuremlJobSettingsSchema = z
  .object({
    /** An environment asset (`azureml:name:version`, `azureml://registries/...`, or an ARM id) or a Docker image. */
    environment: z.string().min(1).max(1024).optional(),
    /** A compute cluster's ARM id or name; omitted = serverless compute. */
    compute: z.string().min(1).max(1024).optional(),
    /** VM size for serverless compute. */
    instanceType: z.string().min(1).max(100).optional(),
  })
  .strict();
export type AzuremlJobSettings = z.infer<typeof azuremlJobSettingsSchema>;

/** Azure Databricks one-time run (Jobs API 2.2 `runs/submit`). */
export const databricksJobSettingsSchema = z
  .object({
    /** The kind of task the run executes. */
    task: z.enum(['spark_python', 'notebook', 'python_wheel']).default('spark_python'),
    /** python_wheel: the package and entry point. */
    packageName: z.string().min(1).max(200).optional(),
    entryPoint: z.string().min(1).max(200).optional(),
    /** One of: an existing cluster, a new job cluster spec (Databricks `new_cluster`), or serverless (neither). */
    existingClusterId: z.string().min(1).max(100).optional(),
    newCluster: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type DatabricksJobSettings = z.infer<typeof databricksJobSettingsSchema>;
