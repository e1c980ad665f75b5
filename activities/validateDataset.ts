import type { z } from 'zod';
import type { ValidateDatasetOutput } from '../lib/contracts/data';
import { validateDatasetActivity } from '../lib/contracts/data';
import type { BlobDigest } from '../lib/data/datasets';
import { decodeColumnar } from '../lib/data/columnar';
import { storeReport } from '../lib/data/datasets';
import type { DataDeps } from '../lib/data/deps';
import { getDataDeps } from '../lib/data/deps';
import { resolveReference } from '../lib/data/reference';
import type { OffThreadResult } from '../lib/data/offThread';
import { validateColumnarOffThread, warmValidationWorker } from '../lib/data/offThread';
import { loadReferenceProfile, storeReferenceProfile } from '../lib/data/referenceStore';
import type { DatasetInfo, ValidationReport } from '../lib/data/report';
import { contractDigest } from '../lib/data/report';
import { validateTable } from '../lib/data/validate';
import { NonRetriableError } from '../lib/errors';
import { contractFor } from './ingestDataset';
import { registerActivity } from './support/define';

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
    warmValidationWorker(); // its start-up overlaps the downloads
    const readCurrent = async (): Promise<Buffer> =>
      (await deps.store.getBuffer(input.dataset.columnar.uri, { sha256: input.dataset.columnar.sha256 }))
        .data;
    let current = await readCurrent();
    const dataset = datasetInfo(input.dataset.columnar, input.dataset.raw, input.dataset.format);
    let report: ValidationReport;
    if (input.reference) {
      // The common case in a run: both sides come from Blob, validated off the event loop. The
      // reference's profile is read when an earlier validation stored it; otherwise its rows are
      // read, profiled, and the profile is stored for the next run against the same model.
      const ref = input.reference;
      const referenceKey = { columnarSha256: ref.columnar.sha256, contractSha256: contractDigest(contract) };
      const referenceInfo = datasetInfo(ref.columnar, ref.raw);
      const cached = await loadReferenceProfile(deps.store, referenceKey);
      let result: OffThreadResult | undefined;
      if (cached) {
        try {
          result = await validateColumnarOffThread({
            current,
            referenceProfile: cached,
            referenceKey,
            contract,
            dataset,
            referenceInfo,
          });
        } catch (err) {
          // A profile that no longer reads: recomputed below from the rows (and replaced).
          if ((err as { code?: string }).code !== 'REFERENCE_PROFILE_INVALID') throw err;
          current = await readCurrent(); // the first attempt took the bytes to the worker
        }
      }
      if (!result) {
        const reference = (await deps.store.getBuffer(ref.columnar.uri, { sha256: ref.columnar.sha256 }))
          .data;
        result = await validateColumnarOffThread({
          current,
          reference,
          referenceKey,
          contract,
          dataset,
          referenceInfo,
        });
        if (result.referenceProfile)
          await storeReferenceProfile(deps.store, referenceKey, result.referenceProfile);
      }
      report = result.report;
    } else {
      // No production model yet: only a reference fixed in the contract applies.
      const found = await resolveReference(deps, contract, undefined);
      if (found.reference) {
        const table = decodeColumnar(current);
        report = validateTable({
          table,
          contract,
          dataset: { ...dataset, rows: table.rows, columns: table.columns.length },
          reference: found.reference,
        }).report;
      } else {
        report = (
          await validateColumnarOffThread({
            current,
            contract,
            dataset,
            ...(found.reason ? { noReferenceReason: found.reason } : {}),
          })
        ).report;
      }
    }
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
