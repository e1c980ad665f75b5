import type { z } from 'zod';
import type { IngestDatasetOutput } from '../lib/contracts/data';
import { ingestDatasetActivity } from '../lib/contracts/data';
import type { DatasetContract } from '../lib/contracts/datasetContract';
import type { DataDeps } from '../lib/data/datasets';
import { dataDeps } from '../lib/services';
import { ingestBlob } from '../lib/data/datasets';
import { NonRetriableError } from '../lib/errors';
import { registerActivityFactory } from './support/define';

type Input = z.output<typeof ingestDatasetActivity.input>;

/** The contract named by a data step's input: inline, or the dataset contract of a pipeline version. */
export async function contractFor(
  deps: Pick<DataDeps, 'contractOf'>,
  input: { contract?: DatasetContract | undefined; pipeline?: { name: string; version: number } | undefined },
): Promise<DatasetContract | undefined> {
  if (input.contract) return input.contract;
  if (!input.pipeline) return undefined;
  const contract = await deps.contractOf(input.pipeline.name, input.pipeline.version);
  if (!contract) {
    throw new NonRetriableError(
      'pipeline_not_found',
      `pipeline ${input.pipeline.name} has no version ${input.pipeline.version}`,
    );
  }
  return contract;
}

/**
 * Streams the source blob through the parser into Blob Storage: raw bytes and columnar form, both
 * content-addressed, so a second run of the same input writes nothing new and returns the same
 * result (`created: false`). Bad data fails with its DataFormatError code, never retried.
 */
export function ingestDataset(deps: DataDeps) {
  return async (input: Input): Promise<IngestDatasetOutput> => {
    const contract = await contractFor(deps, input);
    const f = input.source.format;
    // The upload's declared format must match the bytes: Parquet declared as csv/jsonl (or the other
    // way round) is refused with INPUT_UNSUPPORTED_FORMAT rather than read as something it is not.
    const format = f === 'csv' || f === 'jsonl' || f === 'parquet' ? f : undefined;
    const { dataset } = await ingestBlob(deps.store, input.source.uri, {
      limits: deps.limits,
      ...(input.source.kind === 'upload' ? { sha256: input.source.sha256 } : {}),
      ...(format ? { format } : {}),
      ...(input.delimiter ? { delimiter: input.delimiter } : {}),
      ...(contract ? { contract } : {}),
    });
    return {
      ...dataset,
      parseIssues: dataset.parseIssues.slice(0, 20),
      parseIssueColumns: dataset.parseIssues.length,
      created: dataset.created,
    };
  };
}

registerActivityFactory(ingestDatasetActivity, (services) => ingestDataset(dataDeps(services)));
