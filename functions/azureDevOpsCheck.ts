import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { withServices } from '../app/services';
import type { CheckDeps } from '../lib/checks/service';
import { receiveAzureDevOpsCheck } from '../lib/checks/service';
import { checkDeps } from '../lib/services';
import type { Services } from '../lib/services';
import { readJsonBody, withProblems } from './support/http';

/**
 * `POST /api/checks/azure-devops`: the target of an Azure DevOps environment's "Invoke REST API" or
 * "Invoke Azure Function" check in callback (asynchronous) mode. The check's headers carry the
 * callback coordinates and the job's token; the body names what must hold:
 * `{"model": "churn", "version": 7}` or `{"run": "<run id>"}`. The check is recorded in Cosmos, then
 * answered 200 (Azure DevOps wants 2xx within 3 s); the reportChecks timer posts TaskCompleted when
 * Sluice has decided. A repeated delivery is the same check. docs/delivery.md.
 */

const MAX_BODY_BYTES = 16 * 1024;

export function createAzureDevOpsCheckHandler(getDeps: () => Promise<CheckDeps>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const body = await readJsonBody(request, MAX_BODY_BYTES);
    const deps = await getDeps();
    const { created, check } = await receiveAzureDevOpsCheck(deps, request.headers, body);
    context.log(
      `azure devops check ${check.id}: ${created ? 'recorded' : 'repeated delivery'} (${check.status})`,
    );
    return {
      status: 200,
      jsonBody: { id: check.id, status: check.status, created, answerBy: check.answerBy },
    };
  };
}

export const azureDevOpsCheck = (s: Services) =>
  withProblems(createAzureDevOpsCheckHandler(async () => checkDeps(s)));

app.http('azureDevOpsCheck', {
  route: 'api/checks/azure-devops',
  methods: ['POST'],
  authLevel: 'function',
  handler: withServices(azureDevOpsCheck),
});
