import type { Table } from '../table';
import type { DatasetContract } from '../../contracts/datasetContract';
import { datasetContractSchema } from '../../contracts/datasetContract';
import type { InferOptions } from './infer';
import { proposeDatasetContract } from './infer';
import type { TableProfile } from '../profiling/profile';

/**
 * Schema inference for users: the contract proposed from a table, completed and checked by the
 * contract schema (defaults filled in), ready to edit and put into a pipeline definition.
 */
export function inferDatasetContract(
  table: Table,
  options: InferOptions = {},
  profile?: TableProfile,
): DatasetContract {
  return datasetContractSchema.parse(proposeDatasetContract(table, options, profile));
}
