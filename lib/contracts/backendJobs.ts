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
    /**
     * The kind of task the run executes: `spark_python` runs the Python file `code`/<the command's
     * first word> with the rest of the command as its parameters; `notebook` runs the notebook at
     * `code` with the SLUICE_* values as base parameters (widgets); `python_wheel` calls
     * `entryPoint` of `packageName` with the SLUICE_* values as named parameters.
     */
    task: z.enum(['spark_python', 'notebook', 'python_wheel']).default('spark_python'),
    /** python_wheel: the package and entry point. */
    packageName: z.string().min(1).max(200).optional(),
    entryPoint: z.string().min(1).max(200).optional(),
    /** One of: an existing cluster, a new job cluster spec (Databricks `new_cluster`), or serverless (neither). */
    existingClusterId: z.string().min(1).max(100).optional(),
    newCluster: z.record(z.string(), z.unknown()).optional(),
    /** Serverless: the environment version of the task's environment (Databricks `environment_version`). */
    environmentVersion: z.string().min(1).max(20).optional(),
    /**
     * Python packages the code needs, as pip requirement lines or paths: on serverless the
     * environment's `dependencies`; on a cluster task `libraries` (a `.whl` path → `whl`, a path
     * ending in `requirements.txt` → `requirements`, anything else → a PyPI `package`).
     */
    dependencies: z.array(z.string().min(1).max(1024)).max(100).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.existingClusterId && s.newCluster)
      ctx.addIssue({
        code: 'custom',
        path: ['newCluster'],
        message: 'give existingClusterId or newCluster, not both (neither = serverless)',
      });
    if (s.environmentVersion && (s.existingClusterId || s.newCluster))
      ctx.addIssue({
        code: 'custom',
        path: ['environmentVersion'],
        message: 'environmentVersion applies to serverless runs only (no cluster given)',
      });
    if (s.task === 'python_wheel') {
      for (const k of ['packageName', 'entryPoint'] as const)
        if (!s[k]) ctx.addIssue({ code: 'custom', path: [k], message: `a python_wheel task needs ${k}` });
    } else {
      for (const k of ['packageName', 'entryPoint'] as const)
        if (s[k])
          ctx.addIssue({ code: 'custom', path: [k], message: `${k} applies to python_wheel tasks only` });
    }
  });
export type DatabricksJobSettings = z.infer<typeof databricksJobSettingsSchema>;
