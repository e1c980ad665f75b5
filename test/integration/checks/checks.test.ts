/**
 * Deployment checks end to end on the Cosmos emulator: the real HTTP functions and the real
 * reportChecks timer, built by createServices, against fakes of Azure DevOps and GitHub that speak
 * their documented wire shapes over loopback HTTP. Time is a test clock, never the wall clock.
 */
import { HttpRequest, InvocationContext, type HttpResponseInit, type Timer } from '@azure/functions';
import { azureDevOpsCheck } from '../../../functions/azureDevOpsCheck';
import { githubCheck } from '../../../functions/githubCheck';
import { reportChecks } from '../../../functions/reportChecks';
import { AzureDevOpsClient } from '../../../lib/checks/azureDevOps';
import { MAX_REPORT_ATTEMPTS } from '../../../lib/checks/records';
import { sweepChecks } from '../../../lib/checks/service';
import { loadConfig } from '../../../lib/config';
import type { RunDocument, RunStatus, StopReason } from '../../../lib/contracts/runDocument';
import { newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { checkDeps, createServices } from '../../../lib/services';
import type { CosmosEmulator } from '../../support/emulators';
import { startCosmos } from '../../support/emulators';
import type { FakeAzureDevOps, IssuedCheck } from '../../support/fakes/azureDevOps';
import { startFakeAzureDevOps } from '../../support/fakes/azureDevOps';
import type { FakeGitHub } from '../../support/fakes/github';
import { startFakeGitHub } from '../../support/fakes/github';
import { AnchorStore } from '../../../lib/audit/anchors';
import { startAzuriteBlob, type BlobEmulator } from '../../support/emulators';

const SECRET = 'a-webhook-secret-of-some-length';
const BASE = 'https://sluice.example.com';
const HOUR = 3600_000;
const noSleep = async () => undefined;

let cosmos: CosmosEmulator;
let ado: FakeAzureDevOps;
let gh: FakeGitHub;
let azurite: BlobEmulator;
let services: Services;
let clock = new Date('2026-12-05T08:00:00.000Z');
const ctx = () => new InvocationContext({ logHandler: () => undefined });
const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: {},
} as unknown as Timer;

beforeAll(async () => {
  // A production move anchors the audit log's head in Blob Storage.
  [cosmos, ado, gh, azurite] = await Promise.all([
    startCosmos(),
    startFakeAzureDevOps(),
    startFakeGitHub(),
    startAzuriteBlob(),
  ]);
  services = await createServices(
    loadConfig({
      COSMOS_ENDPOINT: cosmos.endpoint,
      COSMOS_KEY: cosmos.key,
      ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
      PUBLIC_BASE_URL: BASE,
      AZURE_DEVOPS_ALLOWED_HOSTS: 'dev.azure.com,*.visualstudio.com,127.0.0.1',
      GITHUB_APP_ID: gh.appId,
      GITHUB_APP_PRIVATE_KEY: gh.privateKey,
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITHUB_API_URL: gh.apiUrl,
    }),
    { prepare: false, now: () => clock },
  );
  await services.cosmos.ensure();
  await services.artifacts.ensureContainers();
  await new AnchorStore(services.artifacts).ensure();
});

afterAll(async () => {
  services?.cosmos.client.dispose();
  await Promise.all([cosmos?.stop(), ado?.stop(), gh?.stop(), azurite?.stop()]);
});

let runSeq = 0;
async function seedRun(
  status: RunStatus,
  stop?: { stopReason: StopReason; reason: string },
): Promise<RunDocument> {
  const id = `churn-run-${++runSeq}`;
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
    ...(stop ?? {}),
  };
  await services.runs.create(doc);
  return doc;
}

async function setRunStatus(run: RunDocument, status: RunStatus): Promise<void> {
  await services.runs.update(run.pipeline, run.id, (d) => ({ ...d, status }));
}

async function postAdo(headers: Partial<IssuedCheck> & Record<string, string>, body: unknown) {
  const req = new HttpRequest({
    url: 'http://localhost:7071/api/checks/azure-devops',
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: { string: JSON.stringify(body) },
  });
  return (await azureDevOpsCheck(services)(req, ctx())) as HttpResponseInit & {
    jsonBody: Record<string, unknown>;
  };
}

async function postGitHub(body: string, headers: Record<string, string>) {
  const req = new HttpRequest({
    url: 'http://localhost:7071/api/checks/github',
    method: 'POST',
    headers,
    body: { string: body },
  });
  return (await githubCheck(services)(req, ctx())) as HttpResponseInit & {
    jsonBody: Record<string, unknown>;
  };
}

const tick = () => reportChecks(services)(timer, ctx());
const eventsOf = (c: IssuedCheck) => ado.events.filter((e) => e.planId === c.PlanId);
const linesOf = (c: IssuedCheck) => ado.feed.filter((f) => f.planId === c.PlanId).map((f) => f.line);
const stored = async (id: unknown) => (await services.checks.get(String(id)))?.check;

describe('POST /api/checks/azure-devops', () => {
  it('records the check before answering 200, then completes it succeeded with a log line linking the run', async () => {
    const run = await seedRun('running');
    const check = ado.startCheck();
    const res = await postAdo({ ...check }, { run: run.id });
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ status: 'waiting', created: true });
    expect(await stored(res.jsonBody.id)).toMatchObject({
      kind: 'azureDevOps',
      status: 'waiting',
      condition: { run: run.id },
    });
    expect(linesOf(check)).toEqual([`Sluice: checking that run ${run.id} succeeded`]);

    await tick();
    expect(eventsOf(check)).toEqual([]);
    await setRunStatus(run, 'succeeded');
    await tick();
    expect(eventsOf(check)).toEqual([
      { planId: check.PlanId, taskId: check.TaskInstanceId, jobId: check.JobId, result: 'succeeded' },
    ]);
    const last = linesOf(check).at(-1)!;
    expect(last).toContain('passed (condition_met)');
    expect(last).toContain(`${BASE}/api/runs/${run.id}`);
    expect(ado.feed.find((f) => f.line === last)).toMatchObject({
      timelineId: check.TimelineId,
      recordId: check.JobId,
    });
    expect(await stored(res.jsonBody.id)).toMatchObject({
      status: 'reported',
      decision: { result: 'succeeded' },
    });

    await tick();
    expect(eventsOf(check)).toHaveLength(1);
  });

  it('treats a repeated delivery as the same check: one record, one log line, one decision', async () => {
    const run = await seedRun('succeeded');
    const check = ado.startCheck();
    const first = await postAdo({ ...check }, { run: run.id });
    const second = await postAdo({ ...check }, { run: run.id });
    expect(second.status).toBe(200);
    expect(second.jsonBody).toMatchObject({ id: first.jsonBody.id, created: false });
    expect(linesOf(check)).toHaveLength(1);
    await tick();
    await postAdo({ ...check }, { run: run.id });
    await tick();
    expect(eventsOf(check)).toHaveLength(1);
  });

  it('passes a model version only once an approved deployment put it in production', async () => {
    const run = await seedRun('waiting_for_approval');
    await services.registry.registerVersion({
      modelName: 'churn-ado',
      modelDigest: 'a'.repeat(64),
      artifactUri: 'models/sha256/a',
      datasetDigest: 'c'.repeat(64),
      metrics: { roc_auc: 0.8 },
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: run.id,
    });
    const check = ado.startCheck();
    const res = await postAdo({ ...check }, { model: 'churn-ado', version: 1 });
    expect(res.status).toBe(200);
    await tick();
    expect(eventsOf(check)).toEqual([]);

    await services.registry.moveAlias({
      modelName: 'churn-ado',
      alias: 'production',
      to: 1,
      by: 'approval:appr-7',
      approvalRef: 'appr-7',
      runId: run.id,
    });
    await tick();
    expect(eventsOf(check).map((e) => e.result)).toEqual(['succeeded']);
    expect(linesOf(check).at(-1)).toContain('approval appr-7');
    expect(linesOf(check).at(-1)).toContain(`${BASE}/api/models/churn-ado`);
  });

  it('fails the check when the run stops, saying why', async () => {
    const run = await seedRun('stopped', { stopReason: 'approval_rejected', reason: 'bob rejected it' });
    const check = ado.startCheck();
    await postAdo({ ...check }, { run: run.id });
    await tick();
    expect(eventsOf(check).map((e) => e.result)).toEqual(['failed']);
    expect(linesOf(check).at(-1)).toContain('approval_rejected: bob rejected it');
  });

  it('completes an undecided check as failed before the 48-hour job token dies', async () => {
    const start = clock;
    try {
      const run = await seedRun('waiting_for_approval');
      const check = ado.startCheck();
      const res = await postAdo({ ...check }, { run: run.id });
      // Default margin 120 min: answerBy = 46 h after the check arrived.
      expect(res.jsonBody.answerBy).toBe(new Date(start.getTime() + 46 * HOUR).toISOString());
      clock = new Date(start.getTime() + 46 * HOUR - 60_000);
      await tick();
      expect(eventsOf(check)).toEqual([]);
      clock = new Date(start.getTime() + 46 * HOUR);
      await tick();
      expect(eventsOf(check).map((e) => e.result)).toEqual(['failed']);
      expect(linesOf(check).at(-1)).toMatch(/failed \(token_expiring\).*48 h.*waiting_for_approval/);
      expect(await stored(res.jsonBody.id)).toMatchObject({
        status: 'reported',
        decision: { code: 'token_expiring' },
      });
    } finally {
      clock = start;
    }
  });

  it('refuses a forged request (a token Azure DevOps does not know) and records nothing', async () => {
    const run = await seedRun('succeeded');
    const check = { ...ado.startCheck(), AuthToken: 'forged-token' };
    const res = await postAdo({ ...check }, { run: run.id });
    expect(res.status).toBe(401);
    expect(res.jsonBody).toMatchObject({ code: 'azure_devops_token_rejected', field: 'AuthToken' });
    const open = await services.checks.listOpen();
    expect(
      open.filter((o) => o.check.kind === 'azureDevOps' && o.check.azureDevOps.planId === check.PlanId),
    ).toEqual([]);
    await tick();
    expect(eventsOf(check)).toEqual([]);
  });

  it('records nothing it could not verify: a slow or unreachable Azure DevOps is answered 503', async () => {
    const run = await seedRun('succeeded');
    const recorded = async (c: IssuedCheck) =>
      (await services.checks.listOpen()).filter(
        (o) => o.check.kind === 'azureDevOps' && o.check.azureDevOps.planId === c.PlanId,
      );

    // A forged token while Azure DevOps answers after the 1.2 s the probe has: nothing changes.
    const forged = { ...ado.startCheck(), AuthToken: 'forged-token' };
    ado.delayNext(1, 2_000);
    const slow = await postAdo({ ...forged }, { run: run.id });
    expect(slow.status).toBe(503);
    expect(slow.jsonBody).toMatchObject({ code: 'azure_devops_unverified' });
    expect(await recorded(forged)).toEqual([]);

    // Azure DevOps unreachable (nothing listens on the PlanUrl's port): the same, for any token.
    const unreachable = { ...ado.startCheck(), PlanUrl: 'http://127.0.0.1:1/org/' };
    const down = await postAdo({ ...unreachable }, { run: run.id });
    expect(down.status).toBe(503);
    expect(down.jsonBody).toMatchObject({ code: 'azure_devops_unverified' });
    expect(await recorded(unreachable)).toEqual([]);

    await tick();
    expect([...eventsOf(forged), ...eventsOf(unreachable)]).toEqual([]);

    // A genuine check delivered again once Azure DevOps answers in time is recorded and decided.
    const genuine = ado.startCheck();
    ado.delayNext(1, 2_000);
    expect((await postAdo({ ...genuine }, { run: run.id })).status).toBe(503);
    expect(await recorded(genuine)).toEqual([]);
    const again = await postAdo({ ...genuine }, { run: run.id });
    expect(again.status).toBe(200);
    expect(again.jsonBody).toMatchObject({ status: 'waiting', created: true });
    await tick();
    expect(eventsOf(genuine).map((e) => e.result)).toEqual(['succeeded']);
  });

  it('never sends the job token to a PlanUrl off the allow-list', async () => {
    const before = ado.requests.length;
    const res = await postAdo(
      { ...ado.startCheck(), PlanUrl: 'https://collector.example.net/org/' },
      { run: 'x' },
    );
    expect(res.status).toBe(403);
    expect(res.jsonBody).toMatchObject({ code: 'plan_url_not_allowed', field: 'PlanUrl' });
    expect(ado.requests.length).toBe(before);
  });

  it('names the missing header or the malformed body', async () => {
    const { TaskInstanceId: _omit, ...partial } = ado.startCheck();
    const missing = await postAdo(partial, { run: 'r' });
    expect(missing.status).toBe(400);
    expect(missing.jsonBody).toMatchObject({ code: 'missing_check_header', field: 'TaskInstanceId' });

    const vague = await postAdo({ ...ado.startCheck() }, { model: 'churn' });
    expect(vague.jsonBody).toMatchObject({ code: 'invalid_check_condition' });
    const both = await postAdo({ ...ado.startCheck() }, { run: 'r', model: 'churn', version: 1 });
    expect(both.jsonBody).toMatchObject({ code: 'invalid_check_condition' });
  });

  it('retries a failed delivery a bounded number of times, then marks the check undeliverable', async () => {
    const deps = { ...checkDeps(services), azureDevOps: new AzureDevOpsClient({ sleep: noSleep }) };
    const run = await seedRun('succeeded');
    const check = ado.startCheck();
    const res = await postAdo({ ...check }, { run: run.id });

    // Three attempts of the log line and three of the event fail: tried again on the next pass.
    ado.failNext(6, 503);
    const first = await sweepChecks(deps);
    expect(first.retrying.map((r) => r.id)).toContain(res.jsonBody.id);
    expect(await stored(res.jsonBody.id)).toMatchObject({ status: 'reporting', attempts: 1 });
    await sweepChecks(deps);
    expect(eventsOf(check).map((e) => e.result)).toEqual(['succeeded']);

    const doomed = ado.startCheck();
    const doomedRes = await postAdo({ ...doomed }, { run: run.id });
    ado.failNext(10_000, 503);
    try {
      for (let i = 0; i < MAX_REPORT_ATTEMPTS + 2; i++) await sweepChecks(deps);
    } finally {
      ado.failNext(0, 503);
    }
    expect(await stored(doomedRes.jsonBody.id)).toMatchObject({
      status: 'undeliverable',
      attempts: MAX_REPORT_ATTEMPTS,
    });
    expect(eventsOf(doomed)).toEqual([]);
  });

  it('gives up at once when Azure DevOps rejects the token at delivery', async () => {
    const run = await seedRun('running');
    const check = ado.startCheck();
    const res = await postAdo({ ...check }, { run: run.id });
    ado.expireToken(check.AuthToken);
    await setRunStatus(run, 'succeeded');
    await tick();
    expect(await stored(res.jsonBody.id)).toMatchObject({ status: 'undeliverable', attempts: 1 });
    expect((await stored(res.jsonBody.id))?.lastError).toContain('401');
  });
});

describe('POST /api/checks/github', () => {
  it('refuses an unsigned or forged delivery and records nothing', async () => {
    const before = (await services.checks.listOpen()).length;
    const { event } = gh.pendingDeployment({ payload: { sluice: { run: 'r' } } });
    const body = JSON.stringify(event);
    const unsigned = await postGitHub(body, {
      'content-type': 'application/json',
      'x-github-event': 'deployment_protection_rule',
    });
    expect(unsigned.status).toBe(401);
    expect(unsigned.jsonBody).toMatchObject({ code: 'signature_missing', field: 'x-hub-signature-256' });
    const forged = await postGitHub(body, gh.deliveryHeaders(body, 'not-the-secret-at-all'));
    expect(forged.jsonBody).toMatchObject({ code: 'signature_mismatch' });
    // Signed, then altered: the signature no longer matches the body.
    const tampered = await postGitHub(body.replace('"r"', '"s"'), gh.deliveryHeaders(body, SECRET));
    expect(tampered.jsonBody).toMatchObject({ code: 'signature_mismatch' });
    expect((await services.checks.listOpen()).length).toBe(before);
    expect(gh.requests).toEqual([]);
  });

  it('approves the deployment as the App installation, with a comment linking the evidence', async () => {
    const run = await seedRun('succeeded');
    const pending = gh.pendingDeployment({ payload: { sluice: { run: run.id } } });
    const body = JSON.stringify(pending.event);
    const res = await postGitHub(body, gh.deliveryHeaders(body, SECRET));
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ status: 'waiting', created: true });
    const again = await postGitHub(body, gh.deliveryHeaders(body, SECRET));
    expect(again.jsonBody).toMatchObject({ id: res.jsonBody.id, created: false });

    await tick();
    await tick();
    const reviews = gh.reviews.filter((r) => r.runId === pending.runId);
    expect(reviews).toHaveLength(1);
    expect(reviews[0]).toMatchObject({
      state: 'approved',
      environment: 'production',
      repository: 'contoso/churn-app',
    });
    expect(reviews[0]!.comment).toContain(`${BASE}/api/runs/${run.id}`);
    expect(gh.tokensIssued).toBeGreaterThan(0);

    // Re-running the job keeps the workflow run (and its callback URL) but makes a new deployment:
    // a new check, answered again.
    const deployment = pending.event.deployment as { id: number };
    const rerun = JSON.stringify({
      ...pending.event,
      deployment: { ...deployment, id: deployment.id + 100 },
    });
    const third = await postGitHub(rerun, gh.deliveryHeaders(rerun, SECRET));
    expect(third.jsonBody).toMatchObject({ created: true });
    expect(third.jsonBody.id).not.toBe(res.jsonBody.id);
    await tick();
    expect(gh.reviews.filter((r) => r.runId === pending.runId).map((r) => r.state)).toEqual([
      'approved',
      'approved',
    ]);
  });

  it('rejects a deployment that names no condition, in its payload or its commit, rather than leaving it waiting', async () => {
    const pending = gh.pendingDeployment({ environment: 'staging', payload: '' });
    const body = JSON.stringify(pending.event);
    const res = await postGitHub(body, gh.deliveryHeaders(body, SECRET));
    expect(res.jsonBody).toMatchObject({ status: 'waiting' });
    await tick();
    const review = gh.reviews.find((r) => r.runId === pending.runId);
    expect(review).toMatchObject({ state: 'rejected', environment: 'staging' });
    expect(review!.comment).toContain('condition_missing');
    expect(review!.comment).toContain('.sluice/deployment.json');

    // Without a commit to look in, it is decided at once.
    const bare = gh.pendingDeployment({ payload: {} });
    const { sha: _sha, ...deployment } = bare.event.deployment as Record<string, unknown>;
    const noCommit = JSON.stringify({ ...bare.event, deployment });
    const res2 = await postGitHub(noCommit, gh.deliveryHeaders(noCommit, SECRET));
    expect(res2.jsonBody).toMatchObject({ status: 'reporting' });
    await tick();
    expect(gh.reviews.find((r) => r.runId === bare.runId)).toMatchObject({ state: 'rejected' });
  });

  it('reads the condition from the deployed commit when the deployment (a GitHub Actions job) has no payload', async () => {
    const run = await seedRun('succeeded');
    const sha = 'c0ffee'.padEnd(40, '1');
    gh.commitFile('contoso/churn-app', sha, '.sluice/deployment.json', JSON.stringify({ run: run.id }));
    const pending = gh.pendingDeployment({ sha, payload: {} });
    const body = JSON.stringify(pending.event);
    const res = await postGitHub(body, gh.deliveryHeaders(body, SECRET));
    expect(res.jsonBody).toMatchObject({ status: 'waiting' });
    await tick();
    expect(gh.reviews.find((r) => r.runId === pending.runId)).toMatchObject({ state: 'approved' });
    expect(await stored(res.jsonBody.id)).toMatchObject({ condition: { run: run.id }, status: 'reported' });

    const badSha = 'bad'.padEnd(40, '2');
    gh.commitFile('contoso/churn-app', badSha, '.sluice/deployment.json', '{"model": "churn"}');
    const bad = gh.pendingDeployment({ sha: badSha, payload: {} });
    const badBody = JSON.stringify(bad.event);
    await postGitHub(badBody, gh.deliveryHeaders(badBody, SECRET));
    await tick();
    const review = gh.reviews.find((r) => r.runId === bad.runId);
    expect(review).toMatchObject({ state: 'rejected' });
    expect(review!.comment).toContain('invalid_condition_file');
  });

  it('rejects when the model version was never approved into production', async () => {
    const run = await seedRun('stopped', {
      stopReason: 'evaluation_failed',
      reason: 'roc_auc below champion',
    });
    await services.registry.registerVersion({
      modelName: 'churn-gh',
      modelDigest: 'b'.repeat(64),
      artifactUri: 'models/sha256/b',
      datasetDigest: 'c'.repeat(64),
      metrics: {},
      trainingSpec: {},
      algorithm: 'logistic_regression',
      runId: run.id,
    });
    const pending = gh.pendingDeployment({
      payload: JSON.stringify({ sluice: { model: 'churn-gh', version: 1 } }),
    });
    const body = JSON.stringify(pending.event);
    await postGitHub(body, gh.deliveryHeaders(body, SECRET));
    await tick();
    const review = gh.reviews.find((r) => r.runId === pending.runId);
    expect(review).toMatchObject({ state: 'rejected' });
    expect(review!.comment).toContain('version_not_deployed');
    expect(review!.comment).toContain('evaluation_failed');
  });

  it('answers ping, ignores other events, and names a malformed event', async () => {
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    expect((await postGitHub(ping, gh.deliveryHeaders(ping, SECRET, 'ping'))).status).toBe(200);
    const push = JSON.stringify({ ref: 'refs/heads/main' });
    expect((await postGitHub(push, gh.deliveryHeaders(push, SECRET, 'push'))).status).toBe(202);
    const { event } = gh.pendingDeployment({});
    const broken = JSON.stringify({ ...event, deployment_callback_url: undefined });
    const res = await postGitHub(broken, gh.deliveryHeaders(broken, SECRET));
    expect(res.status).toBe(400);
    expect(res.jsonBody).toMatchObject({
      code: 'invalid_protection_rule_event',
      field: 'deployment_callback_url',
    });
    const badCondition = JSON.stringify({
      ...event,
      deployment: { id: 1, payload: { sluice: { model: 'x' } } },
    });
    const res2 = await postGitHub(badCondition, gh.deliveryHeaders(badCondition, SECRET));
    expect(res2.jsonBody).toMatchObject({
      code: 'invalid_check_condition',
      field: 'deployment.payload.sluice',
    });
  });
});
