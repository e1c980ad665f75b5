/**
 * Issue 13, "The promise holds": no path to production without a fresh approval, through devhost
 * over HTTP with the real Durable engine, Azurite and the Cosmos emulator. Each test is named after
 * the item it pins: a restarted run cannot reuse its approval (item 2), a cancelled run closes its
 * approval (item 5), a run terminated from outside is reconciled, and five concurrent runs of one
 * pipeline ask for one approval. Needs `dist/`.
 */
import type { PipelineHarness, RunView } from './harness';
import { REVIEWER, startPipelineHarness, STEPS_AT_APPROVAL, stepStatuses, testPipeline } from './harness';

jest.setTimeout(300_000);

type Json = Record<string, unknown>;
const DURABLE = '/runtime/webhooks/durabletask/instances';

describe('issue 13: the promise holds (devhost)', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    // Five trainings at once on a busy 2-core machine: a 5 s heartbeat limit would take a slow
    // worker for a dead one. Nothing here tests worker deaths.
    h = await startPipelineHarness({ env: { TRAINING_HEARTBEAT_STALE_SECONDS: '120' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const atApproval = (id: string) =>
    h.waitFor(id, 'the approval gate', (r) => r.status === 'waiting_for_approval');
  const productionMoves = async (name: string) =>
    ((await h.model(name))?.aliasHistory ?? []).filter((m) => m.alias === 'production').map((m) => m.to);
  const durableStatus = async (instanceId: string) => {
    const res = await h.api('GET', `${DURABLE}/${encodeURIComponent(instanceId)}`);
    return (await res.json()) as { runtimeStatus: string; output?: Json };
  };
  const approvalJson = async (link: string) => {
    const res = await fetch(link, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    return (await res.json()) as Json & { status: string; candidate: Json; withdrawn?: Json };
  };

  it('item 2: restarting a finished run through the Durable API does not deploy again from its approval', async () => {
    const name = 'e2e-restart';
    await h.put(testPipeline(name));
    const first = await h.start(name);
    await atApproval(first);
    await h.decide(first, 'approve');
    expect((await h.finished(first)).status).toBe('succeeded');

    // A second, different model (another pipeline version) is approved and replaces it.
    await h.put(
      testPipeline(name, {
        training: { ...(testPipeline(name).training as Json), hyperparameters: { alpha: 1.05 } },
      }),
    );
    const second = await h.start(name);
    await atApproval(second);
    await h.decide(second, 'approve');
    expect((await h.finished(second)).status).toBe('succeeded');
    expect(await productionMoves(name)).toEqual([1, 2]);

    // Restart the first run's orchestration: with a new instance id (the default) and in place.
    const restarted = await h.api('POST', `${DURABLE}/${first}/restart`);
    expect(restarted.status).toBe(202);
    const newId = ((await restarted.json()) as { id: string }).id;
    expect(newId).not.toBe(first);
    const inPlace = await h.api('POST', `${DURABLE}/${first}/restart?restartWithNewInstanceId=false`);
    expect(inPlace.status).toBe(202);

    const ended = [];
    for (const instance of [newId, first]) {
      ended.push(
        await h.until(`restarted ${instance} to end`, async () => {
          const s = await durableStatus(instance);
          return ['Completed', 'Failed', 'Terminated'].includes(s.runtimeStatus) && s.output ? s : undefined;
        }),
      );
    }
    // Production moved once per decision: still the second run's model, and no third move.
    expect(await productionMoves(name)).toEqual([1, 2]);
    for (const e of ended) {
      expect(e.runtimeStatus).toBe('Completed');
      expect(e.output).toMatchObject({ runId: first, status: 'stopped', stopReason: 'duplicate_execution' });
      expect(String(e.output?.reason)).toMatch(/cannot run it again or reuse its approval/);
    }
    expect((await h.model(name))?.aliases.production?.version).toBe(2);
    // The first run's document is the first execution's, untouched.
    expect(await h.run(first)).toMatchObject({ status: 'succeeded', deployment: { version: 1 } });
  });

  it('item 5: cancelling a run closes its approval; the page says why and no decision is recorded', async () => {
    const name = 'e2e-cancel-approval';
    await h.put(testPipeline(name));
    const id = await h.start(name);
    expect(stepStatuses(await atApproval(id))).toEqual(STEPS_AT_APPROVAL);
    const link = await h.link(id);
    expect((await approvalJson(link)).status).toBe('pending');

    const res = await h.api(
      'POST',
      `/api/runs/${id}/cancel`,
      {},
      { 'x-ms-client-principal-name': 'ops@example.com' },
    );
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'canceled', approval: 'withdrawn' });

    const json = await approvalJson(link);
    expect(json.status).toBe('withdrawn');
    expect(json.withdrawn).toMatchObject({ reason: 'canceled', by: 'ops@example.com' });
    const page = await fetch(link, { headers: { accept: 'text/html' } });
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toMatch(
      /This run was canceled on \d{4}-\d\d-\d\d [\d:]+ UTC by ops@example\.com; no decision can be recorded\./,
    );
    expect(html).not.toMatch(/<form/);

    // A decision POST (JSON or the form) is refused, and nothing is stored or deployed.
    const digests = { modelDigest: json.candidate.modelDigest, datasetDigest: json.candidate.datasetDigest };
    const post = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ decision: 'approve', ...digests }),
    });
    expect(post.status).toBe(409);
    expect(await post.json()).toMatchObject({
      code: 'approval_closed',
      detail: expect.stringMatching(/canceled .* by ops@example\.com/),
    });
    const form = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: new URLSearchParams({
        decision: 'approve',
        comment: '',
        ...(digests as Record<string, string>),
      }).toString(),
    });
    expect(form.status).toBe(409);
    expect(await form.text()).toMatch(/Your decision was not recorded\./);
    expect((await approvalJson(link)).decisions).toEqual([]);
    expect((await h.model(name))?.aliases.production).toBeUndefined();
  });

  it('a run whose orchestration is terminated from outside is reconciled with a stop reason, and its approval closes', async () => {
    const name = 'e2e-terminated';
    await h.put(testPipeline(name));
    const id = await h.start(name);
    await atApproval(id);
    const link = await h.link(id);
    const res = await h.api(
      'POST',
      `${DURABLE}/${id}/terminate?reason=${encodeURIComponent('pulled by ops')}`,
    );
    expect(res.status).toBe(202);

    const run = await h.waitFor(id, 'reconciliation', (r) => r.status !== 'waiting_for_approval');
    expect(run).toMatchObject({ status: 'canceled', stopReason: 'orchestration_terminated' });
    expect(run.reason).toMatch(/terminated from outside: pulled by ops/);
    expect(run.steps.find((s) => s.name === 'approve')?.status).toBe('canceled');
    const listed = (await (await h.api('GET', `/api/runs?pipeline=${name}`)).json()) as Json[];
    expect(listed.find((r) => r.id === id)).toMatchObject({
      status: 'canceled',
      stopReason: 'orchestration_terminated',
    });
    const json = await approvalJson(link);
    expect(json.status).toBe('withdrawn');
    expect(json.withdrawn).toMatchObject({ reason: 'orchestration_terminated' });
    // The approval gate outlived its parent; woken by the reconciliation, it ends as withdrawn.
    const gate = await h.until('the gate to see the withdrawal', async () => {
      const s = await durableStatus(`${id}:approval`);
      return s.runtimeStatus === 'Completed' ? s : undefined;
    });
    expect(gate.output).toMatchObject({ outcome: 'withdrawn' });

    // Its approval slot was released: the next run of the pipeline is asked for approval.
    const next = await h.start(name);
    expect(stepStatuses(await atApproval(next))).toEqual(STEPS_AT_APPROVAL);
  });

  it('a rollback while a run waits for approval: the approved run stops as superseded at deploy, production stays', async () => {
    const name = 'e2e-rollback-wait';
    const alpha = (a: number) =>
      testPipeline(name, {
        training: { ...(testPipeline(name).training as Json), hyperparameters: { alpha: a } },
      });
    for (const a of [1, 1.05]) {
      await h.put(alpha(a));
      const id = await h.start(name);
      await atApproval(id);
      await h.decide(id, 'approve');
      expect((await h.finished(id)).status).toBe('succeeded');
    }
    await h.put(alpha(1.1));
    const waiting = await h.start(name);
    await atApproval(waiting);
    const back = await h.api('POST', `/api/models/${name}/rollback`, {
      reason: 'v2 misbehaves in production',
    });
    expect(back.status).toBe(200);
    expect(await back.json()).toMatchObject({ from: 2, to: 1 });

    await h.decide(waiting, 'approve');
    const run = await h.finished(waiting);
    expect(run).toMatchObject({ status: 'stopped', stopReason: 'superseded' });
    expect(run.reason).toMatch(
      /^production of e2e-rollback-wait moved to version 1 after this run was evaluated against version 2; nothing was deployed/,
    );
    expect(await productionMoves(name)).toEqual([1, 2, 1]);
  });

  it('five concurrent runs of one pipeline: one is asked for approval and deploys, the others stop as superseded before anyone is asked', async () => {
    const name = 'e2e-five';
    await h.put(testPipeline(name));
    const ids = await Promise.all([1, 2, 3, 4, 5].map(() => h.start(name)));
    const settled: RunView[] = await Promise.all(
      ids.map((id) =>
        h.waitFor(id, 'approval or an ending', (r) => r.status !== 'queued' && r.status !== 'running'),
      ),
    );
    const waiting = settled.filter((r) => r.status === 'waiting_for_approval');
    const stopped = settled.filter((r) => r.status === 'stopped');
    expect(waiting).toHaveLength(1);
    expect(stopped).toHaveLength(4);
    const winner = waiting[0]!.id;
    for (const r of stopped) {
      expect(r.stopReason).toBe('superseded');
      expect(r.reason).toBe(
        `run ${winner} of this pipeline is awaiting approval or deploying; a pipeline asks for one approval at a time. Start a new run when it has ended.`,
      );
      expect(r.steps.find((s) => s.name === 'approve')?.status).toBe('skipped');
      // Nobody was asked to approve it.
      expect((await h.messages(r.id)).filter((m) => m.kind === 'request')).toEqual([]);
    }
    await h.decide(winner, 'approve');
    const done = await h.finished(winner);
    expect(done.status).toBe('succeeded');
    expect(await productionMoves(name)).toEqual([1]);
    // The old failure: 'alias "production" of "…" points at version 2, not version 1' after approval.
    for (const id of ids) expect((await h.run(id)).reason ?? '').not.toMatch(/ points at /);
    expect((await h.messages(winner)).filter((m) => m.kind === 'request').map((m) => m.to)).toContain(
      REVIEWER,
    );
  });
});
