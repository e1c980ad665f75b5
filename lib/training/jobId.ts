import { createHash } from 'node:crypto';

// Kept out of lib/contracts: the contracts are reachable from orchestrators, which may not touch
// node:crypto. Only activities and HTTP handlers compute job ids.

/** A job id that is a pure function of the run: a retried submit finds the job it started. */
export function trainingJobId(runId: string, attempt = 1): string {
  if (attempt > 1) return trainingJobId(`${runId}:attempt-${attempt}`);
  const slug = runId
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, 40);
  const hash = createHash('sha256').update(runId).digest('hex').slice(0, 12);
  return slug ? `${slug}-${hash}` : `job-${hash}`;
}
