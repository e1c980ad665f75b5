/**
 * The rollout activities on the emulators (Azurite, the Cosmos emulator) with the app's own
 * services: each runs twice with the same input and leaves the same external state (DESIGN.md,
 * "Activities run at least once"), and the traffic stats predict records in batches are what the
 * guard check sums.
 */
import { randomBytes } from 'node:crypto';
import { checkRolloutGuards } from '../../../activities/checkRolloutGuards';
import { endRollout } from '../../../activities/endRollout';
import { setRolloutStep } from '../../../activities/setRolloutStep';
import { startRollout } from '../../../activities/startRollout';
import { newApprovalRecord } from '../../../lib/approval/record';
import { loadConfig } from '../../../lib/config';
import {
  checkRolloutGuardsActivity,
  endRolloutActivity,
  rolloutGuardsSchema,
  setRolloutStepActivity,
  startRolloutActivity,
} from '../../../lib/contracts/rollout';
import { requestControl } from '../../../lib/rollout/store';
import { TrafficRecorder } from '../../../lib/rollout/traffic';
import { newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import { sampleApprovalInput } from '../../support/approvalSample';
import { seedProductionAndCandidate } from '../../support/rolloutSeed';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { startAzuriteBlob, startCosmos } from '../../support/emulators';

jest.setTimeout(120_000);

const MODEL = 'rollout-it';
const RUN = 'run-rollout-it';
const APPROVAL = `${RUN}:approval`;
const ROLLOUT = `${RUN}:rollout`;
const AT = '2026-03-01T09:00:00.000Z';
const digest = (c: string) => c.repeat(64);

describe('rollout activities (services from createServices on the emulators)', () => {
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
    // Version 1 is production; version 2 the approved candidate.
    const candidate = await seedProductionAndCandidate(services.registry, MODEL);
    const record = newApprovalRecord(
      APPROVAL,
      sampleApprovalInput({
        runId: RUN,
        pipeline: MODEL,
        candidate,
      }),
      new Date(AT),
    );
    await services.approvals.createRecord({ ...record, status: 'approved' });
    await services.runs.create(
      newRunDocument({
        id: RUN,
        pipeline: MODEL,
        pipelineVersion: 1,
        instanceId: RUN,
        trigger: { kind: 'http', by: 'requester@example.com' },
        source: { kind: 'blob', uri: 'https://example/datasets/wages.csv' },
        at: AT,
      }),
    );
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  const ref = { modelName: MODEL, rolloutId: ROLLOUT };
  const run = { runId: RUN, pipeline: MODEL };
  const guards = rolloutGuardsSchema.parse({ minSamples: 10 });

  it('startRollout: twice is one rollout document; a second rollout of the model is refused', async () => {
    const input = startRolloutActivity.input.parse({
      ...ref,
      ...run,
      approvalId: APPROVAL,
      candidate: { modelName: MODEL, modelVersion: 2, modelDigest: digest('b'), datasetDigest: digest('d') },
      expectedProduction: 1,
      strategy: 'canary',
      steps: [{ percent: 10 }, { percent: 100 }],
      agreementTolerance: 0.1,
      at: AT,
    });
    const first = await startRollout(services)(input);
    const doc = await services.rollouts.get(MODEL);
    const second = await startRollout(services)(input);
    expect(second).toEqual(first);
    expect(await services.rollouts.get(MODEL)).toEqual(doc);
    expect(doc).toMatchObject({ state: 'active', step: -1, percent: 0, candidate: { version: 2 } });

    await expect(startRollout(services)({ ...input, rolloutId: 'other:rollout' })).rejects.toMatchObject({
      code: 'rollout_in_progress',
    });
  });

  it('setRolloutStep: twice sets the step once and records it once on the run', async () => {
    const input = setRolloutStepActivity.input.parse({
      ...ref,
      ...run,
      strategy: 'canary',
      step: 0,
      percent: 10,
      state: 'active',
      at: AT,
    });
    expect(await setRolloutStep(services)(input)).toEqual({ updated: true });
    const doc = await services.rollouts.get(MODEL);
    const runDoc = await services.runs.get(MODEL, RUN);
    expect(await setRolloutStep(services)(input)).toEqual({ updated: false });
    expect(await services.rollouts.get(MODEL)).toEqual(doc);
    expect((await services.runs.get(MODEL, RUN))?.rollout).toEqual(runDoc?.rollout);
    expect(runDoc?.rollout).toMatchObject({ step: 0, percent: 10, steps: [{ step: 0, percent: 10 }] });
  });

  it('checkRolloutGuards: twice gives the same figures from the batched traffic records', async () => {
    const writes: number[] = [];
    const recorder = new TrafficRecorder({
      write: async (records) => {
        writes.push(records.length);
        await services.traffic.write(records);
      },
      flushEveryMs: 60_000,
      flushEveryRequests: 25,
    });
    const sample = {
      modelName: MODEL,
      version: 2,
      variant: 'candidate' as const,
      rolloutId: ROLLOUT,
      step: 0,
    };
    for (let i = 0; i < 40; i++)
      recorder.record({ ...sample, rows: 1, ...(i % 10 === 0 ? { error: true } : { latencyMs: 3 }) });
    for (let i = 0; i < 10; i++)
      recorder.record({ ...sample, variant: 'production', version: 1, rows: 1, latencyMs: 2 });
    await recorder.close();
    // 50 requests, two writes (at the 25th request, and the rest at close): never one per request.
    expect(writes).toEqual([1, 2]);

    const input = checkRolloutGuardsActivity.input.parse({ ...ref, strategy: 'canary', step: 0, guards });
    const first = await checkRolloutGuards(services)(input);
    expect(await checkRolloutGuards(services)(input)).toEqual(first);
    expect(first.figures).toMatchObject({
      requests: 40,
      errors: 4,
      errorRate: 0.1,
      latencyP99Ms: 3,
      productionRequests: 10,
    });
    expect(first.breaches.map((b) => b.guard)).toEqual(['maxErrorRate']);
  });

  it('an operator request is numbered on the rollout document and read back by the guard check', async () => {
    const stored = await requestControl(
      services.rollouts,
      MODEL,
      { action: 'pause', by: 'ops@example.com' },
      AT,
    );
    expect(stored).toMatchObject({ rolloutId: ROLLOUT, control: { action: 'pause', seq: 1 } });
    const check = await checkRolloutGuards(services)(
      checkRolloutGuardsActivity.input.parse({ ...ref, strategy: 'canary', step: 0, guards }),
    );
    expect(check.control).toMatchObject({ action: 'pause', seq: 1, by: 'ops@example.com' });
  });

  it('endRollout: twice ends it once and tells the reviewers once', async () => {
    const input = endRolloutActivity.input.parse({
      ...ref,
      ...run,
      approvalId: APPROVAL,
      strategy: 'canary',
      outcome: 'rolled_back',
      reason: 'guard breached: error rate 10.0 %',
      step: 0,
      at: AT,
    });
    const first = await endRollout({
      ...services,
      notifier: async () => (await services.approval()).notifier,
    })(input);
    const doc = await services.rollouts.get(MODEL);
    const runDoc = await services.runs.get(MODEL, RUN);
    const second = await endRollout({
      ...services,
      notifier: async () => (await services.approval()).notifier,
    })(input);
    expect(first).toEqual({ ended: true, notified: 3 });
    expect(second).toEqual({ ended: false, notified: 0 });
    expect(await services.rollouts.get(MODEL)).toEqual(doc);
    expect((await services.runs.get(MODEL, RUN))?.rollout).toEqual(runDoc?.rollout);
    expect(doc).toMatchObject({ state: 'rolled_back', percent: 0 });
    expect(runDoc?.rollout).toMatchObject({
      outcome: 'rolled_back',
      steps: [{ step: 0, outcome: 'rolled_back' }],
    });
    // No longer live: operators have nothing to act on, and the candidate is not served.
    expect(
      await requestControl(services.rollouts, MODEL, { action: 'abort', by: 'ops' }, AT),
    ).toBeUndefined();
    // A later end with another outcome (the orchestration aborting after an end failed part-way)
    // changes nothing: the first outcome stands everywhere, with one audit entry.
    const contradicting = await endRollout({
      ...services,
      notifier: async () => (await services.approval()).notifier,
    })({ ...input, outcome: 'aborted', reason: 'the rollout failed: notifier down' });
    expect(contradicting).toEqual({ ended: false, notified: 0 });
    expect(await services.rollouts.get(MODEL)).toEqual(doc);
    expect((await services.runs.get(MODEL, RUN))?.rollout).toEqual(runDoc?.rollout);
    const entries = (await services.audit.page({ limit: 100 })).entries.filter(
      (e) => e.kind === 'rollout.ended' && e.data.rolloutId === ROLLOUT,
    );
    expect(entries.map((e) => e.data.outcome)).toEqual(['rolled_back']);
  });
});
