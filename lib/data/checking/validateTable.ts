import type { Table } from '../table';
import { conformColumn, conformTable } from './conform';
import type { DatasetContract } from '../../contracts/datasetContract';
import type { ColumnDrift, DriftSide } from '../profiling/drift';
import { driftColumn, finishDrift } from '../profiling/drift';
import type { ColumnProfile, ColumnStats, TableProfile } from '../profiling/profile';
import { attachCodeCounts, profileColumn } from '../profiling/profile';
import type { Violation } from './quality';
import { checkColumn, checkTable } from './quality';
import type { ReferenceProfile } from '../profiling/referenceProfile';
import { buildReferenceProfile } from '../profiling/referenceProfile';
import type { DatasetInfo, ValidationReport } from './report';
import { datasetContractDigest, REPORT_VERSION, summarize } from './report';
import type { SchemaDiff } from './schemaDiff';
import { diffDatasets } from './schemaDiff';
import { SortScratch } from '../profiling/sort';

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
  timings: Record<'conform' | 'profile' | 'checks' | 'drift' | 'schemaDiff' | 'helperWait', number>;
  /** The reference's profile when it was computed from its rows here: callers store it for next time. */
  referenceProfile?: ReferenceProfile;
  /** How many columns a helper thread validated (0 when none did). */
  helperColumns: number;
}

/**
 * One column's share of a validation: its profile, its contract checks and its drift. Columns are
 * independent until the table-level rules, so a second thread can do some of them (offThread.ts);
 * an outcome is plain data (structured-cloneable), without the column's sorted values.
 */
export interface ColumnOutcome {
  profile: ColumnProfile;
  stats: ColumnStats;
  /** Absent for a column the contract does not declare. */
  violations?: Violation[];
  drift?: ColumnDrift;
  ms: { profile: number; checks: number; drift: number };
}

/**
 * Columns shared with another thread: each side claims the next column not yet taken (so neither
 * waits on an estimate of which columns are slow), and `take` blocks until the other side's
 * outcomes for the columns it claimed are there.
 */
export interface ColumnShare {
  /** The next unclaimed column index, or the column count (or more) when none is left. */
  claim(): number;
  take(): Iterable<[number, ColumnOutcome]>;
}

/**
 * The helper thread's side of a {@link ColumnShare}: outcomes of the columns it claims, each read as
 * the contract's type first (the table is not conformed as a whole here).
 */
export function validateClaimedColumns(
  table: Table,
  contract: DatasetContract,
  reference: ReferenceProfile | undefined,
  claim: () => number,
): [number, ColumnOutcome][] {
  const declared = new Map(contract.columns.map((c) => [c.name, c.type]));
  const columns = [...table.columns];
  const column = columnValidator({ rows: table.rows, columns }, contract, reference);
  const out: [number, ColumnOutcome][] = [];
  for (let i = claim(); i < columns.length; i = claim()) {
    const type = declared.get(columns[i]!.name);
    if (type !== undefined) columns[i] = conformColumn(columns[i]!, type, contract.nullValues);
    out.push([i, column(i)]);
  }
  return out;
}

/** Validates one column at a time of a conformed table, sharing sort memory between columns. */
function columnValidator(
  table: Table,
  contract: DatasetContract,
  reference: ReferenceProfile | undefined,
): (i: number) => ColumnOutcome {
  const specs = new Map(contract.columns.map((c) => [c.name, c]));
  const refIndex = new Map(reference?.table.columns.map((c, i) => [c.name, i]));
  const testDrift = reference !== undefined && contract.drift.enabled;
  // Each column's sorted values are dropped before the next column sorts into the same memory.
  const scratch = new SortScratch(true);
  return (i) => {
    const col = table.columns[i]!;
    const a = performance.now();
    const { profile, stats } = profileColumn(col, table.rows, { scratch });
    const b = performance.now();
    const spec = specs.get(col.name);
    const outcome: ColumnOutcome = { profile, stats, ms: { profile: b - a, checks: 0, drift: 0 } };
    if (spec) {
      outcome.violations = checkColumn(col, spec, table.rows, stats);
      const c = performance.now();
      if (testDrift)
        outcome.drift = driftColumn(spec, contract.drift, refSide(reference, refIndex, col.name), {
          col,
          stats,
        });
      outcome.ms.checks = c - b;
      outcome.ms.drift = performance.now() - c;
    }
    delete stats.sorted;
    return outcome;
  };
}

function refSide(
  reference: ReferenceProfile | undefined,
  refIndex: Map<string, number>,
  name: string,
): DriftSide | undefined {
  const i = refIndex.get(name);
  return reference && i !== undefined
    ? {
        col: reference.table.columns[i]!,
        stats: reference.profile.stats[i]!,
        profile: reference.profile.columns[i]!,
      }
    : undefined;
}

export function validateTable(input: ValidateInput, options: { share?: ColumnShare } = {}): ValidateResult {
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
  // exist, then drop them, so a wide table never holds every sorted column at once. With a share,
  // another thread does the columns it claims meanwhile.
  const share = options.share;
  const n = table.columns.length;
  const column = columnValidator(table, contract, reference);
  const outcomes: ColumnOutcome[] = [];
  const local = { profile: 0, checks: 0, drift: 0 };
  let done = 0;
  for (let i = share ? share.claim() : 0; i < n; i = share ? share.claim() : i + 1) {
    const o = (outcomes[i] = column(i));
    done++;
    local.profile += o.ms.profile;
    local.checks += o.ms.checks;
    local.drift += o.ms.drift;
  }
  let helperWait = 0;
  let helperColumns = 0;
  if (share && done < n) {
    const w0 = performance.now();
    for (const [i, o] of share.take()) {
      // Structured cloning drops the profile's non-enumerable category counts: put them back.
      if (o.stats.codeCounts) attachCodeCounts(o.profile, o.stats.codeCounts);
      outcomes[i] = o;
      helperColumns++;
    }
    helperWait = performance.now() - w0;
  }
  const t2 = performance.now();
  const profile: TableProfile = {
    rows: table.rows,
    columns: table.columns.map((c, i) => {
      const o = outcomes[i];
      if (!o) throw new Error(`column "${c.name}" was not validated`);
      return o.profile;
    }),
    stats: outcomes.map((o) => o.stats),
  };
  const columnViolations = new Map<string, Violation[]>();
  const drifts = new Map<string, ColumnDrift>();
  outcomes.forEach((o, i) => {
    const name = table.columns[i]!.name;
    if (o.violations) columnViolations.set(name, o.violations);
    if (o.drift) drifts.set(name, o.drift);
  });
  const violations = checkTable(table, contract, profile, { columnViolations });
  const t3 = performance.now();
  const refIndex = new Map(reference?.table.columns.map((c, i) => [c.name, i]));
  let drift: ValidationReport['drift'];
  let schemaDiff: SchemaDiff | undefined;
  let t4 = t3;
  if (reference) {
    drift = contract.drift.enabled
      ? finishDrift(
          contract.columns.map(
            (spec) =>
              drifts.get(spec.name) ??
              driftColumn(spec, contract.drift, refSide(reference, refIndex, spec.name), undefined),
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
    contractSha256: datasetContractDigest(contract),
    summary: summarize(violations, drift, schemaDiff, contract.drift.verdict.failOn),
    columns: profile.columns.map(({ codeCounts: _codeCounts, ...rest }) => rest),
    violations,
    drift,
  };
  if (input.reference) report.reference = input.reference.info;
  if (schemaDiff) report.schemaDiff = schemaDiff;
  return {
    ...(built ? { referenceProfile: built } : {}),
    report,
    helperColumns,
    timings: {
      conform: t1 - t0,
      profile: local.profile,
      checks: t3 - t2 + local.checks,
      drift: t4 - t3 + local.drift + referenceMs,
      schemaDiff: t5 - t4,
      helperWait,
    },
  };
}
