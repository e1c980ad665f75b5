import type { AuditEntry } from '../audit/chain';
import { readStepOutputs } from '../contracts/run';
import type { RunDocument } from '../contracts/runDocument';
import { LOCK_WAIT_BEGAN, LOCK_WAIT_ENDED } from './deployLock';

/**
 * A run's waits for a model's deployment lock as the audit trail tells them (lib/registry/deployLock.ts
 * writes them): pure, for the Run page and the evidence pack.
 */

export interface LockWaitHolder {
  runId: string;
  pipeline: string;
}

/** One wait for the lock, paired from its wait_began and wait_ended audit entries. */
export interface LockWait {
  since: string;
  holder?: LockWaitHolder;
  reason?: string;
  endedAt?: string;
  outcome?: string;
  waitedSeconds?: number;
  /** The entries' sequence numbers and hashes (the audit trail's proof). */
  entries: { seq: number; kind: string; hash: string }[];
}

/**
 * The audit subject of a run's waits for the lock of `modelName`: its registered candidate
 * (`model/<name>/<version>`, so the version's evidence pack lists them), else `run/<id>`.
 */
export function lockWaitSubject(run: Pick<RunDocument, 'id' | 'steps'>, modelName: string): string {
  const version = readStepOutputs(run.steps, 'evaluate')?.modelVersion;
  return version ? `model/${modelName}/${version}` : `run/${run.id}`;
}

const holderOf = (v: unknown): LockWaitHolder | undefined => {
  const h = v as Partial<LockWaitHolder> | undefined;
  return typeof h?.runId === 'string' && typeof h.pipeline === 'string'
    ? { runId: h.runId, pipeline: h.pipeline }
    : undefined;
};
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The run's waits, oldest first, from the audit entries of its subject. */
export function lockWaitsOf(entries: readonly AuditEntry[], runId: string): LockWait[] {
  const waits = new Map<string, LockWait>();
  for (const e of [...entries].sort((a, b) => a.seq - b.seq)) {
    if ((e.kind !== LOCK_WAIT_BEGAN && e.kind !== LOCK_WAIT_ENDED) || e.data.runId !== runId) continue;
    const since = str(e.data.since) ?? e.at;
    const wait = waits.get(since) ?? { since, entries: [] };
    const holder = holderOf(e.data.holder);
    const reason = str(e.data.reason);
    if (holder) wait.holder = holder;
    if (reason) wait.reason = reason;
    if (e.kind === LOCK_WAIT_ENDED) {
      const endedAt = str(e.data.endedAt);
      const outcome = str(e.data.outcome);
      if (endedAt) wait.endedAt = endedAt;
      if (outcome) wait.outcome = outcome;
      if (typeof e.data.waitedSeconds === 'number') wait.waitedSeconds = e.data.waitedSeconds;
    }
    wait.entries.push({ seq: e.seq, kind: e.kind, hash: e.hash });
    waits.set(since, wait);
  }
  return [...waits.values()].sort((a, b) => a.since.localeCompare(b.since));
}
