import type { Table } from './column';
import { conformTable } from './conform';
import type { DatasetContract } from './contract';
import type { ColumnDrift, DriftSide } from './drift';
import { driftColumn, finishDrift } from './drift';
import { profileTable } from './profile';
import type { Violation } from './quality';
import { checkColumn, checkTable } from './quality';
import type { ReferenceProfile } from './referenceProfile';
import { buildReferenceProfile } from './referenceProfile';
import type { DatasetInfo, ValidationReport } from './report';
import { contractDigest, REPORT_VERSION, summarize } from './report';
import type { SchemaDiff } from './schemaDiff';
import { diffDatasets } from './schemaDiff';

/**
 * Validation of typed columns (TFX's ExampleValidator role, with drift): conform the columns to
 * the contract's types, profile them, check the contract and quality rules, compare with the
 * reference, diff the schemas. Pure: the callers (the activity, the HTTP check) do the I/O.
 */

export interface ValidateInput {
  table: Table;
  contract: DatasetContract;
  dataset: DatasetInfo;
  /**
   * The data the production model was trained on (or the contract's fixed reference): its rows, or
   * its stored reference profile (built from the same data under the same contract).
   */
  reference?: { info: DatasetInfo } & ({ table: Table } | { profile: ReferenceProfile });
  /** Why there is no reference, when there is none (shown in the report). */
  noReferenceReason?: string;
}

export interface ValidateResult {
  report: ValidationReport;
  /** Milliseconds per stage: for benchmarks and the run timeline, never in the (deterministic) report. */
  timings: Record<'conform' | 'profile' | 'checks' | 'drift' | 'schemaDiff', number>;
  /** The reference's profile when it was computed from its rows here: callers store it for next time. */
  referenceProfile?: ReferenceProfile;
}

export function validateTable(input: ValidateInput): ValidateResult {
  const { contract } = input;
  // The reference first, reduced to a profile (a sample for large numeric columns) and a skeleton
  // (names, types, dictionaries): its data can then be freed before the current data is sorted.
  const r0 = performance.now();
  let reference: ReferenceProfile | undefined;
  let built: ReferenceProfile | undefined;
  if (input.reference && 'profile' in input.reference) reference = input.reference.profile;
  else if (input.reference) {
    reference = built = buildReferenceProfile(conformTable(input.reference.table, contract));
    // Drop the caller's hold on the rows too.
    (input.reference as { table: Table }).table = reference.table;
  }
  const referenceMs = performance.now() - r0;
  const t0 = performance.now();
  const table = conformTable(input.table, contract);
  const t1 = performance.now();
  // Column by column: profile, the column's contract checks and its drift while its sorted values
  // exist, then drop them, so a wide table never holds every sorted column at once.
  const specs = new Map(contract.columns.map((c) => [c.name, c]));
  const refIndex = new Map(reference?.table.columns.map((c, i) => [c.name, i]));
  const refSide = (name: string): DriftSide | undefined => {
    const i = refIndex.get(name);
    return reference && i !== undefined
      ? {
          col: reference.table.columns[i]!,
          stats: reference.profile.stats[i]!,
          profile: reference.profile.columns[i]!,
        }
      : undefined;
  };
  const columnViolations = new Map<string, Violation[]>();
  const drifts = new Map<string, ColumnDrift>();
  const testDrift = reference !== undefined && contract.drift.enabled;
  let checksMs = 0;
  let driftMs = referenceMs;
  const profile = profileTable(table, {
    keepSorted: false,
    onColumn: (i, r) => {
      const col = table.columns[i]!;
      const spec = specs.get(col.name);
      if (!spec) return;
      const a = performance.now();
      columnViolations.set(col.name, checkColumn(col, spec, table.rows, r.stats));
      const b = performance.now();
      if (testDrift)
        drifts.set(col.name, driftColumn(spec, contract.drift, refSide(col.name), { col, stats: r.stats }));
      checksMs += b - a;
      driftMs += performance.now() - b;
    },
  });
  const t2 = performance.now();
  const violations = checkTable(table, contract, profile, { columnViolations });
  const t3 = performance.now();
  let drift: ValidationReport['drift'];
  let schemaDiff: SchemaDiff | undefined;
  let t4 = t3;
  if (reference) {
    drift = testDrift
      ? finishDrift(
          contract.columns.map(
            (spec) =>
              drifts.get(spec.name) ?? driftColumn(spec, contract.drift, refSide(spec.name), undefined),
          ),
          contract.drift,
        )
      : { status: 'skipped', reason: 'drift is disabled in the contract' };
    t4 = performance.now();
    schemaDiff = diffDatasets(reference.table, table, {
      beforeProfile: reference.profile,
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
    ...(built ? { referenceProfile: built } : {}),
    report,
    timings: {
      conform: t1 - t0,
      profile: t2 - t1 - checksMs - (driftMs - referenceMs),
      checks: t3 - t2 + checksMs,
      drift: t4 - t3 + driftMs,
      schemaDiff: t5 - t4,
    },
  };
}
