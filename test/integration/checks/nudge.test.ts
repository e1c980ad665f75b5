/**
 * The immediate nudge: when a run ends (the finishRun activity) or production moves, the checks
 * waiting on it are decided and answered at once, with no reportChecks tick, and the activity does
 * not wait for Azure DevOps. Cosmos emulator, the real check endpoint, a fake of Azure DevOps over
 * HTTP whose answers the test can hold back.
 */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { finishRunAndNudge } from '../../../activities/finishRun';
import { azureDevOpsCheck } from '../../../functions/azureDevOpsCheck';
import { AzureDevOpsClient } from '../../../lib/checks/azureDevOps';
import { nudgeChecks } from '../../../lib/checks/nudge';
import type { CheckDeps, SweepResult } from '../../../lib/checks/service';
import { loadConfig } from '../../../lib/config';
import { finishRunActivity } from '../../../lib/contracts/pipeline';
import type { RunDocument } from '../../../lib/contracts/runDocument';
import { newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { checkDeps, createServices } from '../../../lib/services';
import type { CosmosEmulator } from '../../support/emulators';
import { startCosmos } from '../../support/emulators';
import type { FakeAzureDevOps, IssuedCheck } from '../../support/fakes/azureDevOps';
import { startFakeAzureDevOps } from '../../support/fakes/azureDevOps';
import { AnchorStore } from '../../../lib/audit/anchors';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';

const BASE = 'https://sluice.example.com';
const clock = new Date('2026-12-05T08:00:00.000Z');
let cosmos: CosmosEmulator;
let ado: FakeAzureDevOps;
// A production move anchors the audit log's head in Blob Storage.
let azurite: BlobEmulator;
let services: Services;

beforeAll(async () => {
  [cosmos, ado, azurite] = await Promise.all([startCosmos(), startFakeAzureDevOps(), startAzuriteBlob()]);
  services = await createServices(
    loadConfig({
      COSMOS_ENDPOINT: cosmos.endpoint,
      COSMOS_KEY: cosmos.key,
      ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
      PUBLIC_BASE_URL: BASE,
      AZURE_DEVOPS_ALLOWED_HOSTS: 'dev.azure.com,127.0.0.1',
    }),
    { prepare: false, now: () => clock },
  );
  await services.cosmos.ensure();
  await services.artifacts.ensureContainers();
  await new AnchorStore(services.artifacts).ensure();
});

afterAll(async () => {
  services?.cosmos.client.dispose();
  await Promise.all([cosmos?.stop(), ado?.stop(), azurite?.stop()]);
});

let seq = 0;
async function seedRun(status: RunDocument['status']): Promise<RunDocument> {
  const id = `nudge-run-${++seq}`;
  const doc: RunDocument = {
    ...newRunDocument({
      id,
      pipeline: 'churn',
      pipelineVersion: 1,
      instanceId: id,
      trigger: { kind: 'cli', by: 'ann@example.com' },
      source: { kind: 'blob', uri: 'datasets/x.csv' },
      at: clock.toISOString(),
    }),
    status,
  };
  await services.runs.create(doc);
  return doc;
}

async function openCheck(condition: unknown): Promise<{ issued: IssuedCheck; id: string }> {
  const issued = ado.startCheck();
  const res = (await azureDevOpsCheck(services)(
    new HttpRequest({
      url: 'http://localhost:7071/api/checks/azure-devops',
      method: 'POST',
      headers: { 'content-type': 'application/json', ...issued },
      body: { string: JSON.stringify(condition) },
    }),
    new InvocationContext({ logHandler: () => undefined }),
  )) as HttpResponseInit & { jsonBody: { id: string } };
  expect(res.status).toBe(200);
  return { issued, id: res.jsonBody.id };
}

const eventsOf = (c: IssuedCheck) => ado.events.filter((e) => e.planId === c.PlanId);
const statusOf = async (id: string) => (await services.checks.get(id))?.check.status;

/** Check deps whose calls to Azure DevOps wait until `open()`: to see who waits for them. */
function heldDeps(): { deps: CheckDeps; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const held: typeof fetch = async (input, init) => {
    await gate;
    return fetch(input, init);
  };
  return {
    deps: {
      ...checkDeps(services),
      azureDevOps: new AzureDevOpsClient({ fetch: held, sleep: async () => undefined }),
    },
    open,
  };
}

describe('a run that ends answers the checks waiting on it at once', () => {
  it('finishRun returns without waiting for Azure DevOps, and the decision goes out with no timer tick', async () => {
    const run = await seedRun('running');
    const other = await seedRun('running');
    const { issued, id } = await openCheck({ run: run.id });
    const untouched = await openCheck({ run: other.id });
    const { deps, open } = heldDeps();
    let nudged!: (o: SweepResult | Error) => void;
    const done = new Promise<SweepResult | Error>((r) => (nudged = r));

    const out = await finishRunAndNudge(
      services,
      deps,
      nudged,
    )(
      finishRunActivity.input.parse({
        runId: run.id,
        pipeline: run.pipeline,
        status: 'succeeded',
        at: clock.toISOString(),
      }),
    );
    // The activity has returned while Azure DevOps has not been answered: nothing waited for it.
    expect(out).toEqual({ status: 'succeeded' });
    expect(eventsOf(issued)).toEqual([]);

    open();
    const result = await done;
    expect(result).toMatchObject({
      decided: [{ id, result: 'succeeded', code: 'condition_met' }],
      reported: [id],
    });
    expect(eventsOf(issued)).toEqual([
      { planId: issued.PlanId, taskId: issued.TaskInstanceId, jobId: issued.JobId, result: 'succeeded' },
    ]);
    expect(await statusOf(id)).toBe('reported');
    // The check on another run was not looked at.
    expect(await statusOf(untouched.id)).toBe('waiting');
    expect(eventsOf(untouched.issued)).toEqual([]);
  });

  it('a nudge that cannot reach Azure DevOps leaves the check to the timer and throws nothing', async () => {
    const run = await seedRun('succeeded');
    const { issued, id } = await openCheck({ run: run.id });
    ado.failNext(6, 503); // the log line and the event, 3 attempts each
    const deps = {
      ...checkDeps(services),
      azureDevOps: new AzureDevOpsClient({ sleep: async () => undefined }),
    };
    const result = await nudgeChecks(deps, { runEnded: run.id });
    expect(result.retrying).toEqual([{ id, error: expect.stringMatching(/503/) }]);
    expect(await statusOf(id)).toBe('reporting');
    // A second nudge does not spend the bounded delivery attempts of a decided check: the timer's job.
    expect(await nudgeChecks(deps, { runEnded: run.id })).toMatchObject({ reported: [], retrying: [] });
    expect((await services.checks.get(id))?.check.attempts).toBe(1);
    expect(eventsOf(issued)).toEqual([]);
  });
});

describe('production moving answers the checks on that model at once', () => {
  it('passes the model-version check on the alias move, and leaves other models’ checks alone', async () => {
    const run = await seedRun('running');
    for (const modelName of ['nudge-churn', 'nudge-other'])
      await services.registry.registerVersion({
        modelName,
        modelDigest: 'a'.repeat(64),
        artifactUri: 'models/sha256/a',
        datasetDigest: 'c'.repeat(64),
        metrics: { roc_auc: 0.8 },
        trainingSpec: {},
        algorithm: 'logistic_regression',
        runId: run.id,
      });
    const { issued, id } = await openCheck({ model: 'nudge-churn', version: 1 });
    const other = await openCheck({ model: 'nudge-other', version: 1 });
    await services.registry.moveAlias({
      modelName: 'nudge-churn',
      alias: 'production',
      to: 1,
      by: 'approval:appr-9',
      approvalRef: 'appr-9',
      runId: run.id,
    });
    const result = await nudgeChecks(checkDeps(services), { aliasMoved: 'nudge-churn' });
    expect(result.reported).toEqual([id]);
    expect(eventsOf(issued).map((e) => e.result)).toEqual(['succeeded']);
    expect(await statusOf(other.id)).toBe('waiting');
  });
});
