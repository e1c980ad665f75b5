/**
 * Console paths other pages link to. A run's page names its pipeline (`/runs/{pipeline}/{id}`):
 * the pipeline is the runs container's partition key, so the page reads the run with one point
 * read instead of a query over every partition (docs/console.md, "Speed"). `/runs/{id}` stays and
 * redirects there, for links that only know the id (the API's `links.console`, a model version).
 */
export function runPagePath(id: string, pipeline?: string): string {
  return pipeline
    ? `/runs/${encodeURIComponent(pipeline)}/${encodeURIComponent(id)}`
    : `/runs/${encodeURIComponent(id)}`;
}
