import type { Table } from './column';
import type { DatasetContract } from '../contracts/datasetContract';
import { datasetContractSchema } from '../contracts/datasetContract';
import type { InferOptions } from './infer';
import { proposeContract } from './infer';
import type { TableProfile } from './profile';

/**
 * Schema inference for users: the contract proposed from a table, completed and checked by the
 * contract schema (defaults filled in), ready to edit and put into a pipeline definition.
 */
export function inferContract(
  table: Table,
  options: InferOptions = {},
  profile?: TableProfile,
): DatasetContract {
  return datasetContractSchema.parse(proposeContract(table, options, profile));
}
