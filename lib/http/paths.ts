/**
 * Public paths of the app that other pages and documents link to, spelled once. Links to data go
 * through the API (which reads storage with the app's identity), never to the storage account,
 * whose URLs answer 403 to anyone without its keys.
 */

/** The kinds of stored report a run has (`GET /api/runs/{id}/reports/{kind}`). */
export const RUN_REPORT_KINDS = ['validation', 'evaluation'] as const;
export type RunReportKind = (typeof RUN_REPORT_KINDS)[number];

export function isRunReportKind(kind: string): kind is RunReportKind {
  return (RUN_REPORT_KINDS as readonly string[]).includes(kind);
}

/** `GET /api/runs/{id}/reports/{kind}`: the report as JSON, or HTML for a browser. */
export function runReportPath(runId: string, kind: RunReportKind): string {
  return `/api/runs/${encodeURIComponent(runId)}/reports/${kind}`;
}

/**
 * The run's page in the console: `/runs/{pipeline}/{id}`. The pipeline is the runs container's
 * partition key, so the page reads the run with one point read; `/runs/{id}` (a query over every
 * partition) stays only as a redirect for links that know no pipeline.
 */
export function consoleRunPath(runId: string, pipeline?: string): string {
  return pipeline
    ? `/runs/${encodeURIComponent(pipeline)}/${encodeURIComponent(runId)}`
    : `/runs/${encodeURIComponent(runId)}`;
}
