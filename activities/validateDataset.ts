import type { z } from 'zod';
import type { ValidateDatasetOutput } from '../lib/contracts/data';
import { validateDatasetActivity } from '../lib/contracts/data';
import type { Table } from '../lib/data/column';
import type { DatasetContract } from '../lib/data/contract';
import type { BlobDigest } from '../lib/data/datasets';
import { ingestBlob, loadColumnar, storeReport } from '../lib/data/datasets';
import type { DataDeps } from '../lib/data/deps';
import { getDataDeps } from '../lib/data/deps';
import type { DatasetInfo } from '../lib/data/report';
import { validateTable } from '../lib/data/validate';
import { NonRetriableError } from '../lib/errors';
import { contractFor } from './ingestDataset';
import { registerActivity } from './support/define';

type Input = z.output<typeof validateDatasetActivity.input>;

/** The contract's fixed reference: a columnar blob, or a raw dataset ingested (idempotently) first. */
async function fixedReference(
  deps: DataDeps,
  contract: DatasetContract,
): Promise<{ table: Table; info: DatasetInfo } | undefined> {
  const ref = contract.drift.reference;
  if (ref.kind !== 'dataset') return undefined;
  if (/\/columnar\/sha256\/[0-9a-f]{64}$/.test(ref.uri)) {
    const table = await loadColumnar(deps.store, { uri: ref.uri, sha256: ref.sha256 });
    return { table, info: { rows: table.rows, columns: table.columns.length, sha256: ref.sha256 } };
  }
  const { table, dataset } = await ingestBlob(deps.store, ref.uri, {
    sha256: ref.sha256,
    contract,
    limits: deps.limits,
  });
  return {
    table,
    info: {
      rows: table.rows,
      columns: table.columns.length,
      sha256: dataset.raw.sha256,
      bytes: dataset.raw.bytes,
      format: dataset.format,
    },
  };
}

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
      reference = await fixedReference(deps, contract);
      if (!reference)
        noReferenceReason =
          'no reference dataset: no model in production yet and no fixed reference in the contract';
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
