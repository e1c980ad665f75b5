import { createHash } from 'node:crypto';
import type { DatasetContract, ValidationFailOn } from '../../contracts/datasetContract';
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

/** "drift in 1 of 30 columns: mean_radius" (at most five names, then how many more). */
export function driftPhrase(driftedColumns: readonly string[], testedColumns: number): string {
  const names = driftedColumns.slice(0, 5).join(', ');
  const more = driftedColumns.length > 5 ? ` and ${driftedColumns.length - 5} more` : '';
  return `drift in ${driftedColumns.length} of ${testedColumns} column${testedColumns === 1 ? '' : 's'}: ${names}${more}`;
}

/**
 * The report's verdict. Errors stop the run, and so does a drifted dataset under `onDrift: fail`
 * and whatever `failOn` names; every other finding is a warning: a quality warning, any drifted
 * column (even one of thirty), a breaking schema change.
 */
export function summarize(
  violations: Violation[],
  drift: ValidationReport['drift'],
  schemaDiff: SchemaDiff | undefined,
  failOn: readonly ValidationFailOn[] = [],
): ValidationSummary {
  const errors = violations.filter((v) => v.severity === 'error').length;
  const warnings = violations.filter((v) => v.severity === 'warning').length;
  const driftStatus = drift.status;
  const driftedColumns = 'columns' in drift ? drift.driftedColumns : [];
  const testedColumns = 'columns' in drift ? drift.testedColumns : 0;
  const breaking = schemaDiff?.changes.filter((c) => c.breaking).length ?? 0;
  const datasetDriftFails = driftStatus === 'drifted' && 'onDrift' in drift && drift.onDrift === 'fail';
  const columnDriftFails = driftedColumns.length > 0 && failOn.includes('columnDrift');
  const breakingFails = breaking > 0 && failOn.includes('breakingSchemaChange');
  const fails = errors > 0 || datasetDriftFails || columnDriftFails || breakingFails;
  const status: ValidationStatus = fails
    ? 'failed'
    : warnings > 0 || driftedColumns.length > 0 || breaking > 0
      ? 'warning'
      : 'passed';
  const failedRules = [...new Set(violations.map((v) => (v.column ? `${v.rule}:${v.column}` : v.rule)))];
  const parts: string[] = [];
  if (errors)
    parts.push(
      `${errors} error(s): ${failedRules.slice(0, 3).join(', ')}${failedRules.length > 3 ? ', …' : ''}`,
    );
  if (warnings) parts.push(`${warnings} warning(s)`);
  if (driftedColumns.length > 0) parts.push(driftPhrase(driftedColumns, testedColumns));
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
