/**
 * Issue 13, item 1: a rollback returns production only to a version that was approved and in
 * production before, and is itself audited (who the platform says called, when, why, from/to).
 * Real registry and approval store on the Cosmos emulator, the real HTTP handlers.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { createGetModelHandler } from '../../../functions/getModel';
import { createRollbackHandler } from '../../../functions/rollbackModel';
import { closeRecord, newApprovalRecord } from '../../../lib/approval/record';
import { ApprovalStore } from '../../../lib/approval/store';
import { ModelRegistry } from '../../../lib/registry/registry';
import type { CosmosEmulator } from '../../support/emulators';
import { cosmosContainer, startCosmos } from '../../support/emulators';
import { sampleApprovalInput } from '../../support/approvalSample';

const MODEL = 'credit';
const DATASET = 'd'.repeat(64);
const digest = (v: number) => v.toString(16).repeat(64).slice(0, 64);

describe('issue 13 item 1: rollback only to a version approved and in production before', () => {
  let cosmos: CosmosEmulator;
  let registry: ModelRegistry;
  let approvals: ApprovalStore;
  let rollback: ReturnType<typeof createRollbackHandler>;

  async function approval(version: number, status: 'approved' | 'rejected'): Promise<string> {
    const runId = `run-v${version}-${status}`;
    const rec = newApprovalRecord(
      `${runId}:approval`,
      sampleApprovalInput({
        runId,
        pipeline: MODEL,
        candidate: {
          modelName: MODEL,
          modelVersion: version,
          modelDigest: digest(version),
          datasetDigest: DATASET,
        },
      }),
      new Date(),
    );
    await approvals.createRecord(rec);
    await approvals.updateRecord(runId, rec.id, (r) =>
      closeRecord(r, status, [`${status} in a test`], new Date()),
    );
    return rec.id;
  }

  const call = (body: unknown, headers: Record<string, string> = {}) =>
    rollback(
      new HttpRequest({
        method: 'POST',
        url: `http://localhost/api/models/${MODEL}/rollback`,
        params: { name: MODEL },
        headers: { 'content-type': 'application/json', ...headers },
        body: { string: JSON.stringify(body) },
      }),
      new InvocationContext(),
    );
  const production = async () => (await registry.getHead(MODEL))?.aliases.production?.version;

  beforeAll(async () => {
    cosmos = await startCosmos();
    registry = new ModelRegistry(await cosmosContainer(cosmos, 'models'));
    approvals = new ApprovalStore(await cosmosContainer(cosmos, 'approvals'));
    rollback = createRollbackHandler(
      async () => registry,
      () => undefined,
      (name, version) => approvals.findByCandidate(name, version),
    );
    for (const v of [1, 2, 3, 4]) {
      await registry.registerVersion({
        modelName: MODEL,
        modelDigest: digest(v),
        artifactUri: `http://127.0.0.1/models/sha256/${digest(v)}`,
        datasetDigest: DATASET,
        metrics: { r2: 0.5 + v / 100 },
        trainingSpec: {},
        algorithm: 'linear_regression',
        runId: `run-v${v}`,
      });
    }
    // v1 and v2 went to production through approvals; v3 was rejected; v4 was never reviewed.
    for (const v of [1, 2]) {
      const approvalRef = await approval(v, 'approved');
      await registry.moveAlias({
        modelName: MODEL,
        alias: 'production',
        to: v,
        by: `approval:${approvalRef}`,
        reason: 'deploy',
        approvalRef,
      });
    }
    await approval(3, 'rejected');
  });
  afterAll(async () => {
    await cosmos?.stop();
  });

  it('refuses a version reviewers rejected with 409 naming why, and production stays', async () => {
    const res = await call(
      { to: 3, reason: 'try the other one' },
      { 'x-ms-client-principal-name': 'ops@example.com' },
    );
    expect(res.status).toBe(409);
    expect(res.jsonBody).toMatchObject({ code: 'version_rejected', field: 'to' });
    expect((res.jsonBody as { detail: string }).detail).toMatch(/^Version 3 was rejected by reviewers/);
    expect(await production()).toBe(2);
  });

  it('refuses to "roll back" forward to a version that was never in production', async () => {
    const res = await call({ to: 4, reason: 'newer is better' });
    expect(res.status).toBe(409);
    expect(res.jsonBody).toMatchObject({ code: 'never_in_production', field: 'to' });
    expect((res.jsonBody as { detail: string }).detail).toMatch(/^Version 4 was never in production/);
    expect(await production()).toBe(2);
  });

  it('takes who rolled back from the platform, never from the body', async () => {
    const res = await call({ reason: 'latency', by: 'someone-else@example.com' });
    expect(res.status).toBe(400);
    expect(res.jsonBody).toMatchObject({ code: 'by_not_accepted', field: 'by' });
    expect(await production()).toBe(2);
  });

  it('returns to an approved earlier production version, audited in the alias history of GET /api/models/{name}', async () => {
    const res = await call(
      { reason: 'p99 latency regression in v2' },
      { 'x-ms-client-principal-name': 'oncall@example.com' },
    );
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({ from: 2, to: 1 });
    expect(await production()).toBe(1);

    const detail = await createGetModelHandler(async () => registry)(
      new HttpRequest({
        url: `http://localhost/api/models/${MODEL}`,
        method: 'GET',
        params: { name: MODEL },
      }),
    );
    const history = (detail.jsonBody as { aliasHistory: Record<string, unknown>[] }).aliasHistory;
    expect(history.at(-1)).toMatchObject({
      alias: 'production',
      from: 2,
      to: 1,
      by: 'oncall@example.com',
      reason: 'rollback: p99 latency regression in v2',
      approvalRef: 'run-v1-approved:approval',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    // Forward again to v2 is allowed: it was approved and in production before.
    const forward = await call({ to: 2, reason: 'the latency fix is out' });
    expect(forward.status).toBe(200);
    expect(await production()).toBe(2);
    expect((await registry.getModel(MODEL))?.aliasHistory.at(-1)).toMatchObject({
      by: 'anonymous',
      to: 2,
    });
  });
});
