import type { z } from 'zod';
import type { ValidateDatasetOutput } from '../lib/contracts/data';
import { validateDatasetActivity } from '../lib/contracts/data';
import type { BlobDigest } from '../lib/data/datasets';
import { storeReport } from '../lib/data/datasets';
import type { DataDeps } from '../lib/data/datasets';
import { dataDeps } from '../lib/services';
import { warmValidationWorker } from '../lib/data/checking/offThread';
import { columnarReference, resolveReference } from '../lib/data/profiling/reference';
import type { ReferenceInfo } from '../lib/data/profiling/referenceProfile';
import type { DatasetInfo } from '../lib/data/checking/report';
import { validateStored } from '../lib/data/checking/validateStored';
import { NonRetriableError } from '../lib/errors';
import { contractFor } from './ingestDataset';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof validateDatasetActivity.input>;

/** What the report says about a dataset (rows and columns are filled in from the data). */
function datasetInfo(
  columnar: BlobDigest,
  raw?: BlobDigest,
  format?: 'csv' | 'jsonl' | 'parquet',
): DatasetInfo {
  const out: DatasetInfo = { rows: 0, columns: 0, sha256: raw?.sha256 ?? columnar.sha256 };
  if (raw) out.bytes = raw.bytes;
  if (format) out.format = format;
  return out;
}

/** What the report says about the reference of a run (its raw digest when the run knows it). */
function infoOf(columnar: BlobDigest, raw?: BlobDigest): ReferenceInfo {
  const { rows: _rows, columns: _columns, ...info } = datasetInfo(columnar, raw);
  return info;
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
    // Its start-up overlaps the downloads (with a helper thread too for a large table).
    warmValidationWorker({ bytes: input.dataset.columnar.bytes });
    const dataset = datasetInfo(input.dataset.columnar, input.dataset.raw, input.dataset.format);
    // In a run the orchestrator resolved the production reference; otherwise only a reference fixed
    // in the contract applies (no production model yet).
    const ref = input.reference;
    const found = ref
      ? { reference: columnarReference(deps, contract, ref.columnar, infoOf(ref.columnar, ref.raw)) }
      : await resolveReference(deps, contract, undefined);
    const report = await validateStored(deps.store, {
      current: async () =>
        (
          await deps.store.getBuffer(input.dataset.columnar.uri, {
            sha256: input.dataset.columnar.sha256,
            shared: true, // read by the validation worker and its helper without a copy
          })
        ).data,
      contract,
      dataset,
      ...(found.reference ? { reference: found.reference } : {}),
      ...(found.reason ? { noReferenceReason: found.reason } : {}),
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

registerActivityFactory(validateDatasetActivity, (services) => validateDataset(dataDeps(services)));
