/**
 * The set-up the devhost promotion tests share (promote.test.ts, databricksPromote.test.ts): a
 * model trained outside Sluice with the pipeline's own spec on the wages data, as the MLflow folder
 * a team would log, and a run started over HTTP that promotes a model URI instead of training.
 */
import { readFileSync } from 'node:fs';
import type { FolderFile } from '../../../lib/mlmodel/blobFolder';
import { readDataset } from '../../../lib/data/reading/readDataset';
import { datasetFromTable } from '../../../lib/training/dataset';
import { builtInModelFolder } from '../../../lib/training/models/mlflowFolder';
import { trainModel } from '../../../lib/training/models/train';
import { parseTrainingSpec } from '../../../lib/training/spec';
import type { PipelineHarness } from '../pipeline/harness';
import { REQUESTER, testPipeline, WAGES_CSV } from '../pipeline/harness';

/** The pipeline's training spec run on the wages data outside Sluice: its MLflow folder's files. */
export async function wagesModelFolder(pipeline: string): Promise<FolderFile[]> {
  const def = testPipeline(pipeline) as { training: Record<string, unknown> };
  const { table } = await readDataset(readFileSync(WAGES_CSV));
  const model = trainModel(datasetFromTable(table), parseTrainingSpec(def.training)).model;
  return builtInModelFolder(Buffer.from(JSON.stringify(model), 'utf8')).files;
}

/** `POST /api/pipelines/<pipeline>/runs?mlflow=<uri>` with the wages CSV, as the requester. */
export function promoteRun(h: PipelineHarness, pipeline: string, uri: string): Promise<Response> {
  return h.api(
    'POST',
    `/api/pipelines/${pipeline}/runs?mlflow=${encodeURIComponent(uri)}`,
    readFileSync(WAGES_CSV),
    { 'content-type': 'text/csv', 'x-ms-client-principal-name': REQUESTER },
  );
}
