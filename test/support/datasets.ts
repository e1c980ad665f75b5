/**
 * Training datasets as the stored columnar blob a run reads: the inverse of `datasetFromTable`,
 * so tests can upload a synthetic dataset the way the ingest step would have written it.
 */
import type { DatasetContract } from '../../lib/contracts/datasetContract';
import { datasetContractSchema } from '../../lib/contracts/datasetContract';
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

/**
 * The dataset contract of `syntheticClassification({ features: 4, withSegment: true })`: four
 * numbers, the segment category a–d, and the binary label no/yes.
 */
export const syntheticClassificationContract: DatasetContract = datasetContractSchema.parse({
  columns: [
    ...['x0', 'x1', 'x2', 'x3'].map((name) => ({ name, type: 'number' })),
    { name: 'segment', type: 'category', values: ['a', 'b', 'c', 'd'] },
    { name: 'label', type: 'category', values: ['no', 'yes'] },
  ],
  target: 'label',
  task: 'binary',
});
