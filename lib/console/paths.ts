import { consoleRunPath } from '../http/paths';

/**
 * Console paths other pages link to. A run's page names its pipeline (`/runs/{pipeline}/{id}`):
 * the pipeline is the runs container's partition key, so the page reads the run with one point
 * read instead of a query over every partition (docs/console.md, "Speed"). `/runs/{id}` stays and
 * redirects there, for old links that only know the id. Spelled once, in lib/http/paths.ts, which
 * the run document's `links.console` uses too.
 */
export function runPagePath(id: string, pipeline?: string): string {
  return consoleRunPath(id, pipeline);
}

/** A model's page. */
export function modelPagePath(name: string): string {
  return `/models/${encodeURIComponent(name)}`;
}

/**
 * A model version as an MLflow model zip, through the console (its sign-in and roles): the API's
 * `GET /api/models/{name}/versions/{v}/mlflow` needs a function key in Azure, which console users
 * do not have. Same handler, same bytes (functions/console.ts).
 */
export function consoleMlflowZipPath(name: string, version: number): string {
  return `/models/${encodeURIComponent(name)}/versions/${version}/mlflow`;
}
