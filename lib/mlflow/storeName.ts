/**
 * The kind of store an artifact or storage location names, for a refusal that says where a model's
 * files are and why Sluice does not read them there: what the store is and its scheme
 * (`Amazon S3 (s3:)`), the bare scheme for one not listed, or `local path` without one.
 */
export function storeName(location: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(location)?.[1]?.toLowerCase();
  if (!scheme) return 'local path';
  return knownStores[scheme] ?? `${scheme}:`;
}

const knownStores: Readonly<Record<string, string>> = {
  dbfs: 'Databricks DBFS (dbfs:)',
  s3: 'Amazon S3 (s3:)',
  gs: 'Google Cloud Storage (gs:)',
  r2: 'Cloudflare R2 (r2:)',
  abfss: 'Azure Data Lake Storage (abfss:)',
  wasbs: 'Azure Blob Storage (wasbs:)',
  wasb: 'Azure Blob Storage (wasb:)',
  azureml: 'Azure ML datastore (azureml:)',
  file: 'local file (file:)',
  models: 'model registry (models:)',
  runs: 'run (runs:)',
};
