/**
 * Training datasets as the stored columnar blob a run reads: the inverse of `datasetFromTable`,
 * so tests can upload a synthetic dataset the way the ingest step would have written it.
 */
import { emptyIssues } from '../../lib/data/table';
import type { Table } from '../../lib/data/table';
import { encodeColumnar } from '../../lib/data/reading/columnar';
import type { ColumnarDataset } from '../../lib/training/dataset';

export function tableOf(ds: ColumnarDataset): Table {
  return {
    rows: ds.rowCount,
    columns: ds.columns.map((c) =>
      c.type === 'numeric'
        ? { name: c.name, type: 'number' as const, values: c.values, issues: emptyIssues() }
        : {
            name: c.name,
            type: 'category' as const,
            codes: c.codes,
            dictionary: [...c.levels],
            issues: emptyIssues(),
          },
    ),
  };
}

/** The bytes of the columnar blob for `ds`, ready for `putContentAddressed` or a mounted file. */
export function columnarBytes(ds: ColumnarDataset): Buffer {
  return Buffer.concat(encodeColumnar(tableOf(ds)));
}
