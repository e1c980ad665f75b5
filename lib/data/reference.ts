import type { Table } from './column';
import type { DatasetContract } from './contract';
import type { BlobDigest } from './datasets';
import { ingestBlob, loadColumnar } from './datasets';
import type { DataDeps } from './deps';
import type { DatasetInfo } from './report';

/**
 * Finding the reference for drift outside a run (`POST /api/datasets/validate`). In a run the
 * orchestrator passes the reference to validateDataset; here, the registry (another module) says
 * which dataset the production model was trained on, through a resolver it registers at start-up.
 */
export type ProductionReferenceResolver = (
  pipeline: string,
) => Promise<{ columnar: BlobDigest; raw?: BlobDigest } | undefined>;

let resolver: ProductionReferenceResolver | undefined;

/** Called once by the registry module: how to find the production model's training data. */
export function registerProductionReferenceResolver(fn: ProductionReferenceResolver | undefined): void {
  resolver = fn;
}

export interface ResolvedReference {
  table: Table;
  info: DatasetInfo;
}

/** The contract's fixed reference, or the production model's training data, or a reason why there is none. */
export async function resolveReference(
  deps: Pick<DataDeps, 'store' | 'limits'>,
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
  if (!pipeline || !resolver)
    return { reason: 'no reference dataset: no model of this pipeline in production' };
  const found = await resolver(pipeline);
  if (!found) return { reason: 'no reference dataset: no model of this pipeline in production' };
  const table = await loadColumnar(deps.store, found.columnar);
  const info: DatasetInfo = {
    rows: table.rows,
    columns: table.columns.length,
    sha256: found.raw?.sha256 ?? found.columnar.sha256,
  };
  if (found.raw) info.bytes = found.raw.bytes;
  return { reference: { table, info } };
}
