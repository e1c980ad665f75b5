import { Readable } from 'node:stream';
import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { withServices } from '../app/services';
import { problem } from '../lib/http/problem';
import { openExportFolder } from '../lib/mlflow/export';
import { zipFiles } from '../lib/mlflow/zip';
import type { Services } from '../lib/services';
import { withProblems } from './support/http';

/**
 * `GET /api/models/{name}/versions/{v}/mlflow`: the version as an MLflow model folder in a zip,
 * streamed one verified file at a time (lib/mlflow/export.ts). Unknown model or version: 404; a
 * legacy JSON model the ONNX export cannot convert: 409. The folder's digest is in
 * `x-sluice-model-digest`, the digest approval bound to.
 */
export const modelMlflowZip =
  (deps: Pick<Services, 'registry' | 'artifacts'>) =>
  async (request: HttpRequest): Promise<HttpResponseInit> => {
    const name = request.params.name ?? '';
    const v = request.params.v ?? '';
    if (!/^[1-9][0-9]{0,8}$/.test(v))
      return problem(400, 'invalid_version', `version must be a positive whole number, got "${v}"`, {
        field: 'v',
      });
    const version = await deps.registry.getVersion(name, Number(v));
    if (!version)
      return problem(404, 'model_version_not_found', `model ${name} has no version ${v}`, { field: 'v' });
    const folder = await openExportFolder(deps.artifacts, version);
    const file = `${name}-v${version.version}-mlflow.zip`.replace(/[^A-Za-z0-9._-]/g, '_');
    return {
      status: 200,
      headers: {
        'content-type': 'application/zip',
        'content-disposition': `attachment; filename="${file}"`,
        'x-sluice-model-digest': folder.digest,
        'x-sluice-export': folder.origin,
        'cache-control': 'no-store',
      },
      body: Readable.from(zipFiles(folder.files())),
    };
  };

app.http('modelMlflowZip', {
  route: 'api/models/{name}/versions/{v}/mlflow',
  methods: ['GET'],
  authLevel: 'function',
  handler: withProblems(withServices(modelMlflowZip)),
});
