import type { Table } from './column';
import type { DatasetContract } from './contract';
import { ingestBlob, loadColumnar } from './datasets';
import type { DataDeps } from './deps';
import type { DatasetInfo } from './report';

/**
 * The drift reference outside a run (`POST /api/datasets/validate`): a dataset fixed in the contract,
 * or the one the pipeline's production model was trained on. In a run the orchestrator resolves it
 * (the resolveReference activity) and passes it to validateDataset.
 */

export interface ResolvedReference {
  table: Table;
  info: DatasetInfo;
}

/** The contract's fixed reference, or the production model's training data, or a reason why there is none. */
export async function resolveReference(
  deps: Pick<DataDeps, 'store' | 'limits' | 'productionReference'>,
  contract: DatasetContract,
  pipeline: string | undefined,
): Promise<{ reference?: ResolvedReference; reason?: string }> {
  const ref = contract.drift.reference;
  if (ref.kind === 'dataset') {
    if (/\/columnar\/sha256\/[0-9a-f]{64}$/.test(ref.uri)) {
      const table = await loadColumnar(deps.store, { uri: ref.uri, sha256: ref.sha256 });
      return {
        reference: { table, info: { rows: table.rows, columns: table.columns.length, sha256: ref.sha256 } },
      };
    }
    // A raw dataset: ingested (idempotently: content-addressed) to read it as the contract says.
    const { table, dataset } = await ingestBlob(deps.store, ref.uri, {
      sha256: ref.sha256,
      contract,
      limits: deps.limits,
    });
    return {
      reference: {
        table,
        info: {
          rows: table.rows,
          columns: table.columns.length,
          sha256: dataset.raw.sha256,
          bytes: dataset.raw.bytes,
          format: dataset.format,
        },
      },
    };
  }
  const none = { reason: 'no reference dataset: no model of this pipeline in production' };
  if (!pipeline || !deps.productionReference) return none;
  const found = await deps.productionReference(pipeline);
  if (!found) return none;
  const table = await loadColumnar(deps.store, found.columnar);
  return {
    reference: {
      table,
      info: { rows: table.rows, columns: table.columns.length, sha256: found.columnar.sha256 },
    },
  };
}
