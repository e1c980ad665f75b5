import { createHash } from 'node:crypto';
import type { DatasetContract } from '../../contracts/datasetContract';
import type { DatasetDrift } from '../profiling/drift';
import type { ColumnProfile } from '../profiling/profile';
import type { Violation } from './quality';
import type { SchemaDiff } from './schemaDiff';

/**
 * The validation report: one JSON document per validated dataset, stored in Blob and returned by
 * `POST /api/datasets/validate`. It is deterministic (no clock, no host): the same data and
 * contract give the same bytes, so a retried activity writes the same blob.
 */

export const REPORT_VERSION = 1;

export type ValidationStatus = 'passed' | 'warning' | 'failed';

export interface DatasetInfo {
  rows: number;
  columns: number;
  sha256?: string;
  bytes?: number;
  format?: 'csv' | 'jsonl' | 'parquet';
}

export interface ValidationSummary {
  status: ValidationStatus;
  errors: number;
  warnings: number;
  /** Distinct rules that failed, e.g. `nullable:sex`, `row:age-over-education`. */
  failedRules: string[];
  drift: DatasetDrift['status'] | 'skipped';
  driftedColumns: string[];
  breakingSchemaChanges: number;
  /** One sentence for a run timeline or an approval page. */
  headline: string;
}

export interface ValidationReport {
  version: typeof REPORT_VERSION;
  dataset: DatasetInfo;
  /** SHA-256 of the contract as JSON, so a report names exactly what it checked against. */
  contractSha256: string;
  reference?: DatasetInfo;
  summary: ValidationSummary;
  columns: Omit<ColumnProfile, 'codeCounts'>[];
  violations: Violation[];
  drift: DatasetDrift | { status: 'skipped'; reason: string };
  schemaDiff?: SchemaDiff;
}

/** Stable JSON (sorted keys) for hashing. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

export function datasetContractDigest(contract: DatasetContract): string {
  return createHash('sha256').update(canonicalJson(contract)).digest('hex');
}

export function summarize(
  violations: Violation[],
  drift: ValidationReport['drift'],
  schemaDiff: SchemaDiff | undefined,
): ValidationSummary {
  const errors = violations.filter((v) => v.severity === 'error').length;
  const warnings = violations.filter((v) => v.severity === 'warning').length;
  const driftStatus = drift.status;
  const driftFails = driftStatus === 'drifted' && 'onDrift' in drift && drift.onDrift === 'fail';
  const driftWarns = driftStatus === 'drifted' && !driftFails;
  const status: ValidationStatus =
    errors > 0 || driftFails ? 'failed' : warnings > 0 || driftWarns ? 'warning' : 'passed';
  const failedRules = [...new Set(violations.map((v) => (v.column ? `${v.rule}:${v.column}` : v.rule)))];
  const driftedColumns = 'columns' in drift ? drift.driftedColumns : [];
  const parts: string[] = [];
  if (errors)
    parts.push(
      `${errors} error(s): ${failedRules.slice(0, 3).join(', ')}${failedRules.length > 3 ? ', …' : ''}`,
    );
  if (warnings) parts.push(`${warnings} warning(s)`);
  if (driftStatus === 'drifted') parts.push(`drift in ${driftedColumns.join(', ')}`);
  const breaking = schemaDiff?.changes.filter((c) => c.breaking).length ?? 0;
  if (breaking) parts.push(`${breaking} breaking schema change(s)`);
  const headline = status === 'passed' ? 'data passed validation' : parts.join('; ');
  return {
    status,
    errors,
    warnings,
    failedRules,
    drift: driftStatus,
    driftedColumns,
    breakingSchemaChanges: breaking,
    headline,
  };
}
