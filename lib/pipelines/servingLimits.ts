import type { DatasetContract } from '../contracts/datasetContract';
import type { ContractLimits } from '../serving/rows';
import type { PipelineDefinition } from './definition';

/**
 * What predict checks a row against beyond the model's own feature types: each contract column's
 * numeric bounds and allowed values, and whether the pipeline refuses rows outside them.
 */
export function contractLimits(def: Pick<PipelineDefinition, 'dataset' | 'serving'>): ContractLimits {
  const columns: Record<string, { min?: number; max?: number; values?: string[] }> = {};
  for (const c of (def.dataset as DatasetContract).columns) {
    const min = typeof c.min === 'number' ? c.min : undefined;
    const max = typeof c.max === 'number' ? c.max : undefined;
    const values = c.values?.map((v) => String(v));
    if (min === undefined && max === undefined && !values) continue;
    columns[c.name] = {
      ...(min !== undefined ? { min } : {}),
      ...(max !== undefined ? { max } : {}),
      ...(values ? { values } : {}),
    };
  }
  return { columns, refuse: def.serving?.outOfContract === 'refuse' };
}
