import type { ArtifactStore } from '../../storage/blob';
import type { DatasetContract } from '../../contracts/datasetContract';
import type { OffThreadResult } from './offThread';
import { validateColumnarOffThread } from './offThread';
import type { ReferenceInfo, ReferenceProfileKey } from '../profiling/referenceProfile';
import { loadReferenceProfile, storeReferenceProfile } from '../profiling/referenceStore';
import type { DatasetInfo, ValidationReport } from './report';

/**
 * Validation of stored data against a reference, shared by the validate activity and the dataset
 * check: the reference's stored profile is used when an earlier validation left one; otherwise its
 * columnar bytes are loaded, profiled on the worker, and the profile is stored for the next time.
 */

export interface ReferenceSource {
  key: ReferenceProfileKey;
  /** What the report says of the reference (rows and columns come from the data). */
  info: ReferenceInfo;
  /** The reference's columnar bytes, only needed when no stored profile reads. */
  load(): Promise<{ columnar: Uint8Array; info?: ReferenceInfo }>;
}

export interface ValidateStoredInput {
  /** The current data's columnar bytes; called again if a first attempt took them to the worker. */
  current: () => Promise<Uint8Array> | Uint8Array;
  contract: DatasetContract;
  dataset: DatasetInfo;
  reference?: ReferenceSource;
  /** Why there is no reference, when there is none. */
  noReferenceReason?: string;
}

export async function validateStored(
  store: ArtifactStore,
  input: ValidateStoredInput,
): Promise<ValidationReport> {
  const { contract, dataset, reference } = input;
  if (!reference) {
    const result = await validateColumnarOffThread({
      current: await input.current(),
      contract,
      dataset,
      ...(input.noReferenceReason ? { noReferenceReason: input.noReferenceReason } : {}),
    });
    return result.report;
  }
  // The two downloads are independent: the current data and the reference's stored profile.
  const [current, cached] = await Promise.all([input.current(), loadReferenceProfile(store, reference.key)]);
  let result: OffThreadResult | undefined;
  if (cached) {
    try {
      result = await validateColumnarOffThread({
        current,
        referenceProfile: cached,
        referenceKey: reference.key,
        contract,
        dataset,
        referenceInfo: { rows: 0, columns: 0, ...reference.info },
      });
    } catch (err) {
      // A profile that no longer reads: rebuilt below from the rows (and replaced).
      if ((err as { code?: string }).code !== 'REFERENCE_PROFILE_INVALID') throw err;
    }
  }
  if (!result) {
    // Without a usable profile the rows are needed; a failed first attempt took `current` to the worker.
    const [again, loaded] = await Promise.all([cached ? input.current() : current, reference.load()]);
    result = await validateColumnarOffThread({
      current: again,
      reference: loaded.columnar,
      referenceKey: reference.key,
      contract,
      dataset,
      referenceInfo: { rows: 0, columns: 0, ...reference.info, ...loaded.info },
    });
    if (result.referenceProfile) await storeReferenceProfile(store, reference.key, result.referenceProfile);
  }
  return result.report;
}
