import { HttpRequest, InvocationContext } from '@azure/functions';
import type { HttpResponseInit } from '@azure/functions';
import { ApprovalStore } from '../../../lib/approval/store';
import { AuditLog } from '../../../lib/audit/log';
import type { Notification, Notifier } from '../../../lib/notify';
import type { PipelineDefinition } from '../../../lib/pipelines/definition';
import { PipelineStore } from '../../../lib/pipelines/store';
import { ModelRegistry } from '../../../lib/registry/registry';
import { createOverrideHandler } from '../../../functions/overrideModel';
import type { OverrideDeps } from '../../../functions/overrideModel';
import { withProblems } from '../../../functions/support/http';
import { recordOverrideReview } from '../../../activities/recordOverrideReview';
import { buildEvidencePack } from '../../../lib/evidence/pack';
import { useEmulators } from '../../support/emulatorSuite';

// The emergency override on the Cosmos emulator, through its HTTP handler: with the
// Sluice.BreakGlass role it moves production (audited as override.deployed), marks the version,
// tells every reviewer and starts the post-hoc review; without it: 403, override.refused in the
// audit trail, nothing moved. The review's outcome lands on the version's mark.

const T0 = new Date('2026-04-02T10:00:00.000Z');
const digest = (c: string) => c.repeat(64);

const suite = useEmulators();
let audit: AuditLog;
let registry: ModelRegistry;
let pipelines: PipelineStore<PipelineDefinition>;
let approvals: ApprovalStore;
let counter = 0;

beforeAll(async () => {
  const { cosmos } = suite;
  audit = new AuditLog(cosmos.container('audit'));
  registry = new ModelRegistry(cosmos.container('models'), () => T0, audit);
  pipelines = new PipelineStore<PipelineDefinition>(cosmos.container('pipelines'), { audit });
  approvals = new ApprovalStore(cosmos.container('approvals'), audit);
});

const principal = (name: string, roles: string[]) =>
  Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      name_typ: 'preferred_username',
      role_typ: 'roles',
      claims: [{ typ: 'preferred_username', val: name }, ...roles.map((r) => ({ typ: 'roles', val: r }))],
    }),
  ).toString('base64');

/** A pipeline with two reviewers and an escalation reviewer, and a model with v1 in production, v2 not. */
async function setUp(): Promise<{ model: string; pipeline: string }> {
  const n = ++counter;
  const model = `ovr${n}`;
  const pipeline = `ovrpipe${n}`;
  const definition = {
    name: pipeline,
    approval: {
      reviewers: ['alice@example.com', 'bob@example.com'],
      requiredApprovals: 2,
      timeout: '8h',
      onTimeout: { action: 'escalate', reviewers: ['carol@example.com'], timeout: '4h' },
    },
  } as unknown as PipelineDefinition;
  await pipelines.put(pipeline, definition, 'test', T0);
  for (const v of [1, 2]) {
    await registry.registerVersion({
      modelName: model,
      modelDigest: digest(String(v)),
      artifactUri: `models/${model}/${v}.json`,
      datasetDigest: digest('d'),
      metrics: { rmse: v },
      trainingSpec: {},
      algorithm: 'linear',
      runId: `run-${model}-${v}`,
      tags: { pipeline },
    });
  }
  await registry.moveAlias({ modelName: model, alias: 'production', to: 1, by: 'test', approvalRef: 'a1' });
  return { model, pipeline };
}

function harness(requireSignin: boolean) {
  const sent: Notification[] = [];
  const started: { id: string; input: Parameters<OverrideDeps['startReview']>[1] }[] = [];
  const notifier: Notifier = {
    channel: 'outbox',
    send: async (m) => {
      sent.push(m);
      return { sent: true, ref: m.key };
    },
  };
  const handler = createOverrideHandler({
    registry,
    pipelines,
    approvals,
    audit,
    notifier: async () => notifier,
    requireSignin,
    now: () => T0,
    startReview: async (id, input) => void started.push({ id, input }),
  });
  const call = (model: string, body: unknown, headers: Record<string, string> = {}) =>
    withProblems(handler)(
      new HttpRequest({
        method: 'POST',
        url: `http://localhost:7071/api/models/${model}/override`,
        params: { name: model },
        headers: { 'content-type': 'application/json', ...headers },
        body: { string: JSON.stringify(body) },
      }),
      new InvocationContext({ functionName: 'overrideModel', invocationId: `inv-${++counter}` }),
    );
  return { sent, started, call };
}

const code = (res: HttpResponseInit) => (res.jsonBody as { code?: string } | undefined)?.code;

describe('emergency override (Cosmos emulator)', () => {
  it('with Sluice.BreakGlass: deploys, audits override.deployed, marks the version, tells every reviewer, opens the review', async () => {
    const { model, pipeline } = await setUp();
    const h = harness(true);
    const res = await h.call(
      model,
      { version: 2, reason: 'v1 scores NaN for new customers since 09:00' },
      { 'x-ms-client-principal': principal('oncall@example.com', ['Sluice.BreakGlass']) },
    );
    expect(res.status).toBe(200);

    const head = await registry.getHead(model);
    expect(head?.aliases.production?.version).toBe(2);
    expect(head?.aliases.production?.movedBy).toBe('oncall@example.com');

    const v2 = await registry.getVersion(model, 2);
    expect(v2?.override).toMatchObject({
      by: 'oncall@example.com',
      review: 'required',
      reason: 'v1 scores NaN for new customers since 09:00',
      reviewDue: new Date(T0.getTime() + 8 * 3_600_000).toISOString(),
    });

    const entries = await audit.bySubject(`model/${model}/2`);
    const deployed = entries.filter((e) => e.kind === 'override.deployed');
    expect(deployed).toHaveLength(1);
    expect(deployed[0]?.actor).toBe('oncall@example.com');
    expect(deployed[0]?.data).toMatchObject({ from: 1, to: 2, alias: 'production' });

    // Every reviewer, escalation reviewer included, at once.
    expect(h.sent.map((m) => m.to).sort()).toEqual([
      'alice@example.com',
      'bob@example.com',
      'carol@example.com',
    ]);
    expect(h.sent.every((m) => m.kind === 'override' && m.subject.includes('OVERRIDE'))).toBe(true);

    // The review: the approval gate for v2, requested by the overrider, one decision settles it.
    expect(h.started).toHaveLength(1);
    const gate = h.started[0]!.input.gate;
    expect(gate.pipeline).toBe(pipeline);
    expect(gate.requestedBy).toBe('oncall@example.com');
    expect(gate.candidate).toMatchObject({ modelName: model, modelVersion: 2, modelDigest: digest('2') });
    expect(gate.policy).toMatchObject({
      reviewers: ['alice@example.com', 'bob@example.com'],
      requiredApprovals: 1,
      timeout: '8h',
      onTimeout: { action: 'escalate', reviewers: ['carol@example.com'] },
    });
    expect(h.started[0]!.id).toBe(`${gate.runId}:review`);
    expect(v2?.override?.reviewApprovalId).toBe(`${gate.runId}:approval`);

    // A retry of the same request moves nothing again and starts the same review.
    const again = await h.call(
      model,
      { version: 2, reason: 'v1 scores NaN for new customers since 09:00' },
      { 'x-ms-client-principal': principal('oncall@example.com', ['Sluice.BreakGlass']) },
    );
    expect(again.status).toBe(200);
    expect(
      (await audit.bySubject(`model/${model}/2`)).filter((e) => e.kind === 'override.deployed'),
    ).toHaveLength(1);
    expect(h.started[1]?.id).toBe(h.started[0]!.id);
  });

  it('without the role: 403, override.refused audited, nothing moved, nobody told', async () => {
    const { model } = await setUp();
    const h = harness(true);
    const res = await h.call(
      model,
      { version: 2, reason: 'I would like v2 out without waiting' },
      { 'x-ms-client-principal': principal('mallory@example.com', ['Sluice.Operator']) },
    );
    expect(res.status).toBe(403);
    expect(code(res)).toBe('break_glass_role_required');
    expect((await registry.getHead(model))?.aliases.production?.version).toBe(1);
    expect((await registry.getVersion(model, 2))?.override).toBeUndefined();
    const refused = (await audit.bySubject(`model/${model}/2`)).filter((e) => e.kind === 'override.refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]?.actor).toBe('mallory@example.com');
    expect(refused[0]?.data).toMatchObject({ model, version: 2, roles: ['Sluice.Operator'] });
    expect(h.sent).toHaveLength(0);
    expect(h.started).toHaveLength(0);

    // No principal at all (a function key only) is refused the same way.
    const anon = await h.call(model, { version: 2, reason: 'no principal at all here' });
    expect(anon.status).toBe(403);
  });

  it('locally (no App Service Authentication) the host checked the master key: the actor says so', async () => {
    const { model } = await setUp();
    const h = harness(false);
    const res = await h.call(model, { version: 2, reason: 'local drill of the break-glass path' });
    expect(res.status).toBe(200);
    expect((await registry.getHead(model))?.aliases.production?.movedBy).toBe('master key');
  });

  it('refuses bad input with the field named, before anything moves', async () => {
    const { model } = await setUp();
    const h = harness(true);
    const who = { 'x-ms-client-principal': principal('oncall@example.com', ['Sluice.BreakGlass']) };
    expect(code(await h.call(model, { version: 9, reason: 'no such version exists here' }, who))).toBe(
      'version_not_found',
    );
    expect(code(await h.call(model, { version: 1, reason: 'already in production though' }, who))).toBe(
      'already_there',
    );
    expect((await h.call(model, { version: 2, reason: 'short' }, who)).status).toBe(400);
    expect(code(await h.call(model, { version: 2, reason: 'naming someone else', by: 'x' }, who))).toBe(
      'by_not_accepted',
    );
    expect((await registry.getHead(model))?.aliases.production?.version).toBe(1);
  });

  it('the review outcome lands on the mark: approved → reviewed, rejected → rejected, expired stays required', async () => {
    const { model } = await setUp();
    const h = harness(true);
    await h.call(
      model,
      { version: 2, reason: 'v1 scores NaN for new customers since 09:00' },
      { 'x-ms-client-principal': principal('oncall@example.com', ['Sluice.BreakGlass']) },
    );
    const approvalId = (await registry.getVersion(model, 2))!.override!.reviewApprovalId;
    const record = recordOverrideReview(registry);
    const decidedAt = new Date(T0.getTime() + 3_600_000).toISOString();
    expect(
      (await record({ modelName: model, version: 2, approvalId, outcome: 'expired', by: [], decidedAt }))
        .review,
    ).toBe('required');
    // Another approval id (a stale review) changes nothing.
    await record({
      modelName: model,
      version: 2,
      approvalId: 'other',
      outcome: 'rejected',
      by: ['x'],
      decidedAt,
    });
    expect((await registry.getVersion(model, 2))?.override?.review).toBe('required');
    await record({
      modelName: model,
      version: 2,
      approvalId,
      outcome: 'approved',
      by: ['alice@example.com'],
      decidedAt,
    });
    expect((await registry.getVersion(model, 2))?.override).toMatchObject({
      review: 'reviewed',
      reviewedBy: ['alice@example.com'],
      reviewedAt: decidedAt,
    });
    const pack = await buildEvidencePack(
      {
        registry,
        pipelines,
        approvals,
        audit,
        runs: { find: async () => undefined },
        artifacts: {
          getBuffer: async () => {
            throw new Error('no run, no reports to read');
          },
        },
        now: () => T0,
      },
      model,
      2,
    );
    expect(pack?.model.override).toMatchObject({ label: 'override, reviewed', review: 'reviewed' });
  });

  it('recordOverrideReview: twice leaves the same mark as once', async () => {
    const { model } = await setUp();
    await harness(true).call(
      model,
      { version: 2, reason: 'v1 scores NaN for new customers since 09:00' },
      { 'x-ms-client-principal': principal('oncall@example.com', ['Sluice.BreakGlass']) },
    );
    const approvalId = (await registry.getVersion(model, 2))!.override!.reviewApprovalId;
    const input = {
      modelName: model,
      version: 2,
      approvalId,
      outcome: 'rejected' as const,
      by: ['bob@example.com'],
      decidedAt: new Date(T0.getTime() + 7_200_000).toISOString(),
    };
    const first = await recordOverrideReview(registry)(input);
    const once = await registry.getVersion(model, 2);
    const second = await recordOverrideReview(registry)(input);
    expect(second).toEqual(first);
    expect(first.review).toBe('rejected');
    expect(await registry.getVersion(model, 2)).toEqual(once);
  });

  it('a production move between the handler reading the model and moving it wins: 409, the override changes nothing', async () => {
    const { model } = await setUp();
    await registry.registerVersion({
      modelName: model,
      modelDigest: digest('3'),
      artifactUri: `models/${model}/3.json`,
      datasetDigest: digest('d'),
      metrics: { rmse: 3 },
      trainingSpec: {},
      algorithm: 'linear',
      runId: `run-${model}-3`,
    });
    const sent: Notification[] = [];
    const started: string[] = [];
    let raced = false;
    const handler = createOverrideHandler({
      // The real registry; a release moves production to v3 just before the override's move.
      registry: {
        getModel: (name) => registry.getModel(name),
        setOverrideMark: (...args) => registry.setOverrideMark(...args),
        moveAlias: async (input) => {
          if (!raced) {
            raced = true;
            await registry.moveAlias({
              modelName: model,
              alias: 'production',
              to: 3,
              by: 'release',
              reason: 'release',
            });
          }
          return registry.moveAlias(input);
        },
      },
      pipelines,
      approvals,
      audit,
      notifier: async () => ({
        channel: 'outbox',
        send: async (m) => (sent.push(m), { sent: true, ref: m.key }),
      }),
      requireSignin: true,
      now: () => T0,
      startReview: async (id) => void started.push(id),
    });
    const res = await withProblems(handler)(
      new HttpRequest({
        method: 'POST',
        url: `http://localhost:7071/api/models/${model}/override`,
        params: { name: model },
        headers: {
          'content-type': 'application/json',
          'x-ms-client-principal': principal('oncall@example.com', ['Sluice.BreakGlass']),
        },
        body: {
          string: JSON.stringify({ version: 2, reason: 'v1 scores NaN for new customers since 09:00' }),
        },
      }),
      new InvocationContext({ functionName: 'overrideModel', invocationId: `inv-${++counter}` }),
    );
    expect([res.status, code(res)]).toEqual([409, 'alias_conflict']);
    expect((await registry.getHead(model))?.aliases.production?.version).toBe(3);
    expect((await registry.getVersion(model, 2))?.override).toBeUndefined();
    expect(sent).toEqual([]);
    expect(started).toEqual([]);
  });

  it("the evidence pack says where a version is and lists only that version's moves", async () => {
    const { model, pipeline } = await setUp();
    await registry.moveAlias({ modelName: model, alias: 'staging', to: 2, by: 'test', reason: 'staging' });
    const deps = {
      registry,
      pipelines,
      approvals,
      audit,
      runs: { find: async () => undefined },
      artifacts: {
        getBuffer: async () => {
          throw new Error('no run, no reports to read');
        },
      },
      now: () => T0,
    };
    const one = await buildEvidencePack(deps, model, 1);
    const two = await buildEvidencePack(deps, model, 2);
    expect(one?.model).toMatchObject({ version: 1, aliases: ['production'], inProduction: true });
    expect(two?.model).toMatchObject({ version: 2, aliases: ['staging'], inProduction: false });
    expect(one?.deployments.map((d) => [d.alias, d.from, d.to])).toEqual([['production', null, 1]]);
    expect(two?.deployments.map((d) => [d.alias, d.from, d.to])).toEqual([['staging', null, 2]]);
    expect(two?.lineage.deployments).toEqual([expect.objectContaining({ alias: 'staging', by: 'test' })]);
    expect(one?.pipeline?.name).toBe(pipeline);
  });
});
