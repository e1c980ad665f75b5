import type { Table } from './column';
import { conformTable } from './conform';
import type { DatasetContract } from './contract';
import { computeDrift } from './drift';
import type { TableProfile } from './profile';
import { profileTable } from './profile';
import { checkTable } from './quality';
import type { DatasetInfo, ValidationReport } from './report';
import { contractDigest, REPORT_VERSION, summarize } from './report';
import type { SchemaDiff } from './schemaDiff';
import { diffDatasets } from './schemaDiff';

/**
 * Validation of typed columns (TFX's ExampleValidator role, with drift): conform the columns to
 * the contract's types, profile them, check the contract and quality rules, compare with the
 * reference, diff the schemas. Pure: the callers (the activity, the HTTP check) do the I/O.
 */

/** Largest number of values per numeric reference column that drift compares with (see ProfileOptions). */
export const REFERENCE_SAMPLE = 100_000;

export interface ValidateInput {
  table: Table;
  contract: DatasetContract;
  dataset: DatasetInfo;
  /** The data the production model was trained on (or the contract's fixed reference). */
  reference?: { table: Table; info: DatasetInfo; profile?: TableProfile };
  /** Why there is no reference, when there is none (shown in the report). */
  noReferenceReason?: string;
}

export interface ValidateResult {
  report: ValidationReport;
  /** Milliseconds per stage: for benchmarks and the run timeline, never in the (deterministic) report. */
  timings: Record<'conform' | 'profile' | 'checks' | 'drift' | 'schemaDiff', number>;
}

export function validateTable(input: ValidateInput): ValidateResult {
  const { contract } = input;
  const t0 = performance.now();
  const table = conformTable(input.table, contract);
  const t1 = performance.now();
  const profile = profileTable(table);
  const t2 = performance.now();
  const violations = checkTable(table, contract, profile);
  const t3 = performance.now();
  let drift: ValidationReport['drift'];
  let schemaDiff: SchemaDiff | undefined;
  let t4 = t3;
  if (input.reference) {
    const refTable = conformTable(input.reference.table, contract);
    const refProfile = input.reference.profile ?? profileTable(refTable, { sampleAbove: REFERENCE_SAMPLE });
    drift = contract.drift.enabled
      ? computeDrift({ table: refTable, profile: refProfile }, { table, profile }, contract)
      : { status: 'skipped', reason: 'drift is disabled in the contract' };
    t4 = performance.now();
    schemaDiff = diffDatasets(refTable, table, {
      beforeProfile: refProfile,
      afterProfile: profile,
      nullValues: contract.nullValues,
    });
  } else {
    drift = {
      status: 'skipped',
      reason: input.noReferenceReason ?? 'no reference dataset (no model in production yet)',
    };
  }
  const t5 = performance.now();
  const report: ValidationReport = {
    version: REPORT_VERSION,
    dataset: input.dataset,
    contractSha256: contractDigest(contract),
    summary: summarize(violations, drift, schemaDiff),
    columns: profile.columns.map(({ codeCounts: _codeCounts, ...rest }) => rest),
    violations,
    drift,
  };
  if (input.reference) report.reference = input.reference.info;
  if (schemaDiff) report.schemaDiff = schemaDiff;
  return {
    report,
    timings: { conform: t1 - t0, profile: t2 - t1, checks: t3 - t2, drift: t4 - t3, schemaDiff: t5 - t4 },
  };
}
