import type { z } from 'zod';
import type { ValidateDatasetOutput } from '../lib/contracts/data';
import { validateDatasetActivity } from '../lib/contracts/data';
import type { Table } from '../lib/data/column';
import type { BlobDigest } from '../lib/data/datasets';
import { loadColumnar, storeReport } from '../lib/data/datasets';
import type { DataDeps } from '../lib/data/deps';
import { getDataDeps } from '../lib/data/deps';
import { resolveReference } from '../lib/data/reference';
import type { DatasetInfo } from '../lib/data/report';
import { validateTable } from '../lib/data/validate';
import { NonRetriableError } from '../lib/errors';
import { contractFor } from './ingestDataset';
import { registerActivity } from './support/define';

type Input = z.output<typeof validateDatasetActivity.input>;

function info(table: Table, columnar: BlobDigest, raw?: BlobDigest, format?: 'csv' | 'jsonl'): DatasetInfo {
  const out: DatasetInfo = {
    rows: table.rows,
    columns: table.columns.length,
    sha256: raw?.sha256 ?? columnar.sha256,
  };
  if (raw) out.bytes = raw.bytes;
  if (format) out.format = format;
  return out;
}

/**
 * Validates the ingested dataset against its contract and the reference, stores the report in Blob
 * (content-addressed: the same inputs give the same report blob) and returns its reference with a
 * summary small enough for the run document.
 */
export function validateDataset(deps: DataDeps) {
  return async (input: Input): Promise<ValidateDatasetOutput> => {
    const contract = await contractFor(deps, input);
    if (!contract)
      throw new NonRetriableError(
        'contract_required',
        'validation needs a contract: pass pipeline or contract',
      );
    const table = await loadColumnar(deps.store, input.dataset.columnar);
    let reference: { table: Table; info: DatasetInfo } | undefined;
    let noReferenceReason: string | undefined;
    if (input.reference) {
      const refTable = await loadColumnar(deps.store, input.reference.columnar);
      reference = { table: refTable, info: info(refTable, input.reference.columnar, input.reference.raw) };
    } else {
      // The orchestrator passes the production reference; without one, only a fixed reference applies.
      const found = await resolveReference(deps, contract, undefined);
      reference = found.reference;
      noReferenceReason = found.reason;
    }
    const { report } = validateTable({
      table,
      contract,
      dataset: info(table, input.dataset.columnar, input.dataset.raw, input.dataset.format),
      ...(reference ? { reference } : {}),
      ...(noReferenceReason ? { noReferenceReason } : {}),
    });
    const stored = await storeReport(deps.store, report);
    const s = report.summary;
    return {
      report: stored,
      status: s.status,
      passed: s.status !== 'failed',
      headline: s.headline.slice(0, 1_000),
      errors: s.errors,
      warnings: s.warnings,
      failedRules: s.failedRules.slice(0, 20),
      drift: s.drift,
      driftedColumns: s.driftedColumns.slice(0, 20),
      breakingSchemaChanges: s.breakingSchemaChanges,
    };
  };
}

registerActivity(validateDatasetActivity, async (input) => validateDataset(await getDataDeps())(input));
