/**
 * A canceled run never moves traffic or production, and an abort is final (issue 20), on the
 * emulators with the app's own services: the real activities and cancel path, a recording Durable
 * client (no orchestration runs here; the orchestrator-level tests are in test/unit/rollout).
 */
import { randomBytes } from 'node:crypto';
import { HttpRequest, InvocationContext } from '@azure/functions';
import type * as df from 'durable-functions';
import { deployDeps, deployModel } from '../../../activities/deployModel';
import { setRolloutStep } from '../../../activities/setRolloutStep';
import { startRollout } from '../../../activities/startRollout';
import { cancelRunNow } from '../../../functions/support/cancel';
import { createRolloutActionHandler } from '../../../functions/rolloutAction';
import { newApprovalRecord } from '../../../lib/approval/record';
import { loadConfig } from '../../../lib/config';
import { setRolloutStepActivity, startRolloutActivity } from '../../../lib/contracts/rollout';
import { newRunDocument } from '../../../lib/runs/document';
import { requestControl } from '../../../lib/rollout/store';
import { reconcileRuns } from '../../../lib/runs/reconcile';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { sampleApprovalInput } from '../../support/approvalSample';
import { seedProductionAndCandidate } from '../../support/rolloutSeed';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { startAzuriteBlob, startCosmos } from '../../support/emulators';

jest.setTimeout(120_000);

const AT = '2026-03-01T09:00:00.000Z';
const context = () => new InvocationContext({ functionName: 'test' });

/** Records what cancel asks of the Durable client. */
function recordingClient() {
  const terminated: string[] = [];
  const events: { id: string; name: string; data: unknown }[] = [];
  const client = {
    terminate: async (id: string) => void terminated.push(id),
    raiseEvent: async (id: string, name: string, data: unknown) => void events.push({ id, name, data }),
  } as unknown as df.DurableClient;
  return { client, terminated, events };
}

describe('rollouts of canceled runs, and sticky aborts (emulators)', () => {
  let azurite: BlobEmulator;
  let cosmos: CosmosEmulator;
  let services: Services;

  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzuriteBlob(), startCosmos()]);
    services = await createServices(
      loadConfig({
        COSMOS_ENDPOINT: cosmos.endpoint,
        COSMOS_KEY: cosmos.key,
        ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
        APPROVAL_SIGNING_KEYS: JSON.stringify({ k1: randomBytes(32).toString('base64') }),
        NOTIFIER: 'outbox',
      }),
    );
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  /** A model with production at v1, an approved candidate v2, and a running run. */
  async function setup(model: string) {
    const runId = `run-${model}`;
    const candidate = await seedProductionAndCandidate(services.registry, model);
    const approvalId = `${runId}:approval`;
    const record = newApprovalRecord(
      approvalId,
      sampleApprovalInput({ runId, pipeline: model, candidate }),
      new Date(AT),
    );
    await services.approvals.createRecord({ ...record, status: 'approved' });
    const { run } = await services.runs.create(
      newRunDocument({
        id: runId,
        pipeline: model,
        pipelineVersion: 1,
        instanceId: runId,
        trigger: { kind: 'http', by: 'requester@example.com' },
        source: { kind: 'blob', uri: 'https://example/datasets/wages.csv' },
        at: AT,
      }),
    );
    await services.runs.update(model, runId, (r) => ({ ...r, status: 'running' }));
    const rolloutId = `${runId}:rollout`;
    const start = startRolloutActivity.input.parse({
      modelName: model,
      rolloutId,
      runId,
      pipeline: model,
      approvalId,
      candidate,
      expectedProduction: 1,
      strategy: 'canary',
      steps: [{ percent: 10 }, { percent: 100 }],
      agreementTolerance: 0.1,
      at: AT,
    });
    const step = setRolloutStepActivity.input.parse({
      modelName: model,
      rolloutId,
      runId,
      pipeline: model,
      strategy: 'canary',
      step: 0,
      percent: 10,
      state: 'active',
      at: AT,
    });
    const deploy = {
      runId,
      pipeline: model,
      approvalId,
      deploymentId: `exec-${runId}`,
      candidate,
      expectedProduction: 1,
    };
    return { runId, rolloutId, run, start, step, deploy };
  }

  const production = async (model: string) =>
    (await services.registry.getHead(model))?.aliases.production?.version;

  it('canceled mid-step: the rollout is terminated and ended, nothing after moves traffic or production', async () => {
    const model = 'cancel-mid-step';
    const s = await setup(model);
    await startRollout(services)(s.start);
    await setRolloutStep(services)(s.step);
    const run = (await services.runs.get(model, s.runId))!;
    const { client, terminated, events } = recordingClient();

    const out = await cancelRunNow(services, client, run, 'ops@example.com', context());
    expect(out.status).toBe('canceled');
    expect(terminated).toContain(s.rolloutId);
    const doc = await services.rollouts.get(model);
    expect(doc).toMatchObject({
      state: 'aborted',
      percent: 0,
      control: { action: 'abort', by: 'ops@example.com' },
    });
    expect(events).toEqual([expect.objectContaining({ id: s.rolloutId })]);

    // A rollout that somehow kept going is refused at every step that would move something.
    await expect(setRolloutStep(services)({ ...s.step, step: 1, percent: 100 })).rejects.toMatchObject({
      code: 'run_canceled',
    });
    await expect(deployModel(deployDeps(services))(s.deploy)).rejects.toMatchObject({ code: 'run_canceled' });
    expect(await production(model)).toBe(1);
  });

  it("a cancel between deploy's run check and its alias move is refused: the check and the move are one decision", async () => {
    const model = 'cancel-during-move';
    const s = await setup(model);
    const { client, terminated } = recordingClient();
    let cancel: Promise<unknown> | undefined;
    // Forced interleaving: the cancel comes after the run was checked (claimed) and before the move.
    const out = await deployModel({
      ...deployDeps(services),
      beforeMove: async () => {
        cancel = cancelRunNow(
          services,
          client,
          (await services.runs.get(model, s.runId))!,
          'ops@example.com',
          context(),
        ).catch((err: unknown) => err);
        await cancel;
      },
    })(s.deploy);
    expect(await cancel).toMatchObject({ code: 'run_deploying', status: 409 });
    expect(terminated).toEqual([]);
    expect(out).toMatchObject({ moved: true, version: 2 });
    expect(await production(model)).toBe(2);
    const run = (await services.runs.get(model, s.runId))!;
    expect(run.cancelRequested).toBeUndefined();
    expect(run.deploying).toMatchObject({ deploymentId: s.deploy.deploymentId });
    // A retry of the same deployment finds its own claim and changes nothing.
    await expect(deployModel(deployDeps(services))(s.deploy)).resolves.toMatchObject({ moved: false });
  });

  it("a cancel that lands before deploy's claim wins: nothing moves, even with the check passed before", async () => {
    const model = 'cancel-before-claim';
    const s = await setup(model);
    const { client } = recordingClient();
    // The old check would have read the run before the cancel; the claim is a conditional write
    // that sees the cancel, whichever read came first.
    const stale = (await services.runs.get(model, s.runId))!;
    await cancelRunNow(services, client, stale, 'ops@example.com', context());
    await expect(deployModel(deployDeps(services))(s.deploy)).rejects.toMatchObject({ code: 'run_canceled' });
    expect(await production(model)).toBe(1);
  });

  it('canceled before the first step (run.rollout not written yet): the live document is still ended', async () => {
    const model = 'cancel-before-step';
    const s = await setup(model);
    await startRollout(services)(s.start);
    const run = (await services.runs.get(model, s.runId))!;
    expect(run.rollout).toBeUndefined();
    const { client } = recordingClient();
    await cancelRunNow(services, client, run, 'ops@example.com', context());
    expect(await services.rollouts.get(model)).toMatchObject({ state: 'aborted', percent: 0 });
  });

  it('canceled while the rollout starts (during the holdout scoring): the document written is ended at once', async () => {
    const model = 'cancel-while-starting';
    const s = await setup(model);
    const { client } = recordingClient();
    // The cancel lands after startRollout's first look at the run, before it writes the document.
    const deps = {
      ...services,
      registry: {
        getVersion: services.registry.getVersion.bind(services.registry),
        getHead: async (name: string) => {
          const run = (await services.runs.get(model, s.runId))!;
          await cancelRunNow(services, client, run, 'ops@example.com', context());
          return services.registry.getHead(name);
        },
      },
    };
    await expect(startRollout(deps)(s.start)).rejects.toMatchObject({ code: 'run_canceled' });
    expect(await services.rollouts.get(model)).toMatchObject({ state: 'aborted', percent: 0 });
    // And once canceled, a new start is refused before anything is written.
    await expect(startRollout(services)({ ...s.start, rolloutId: 'again:rollout' })).rejects.toMatchObject({
      code: 'run_canceled',
    });
    expect(await production(model)).toBe(1);
  });

  it('an abort is sticky: a later pause, resume or promote is refused 409 abort_pending', async () => {
    const model = 'sticky-abort';
    const s = await setup(model);
    await startRollout(services)(s.start);
    const first = await requestControl(services.rollouts, model, { action: 'abort', by: 'ops' }, AT);
    expect(first?.control).toMatchObject({ action: 'abort', seq: 1 });
    for (const action of ['pause', 'resume', 'promote'] as const) {
      await expect(
        requestControl(services.rollouts, model, { action, by: 'other' }, AT),
      ).rejects.toMatchObject({
        code: 'abort_pending',
      });
    }
    // Another abort changes nothing.
    const again = await requestControl(services.rollouts, model, { action: 'abort', by: 'other' }, AT);
    expect(again?.control).toEqual(first?.control);
    expect((await services.rollouts.get(model))?.control).toEqual(first?.control);

    const handler = createRolloutActionHandler(
      { rollouts: services.rollouts, now: () => new Date(AT) },
      async () => {
        throw new Error('no wake-up expected');
      },
    );
    const res = await handler(
      new HttpRequest({
        method: 'POST',
        url: `http://localhost/api/models/${model}/rollout/promote`,
        params: { name: model, action: 'promote' },
        headers: { 'content-type': 'application/json' },
      }),
      context(),
    );
    expect(res.status).toBe(409);
    expect(res.jsonBody).toMatchObject({ code: 'abort_pending' });
  });

  it('reconciliation ends a live rollout whose orchestration failed or is gone, and leaves a running one', async () => {
    const models = ['rec-failed', 'rec-gone', 'rec-running'];
    for (const m of models) {
      const s = await setup(m);
      await startRollout(services)(s.start);
      await setRolloutStep(services)(s.step);
    }
    const states: Record<string, { runtimeStatus: string } | undefined> = {
      'run-rec-failed:rollout': { runtimeStatus: 'Failed' },
      'run-rec-running:rollout': { runtimeStatus: 'Running' },
    };
    const result = await reconcileRuns(
      {
        runs: services.runs,
        approvals: services.approvals,
        slots: services.slots,
        rollouts: services.rollouts,
        orchestration: async (id) => states[id],
        now: () => new Date(Date.parse(AT) + 3_600_000),
      },
      [],
    );
    // (The sticky-abort test's rollout, never ended and with no orchestration, is ended too.)
    const ours = result.ended.map((e) => e.id).filter((id) => id.startsWith('run-rec-'));
    expect(ours.sort()).toEqual(['run-rec-failed:rollout', 'run-rec-gone:rollout']);
    expect(result.ended).toContainEqual({
      id: 'run-sticky-abort:rollout',
      stopReason: 'rollout_orchestration_gone',
    });
    expect(await services.rollouts.get('rec-failed')).toMatchObject({
      state: 'aborted',
      percent: 0,
      reason: expect.stringContaining('is failed'),
    });
    expect(await services.rollouts.get('rec-gone')).toMatchObject({ state: 'aborted', percent: 0 });
    expect(await services.rollouts.get('rec-running')).toMatchObject({ state: 'active', percent: 10 });
  });
});
