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

/** The run's page in the console. */
export function consoleRunPath(runId: string): string {
  return `/runs/${encodeURIComponent(runId)}`;
}
