import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { taskSchema } from '../lib/contracts/datasetContract';
import { getBuiltServices } from '../app/services';
import type { DataDeps } from '../lib/data/datasets';
import { DataFormatError } from '../lib/data/errors';
import { readDataset } from '../lib/data/reading/readDataset';
import { inferDatasetContract } from '../lib/data/checking/inferDatasetContract';
import { profileTable } from '../lib/data/profiling/profile';
import { ValidationError } from '../lib/errors';
import { checkDeclaredSize } from './checkDataset';
import { withProblems } from './support/http';

/**
 * `POST /api/datasets/infer[?target=COL][&task=binary|multiclass|regression]` with a CSV, JSON Lines or
 * Parquet sample (Parquet is recognized by its PAR1 magic): a proposed dataset contract (types, nullability, observed ranges, category sets) and the
 * sample's column statistics, to start a pipeline definition from something real.
 */
export function inferContractHandler(getDeps: () => Promise<Pick<DataDeps, 'limits'>>) {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const { limits } = await getDeps();
    checkDeclaredSize(request, limits.maxBytes);
    const target = request.query.get('target') ?? undefined;
    const taskText = request.query.get('task');
    const task = taskText === null ? undefined : taskSchema.safeParse(taskText).data;
    if (taskText !== null && !task) {
      throw new ValidationError(
        'invalid_task',
        `task must be binary, multiclass or regression, got "${taskText}"`,
        { field: 'task' },
      );
    }
    if (!request.body) throw new DataFormatError('INPUT_EMPTY', 'the request has no body');
    const { table, format } = await readDataset(request.body as AsyncIterable<Uint8Array>, { limits });
    if (target !== undefined && !table.columns.some((c) => c.name === target)) {
      throw new ValidationError('unknown_target', `target "${target}" is not a column of the sample`, {
        field: 'target',
      });
    }
    const profile = profileTable(table);
    let contract;
    try {
      contract = inferDatasetContract(
        table,
        { ...(target !== undefined ? { target } : {}), ...(task ? { task } : {}) },
        profile,
      );
    } catch (err) {
      throw new ValidationError('invalid_target', (err as Error).message, { field: 'target' });
    }
    return {
      status: 200,
      jsonBody: {
        contract,
        sample: { rows: table.rows, format },
        columns: profile.columns.map(({ codeCounts: _c, ...rest }) => rest),
      },
    };
  };
}

app.http('inferContract', {
  route: 'api/datasets/infer',
  methods: ['POST'],
  authLevel: 'function',
  // Pure CPU work on the request body: it needs the limits, not storage (nothing is prepared).
  handler: withProblems(inferContractHandler(() => getBuiltServices())),
});
