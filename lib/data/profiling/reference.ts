import type { DatasetContract } from '../../contracts/datasetContract';
import { encodeColumnar } from '../reading/columnar';
import type { BlobDigest, DataDeps } from '../datasets';
import { ingestBlob } from '../datasets';
import { datasetContractDigest } from '../checking/report';
import type { ReferenceInfo } from './referenceProfile';
import type { ReferenceSource } from '../checking/validateStored';

/**
 * The drift reference: a dataset fixed in the contract, or the one the pipeline's production model
 * was trained on. Resolving it reads nothing large: validation uses the reference's stored profile
 * when there is one and loads its rows only when there is not (see validation.ts).
 */

/** A reference whose columnar form is stored (the production model's training data, or a columnar URI). */
export function columnarReference(
  deps: Pick<DataDeps, 'store'>,
  contract: DatasetContract,
  columnar: Pick<BlobDigest, 'uri' | 'sha256'>,
  info: ReferenceInfo = { sha256: columnar.sha256 },
): ReferenceSource {
  return {
    key: { dataSha256: columnar.sha256, contractSha256: datasetContractDigest(contract) },
    info,
    load: async () => ({
      columnar: (await deps.store.getBuffer(columnar.uri, { sha256: columnar.sha256 })).data,
    }),
  };
}

/** The contract's fixed reference, or the production model's training data, or a reason why there is none. */
export async function resolveReference(
  deps: Pick<DataDeps, 'store' | 'limits' | 'productionReference'>,
  contract: DatasetContract,
  pipeline: string | undefined,
): Promise<{ reference?: ReferenceSource; reason?: string }> {
  const ref = contract.drift.reference;
  if (ref.kind === 'dataset') {
    if (/\/columnar\/sha256\/[0-9a-f]{64}$/.test(ref.uri)) {
      return { reference: columnarReference(deps, contract, { uri: ref.uri, sha256: ref.sha256 }) };
    }
    // A raw dataset: keyed by its raw digest, and ingested (idempotently: content-addressed) only
    // when its profile is not stored yet, to read it as the contract says.
    return {
      reference: {
        key: { dataSha256: ref.sha256, contractSha256: datasetContractDigest(contract) },
        info: { sha256: ref.sha256 },
        load: async () => {
          const { table, dataset } = await ingestBlob(deps.store, ref.uri, {
            sha256: ref.sha256,
            contract,
            limits: deps.limits,
          });
          return {
            columnar: Buffer.concat(encodeColumnar(table)),
            info: { sha256: dataset.raw.sha256, bytes: dataset.raw.bytes, format: dataset.format },
          };
        },
      },
    };
  }
  const none = { reason: 'no reference dataset: no model of this pipeline in production' };
  if (!pipeline || !deps.productionReference) return none;
  const found = await deps.productionReference(pipeline);
  if (!found) return none;
  return { reference: columnarReference(deps, contract, found.columnar) };
}
