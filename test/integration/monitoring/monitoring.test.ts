/**
 * Live-traffic monitoring on the emulators (Azurite, the Cosmos emulator) with the app's own
 * services: predict requests sampled in batches to Blob, a window of shifted traffic drifts against
 * the production model's training data and yields one proposal (reviewers told through the outbox
 * with signed links); a second finding inside the cool-down yields none; labels join to sampled
 * predictions and give a live metric with a CI; a proposal is decided once and accepting starts a run.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { randomBytes } from 'node:crypto';
import { createFeedbackHandler } from '../../../functions/feedback';
import { createGetMonitoringHandler } from '../../../functions/monitoring';
import { createProposalDecisionHandler, createProposalPageHandler } from '../../../functions/proposal';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../../lib/config';
import { encodeColumnar } from '../../../lib/data/reading/columnar';
import type { Column, Table } from '../../../lib/data/table';
import { emptyIssues } from '../../../lib/data/table';
import { acceptFeedback } from '../../../lib/monitoring/feedback';
import type { DecideDeps } from '../../../lib/monitoring/proposals';
import { PROPOSAL_RUN_PREFIX, decideProposal, verifyProposalToken } from '../../../lib/monitoring/proposals';
import { newApprovalRecord } from '../../../lib/approval/record';
import { submitDecision } from '../../../lib/approval/service';
import { signApprovalToken } from '../../../lib/approval/token';
import { TransientError } from '../../../lib/errors';
import type { RunStore } from '../../../lib/runs/store';
import type { MonitorDeps } from '../../../lib/monitoring/run';
import { lastWindow, monitorAll, monitorPipeline } from '../../../lib/monitoring/run';
import { PredictionSampler } from '../../../lib/monitoring/sampler';
import { readOutbox } from '../../../lib/notify';
import type { PipelineDefinition } from '../../../lib/pipelines/definition';
import { pipelineDefinitionSchema } from '../../../lib/pipelines/definition';
import {
  DATASET_COLUMNAR_BYTES_TAG,
  DATASET_COLUMNAR_SHA256_TAG,
  DATASET_COLUMNAR_URI_TAG,
} from '../../../lib/contracts/pipeline';
import { PRODUCTION_ALIAS } from '../../../lib/registry/records';
import { monitoredReference } from '../../../lib/serving/reference';
import { TRAFFIC_TTL_SECONDS, TrafficRecorder, TrafficStore } from '../../../lib/rollout/traffic';
import resources from '../../../lib/resources.json';
import { newRunDocument } from '../../../lib/runs/document';
import type { Services } from '../../../lib/services';
import { createServices } from '../../../lib/services';
import type { PipelineRunInput } from '../../../lib/contracts/pipeline';
import type { BlobEmulator, CosmosEmulator } from '../../support/emulators';
import { startAzuriteBlob, startCosmos } from '../../support/emulators';

jest.setTimeout(180_000);

const MODEL = 'wages';
const HOUR = 3_600_000;
const T0 = Date.parse('2026-03-02T10:00:00.000Z');

const wagesJson = JSON.parse(
  readFileSync(path.resolve(__dirname, '../../../examples/pipelines/wages.json'), 'utf8'),
) as Record<string, unknown>;

/** A seeded generator (tests must not depend on Math.random). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Row = Record<string, number | string>;
function wagesRow(r: () => number, shift: number): Row {
  const education = Math.min(25, Math.round(8 + r() * 10 + shift));
  const experience = Math.min(70, Math.round(r() * 30 + shift * 3));
  return {
    education,
    south: r() < 0.3 ? 1 : 0,
    gender: r() < 0.5 ? 'female' : 'male',
    experience,
    union: r() < 0.2 ? 1 : 0,
    age: Math.min(80, education + experience + 6),
    race: r() < 0.8 ? 'white' : 'other',
    occupation: ['clerical', 'management', 'other', 'professional', 'sales', 'service'][Math.floor(r() * 6)]!,
    sector: ['construction', 'manufacturing', 'other'][Math.floor(r() * 3)]!,
    married: r() < 0.6 ? 1 : 0,
  };
}

function tableOf(rows: Row[], wage: number[]): Table {
  const names = Object.keys(rows[0]!);
  const columns: Column[] = names.map((name) => {
    if (typeof rows[0]![name] === 'string') {
      const dictionary = [...new Set(rows.map((x) => String(x[name])))].sort();
      return {
        name,
        type: 'category',
        dictionary,
        codes: Int32Array.from(rows.map((x) => dictionary.indexOf(String(x[name])))),
        issues: emptyIssues(),
      };
    }
    return {
      name,
      type: 'integer',
      values: Float64Array.from(rows.map((x) => Number(x[name]))),
      issues: emptyIssues(),
    };
  });
  columns.push({ name: 'wage', type: 'number', values: Float64Array.from(wage), issues: emptyIssues() });
  return { rows: rows.length, columns };
}

describe('live-traffic monitoring (services from createServices on the emulators)', () => {
  let azurite: BlobEmulator;
  let cosmos: CosmosEmulator;
  let services: Services;
  let definition: PipelineDefinition;
  let now = new Date(T0);
  const started: string[] = [];
  const startInputs: PipelineRunInput[] = [];
  const signingKeys = JSON.stringify({ k1: randomBytes(32).toString('base64') });

  const deps = (): MonitorDeps => ({
    artifacts: services.artifacts,
    cosmos: services.cosmos,
    samples: services.monitoring.samples,
    store: services.monitoring.store,
    pipelines: services.pipelines,
    production: (name) => services.registry.resolveAlias(name, PRODUCTION_ALIAS),
    rollout: (name) => services.rollouts.get(name),
    reference: (version, at) => monitoredReference(services, version, at),
    proposals: async () => {
      const a = await services.approval();
      return {
        store: services.monitoring.store,
        keyring: a.keyring,
        notifier: a.notifier,
        publicBaseUrl: a.publicBaseUrl,
      };
    },
  });

  /** `n` requests of one row each, sampled at rate 1 through a sampler writing to the app's sample store. */
  async function traffic(n: number, shift: number, at: number, seed: number): Promise<string[]> {
    let t = at;
    const sampler = new PredictionSampler({
      settingsOf: async () => definition.monitoring,
      write: (m, source, seq, batch) => services.monitoring.samples.write(m, source, seq, batch),
      flushEveryMs: 60_000,
      flushEveryRows: 100,
      settingsTtlMs: 3_600_000,
      now: () => t,
      random: prng(seed),
    });
    sampler.sample({ modelName: MODEL, version: 1, variant: 'production', rows: [], predictions: [] });
    await new Promise((r) => setImmediate(r)); // settings looked up
    const r = prng(seed + 1);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      t = at + i * 1000;
      const row = wagesRow(r, shift);
      ids.push(
        sampler.sample({
          modelName: MODEL,
          version: 1,
          variant: 'production',
          rows: [row],
          predictions: [10 + Number(row.education) / 2],
          latencyMs: 2,
        }),
      );
    }
    await sampler.close();
    return ids;
  }

  /** The app's services on the emulators; `extra` settings on top (e.g. sign-in required). */
  const servicesWith = (extra: Record<string, string>) =>
    createServices(
      loadConfig({
        COSMOS_ENDPOINT: cosmos.endpoint,
        COSMOS_KEY: cosmos.key,
        ARTIFACT_STORAGE_CONNECTION: azurite.connectionString,
        APPROVAL_SIGNING_KEYS: signingKeys,
        NOTIFIER: 'outbox',
        PUBLIC_BASE_URL: 'https://sluice.example',
        ...extra,
      }),
      { now: () => now },
    );

  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzuriteBlob(), startCosmos()]);
    services = await servicesWith({});
    await services.prepare();
    definition = pipelineDefinitionSchema.parse({
      ...wagesJson,
      schedule: undefined,
      monitoring: {
        sampleRate: 1,
        hashFeatures: ['race'],
        dropFeatures: ['married'],
        windowMinutes: 60,
        policy: { minSamples: 100 },
        proposals: { coolDownHours: 24, maxPerWindow: 2, budgetWindowHours: 168 },
      },
    });
    await services.pipelines.put('wages', definition, 'test', new Date(T0 - 2 * HOUR));

    // The training data: 600 rows, its columnar form stored content-addressed as ingestion does.
    const r = prng(7);
    const rows = Array.from({ length: 600 }, () => wagesRow(r, 0));
    const bytes = Buffer.concat(
      encodeColumnar(
        tableOf(
          rows,
          rows.map((x) => 10 + Number(x.education) / 2),
        ),
      ),
    );
    const stored = await services.artifacts.putContentAddressed(resources.blobContainers.datasets, bytes, {
      prefix: 'columnar/sha256',
    });
    const run = newRunDocument({
      id: 'wages-run-1',
      pipeline: 'wages',
      pipelineVersion: 1,
      instanceId: 'wages-run-1',
      trigger: { kind: 'http', by: 'test' },
      source: { kind: 'blob', uri: stored.uri },
      at: new Date(T0 - HOUR).toISOString(),
    });
    await services.runs.create(run);
    const { version } = await services.registry.registerVersion({
      modelName: MODEL,
      modelDigest: 'a'.repeat(64),
      artifactUri: 'https://example/models/a',
      datasetDigest: 'b'.repeat(64),
      metrics: { rmse: 4 },
      trainingSpec: {},
      algorithm: 'ridge',
      runId: 'wages-run-1',
      tags: {
        pipeline: 'wages',
        [DATASET_COLUMNAR_URI_TAG]: stored.uri,
        [DATASET_COLUMNAR_SHA256_TAG]: stored.sha256,
        [DATASET_COLUMNAR_BYTES_TAG]: String(bytes.length),
      },
    });
    await services.registry.moveAlias({
      modelName: MODEL,
      alias: 'production',
      to: version.version,
      by: 'test',
    });
  });
  afterAll(async () => {
    services?.cosmos.client.dispose();
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
  });

  it('the traffic container has time to live on, and traffic records expire after the documented 30 days', async () => {
    const { resource } = await services.cosmos.database.container('traffic').read();
    expect(resource?.defaultTtl).toBe(-1);
    const recorder = new TrafficRecorder({
      write: (records) => new TrafficStore(services.cosmos).write(records),
      flushEveryMs: 60_000,
      flushEveryRequests: 1_000,
    });
    recorder.record({ modelName: 'ttl-model', version: 1, variant: 'production', rows: 1, latencyMs: 2 });
    await recorder.close();
    const [stored] = await services.cosmos.query<{ ttl?: number }>(
      'traffic',
      { query: 'SELECT * FROM c WHERE c.kind = "traffic"' },
      'ttl-model',
    );
    expect(stored?.ttl).toBe(TRAFFIC_TTL_SECONDS);
    expect(TRAFFIC_TTL_SECONDS).toBe(30 * 86_400);
  });

  it('samples in batches: one JSON Lines blob per flush, hashed features hashed and dropped ones left out', async () => {
    const ids = await traffic(250, 0, T0 + 60_000, 1);
    expect(new Set(ids).size).toBe(250);
    const blobs: string[] = [];
    for await (const b of services.artifacts.list(
      resources.blobContainers.reports,
      `monitoring/samples/${MODEL}/`,
    ))
      blobs.push(b.path);
    // 250 rows, flushed every 100 rows (rows arriving during a write wait for the next): a few
    // blobs, never one per request.
    expect(blobs.length).toBeGreaterThanOrEqual(1);
    expect(blobs.length).toBeLessThanOrEqual(3);
    const read = await services.monitoring.samples.read(MODEL, new Date(T0), new Date(T0 + HOUR));
    expect(read).toHaveLength(250);
    expect(read[0]!.rows[0]!.race).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(read[0]!.rows[0]).not.toHaveProperty('married');
    expect(read[0]!.rows[0]!.education).toEqual(expect.any(Number));
  });

  it('a window of unshifted traffic is stable: no finding, no proposal', async () => {
    now = new Date(T0 + HOUR + 5_000);
    const doc = await monitorPipeline(deps(), { name: 'wages', definition }, lastWindow(now, 60), now);
    expect(doc.samples.rows).toBe(250);
    expect(doc.featureDrift.status).toBe('stable');
    expect(doc.featureDrift.columns.find((c) => c.column === 'race')?.status).toBe('skipped');
    expect(doc.finding).toEqual({ drifted: false, reasons: [] });
    expect(await services.monitoring.store.proposals(MODEL)).toEqual([]);
  });

  let token = '';
  it('a window of shifted traffic drifts and yields one proposal, its reviewers told with signed links', async () => {
    await traffic(300, 6, T0 + HOUR + 60_000, 2);
    now = new Date(T0 + 2 * HOUR + 5_000);
    const [doc] = await monitorAll(deps(), now);
    expect(doc!.window).toEqual({
      from: new Date(T0 + HOUR).toISOString(),
      to: new Date(T0 + 2 * HOUR).toISOString(),
    });
    expect(doc!.featureDrift.status).toBe('drifted');
    expect(doc!.featureDrift.driftedColumns).toEqual(expect.arrayContaining(['education', 'experience']));
    expect(doc!.finding.drifted).toBe(true);
    expect(doc!.finding.proposal?.id).toBe(
      `proposal-${new Date(T0 + 2 * HOUR).toISOString().replace(/[-:.]/g, '')}`,
    );
    // Computed once per window: a second tick in the same window does nothing.
    expect(await monitorAll(deps(), new Date(now.getTime() + 60_000))).toEqual([]);
    const proposals = await services.monitoring.store.proposals(MODEL);
    expect(proposals).toHaveLength(1);
    expect(proposals[0]!.state).toBe('open');
    expect(proposals[0]!.notified.map((n) => n.to)).toEqual(['reviewer@example.com', 'lead@example.com']);
    const sent = await readOutbox(services.artifacts.containerClient(resources.blobContainers.outbox));
    const mine = sent.filter((m) => m.approvalId === proposals[0]!.id);
    expect(mine.map((m) => m.to).sort()).toEqual(['lead@example.com', 'reviewer@example.com']);
    expect(mine[0]!.text).toContain('feature drift');
    token = mine.find((m) => m.to === 'reviewer@example.com')!.link!.split('/api/proposals/')[1]!;
    const stored = await services.monitoring.store.get(MODEL);
    expect(stored?.finding.proposal?.id).toBe(proposals[0]!.id);
  });

  it('a second finding inside the cool-down yields no proposal, and says why', async () => {
    await traffic(300, 6, T0 + 2 * HOUR + 60_000, 3);
    now = new Date(T0 + 3 * HOUR + 5_000);
    const [doc] = await monitorAll(deps(), now);
    expect(doc!.finding.drifted).toBe(true);
    expect(doc!.finding.proposal).toEqual({
      skipped: 'cool_down',
      detail: expect.stringContaining('24 h cool-down'),
    });
    expect(await services.monitoring.store.proposals(MODEL)).toHaveLength(1);
  });

  it('feedback joins labels to sampled predictions; the live metric has a bootstrap CI', async () => {
    const ids = await traffic(120, 0, T0 + 3 * HOUR + 60_000, 4);
    const samples = await services.monitoring.samples.read(
      MODEL,
      new Date(T0 + 3 * HOUR),
      new Date(T0 + 4 * HOUR),
    );
    const byId = new Map(samples.map((s) => [s.predictionId, s]));
    const labels = ids.slice(0, 100).map((id, i) => ({
      predictionId: id,
      label: Number(byId.get(id)!.predictions[0]) + (i % 2 === 0 ? 1 : -1),
    }));
    const result = await acceptFeedback(
      services.monitoring,
      MODEL,
      {
        labels: [
          ...labels,
          { predictionId: 'p0-0000000000000000', label: 3 },
          { predictionId: 'nope', label: 1 },
        ],
      },
      now,
    );
    expect(result.accepted).toBe(100);
    expect(result.unmatched.map((u) => u.predictionId)).toEqual(['nope', 'p0-0000000000000000']);
    await expect(acceptFeedback(services.monitoring, MODEL, { labels: [] }, now)).rejects.toMatchObject({
      code: 'invalid_feedback',
    });
    now = new Date(T0 + 4 * HOUR + 5_000);
    const [doc] = await monitorAll(deps(), now);
    expect(doc!.live).toMatchObject({ metric: 'mae', labels: 100, value: 1 });
    expect(doc!.live!.ci.lower).toBeCloseTo(1, 6);
    expect(doc!.live!.ci.upper).toBeCloseTo(1, 6);
  });

  it('a proposal is decided once through its signed link; accepting starts a run on the current data source', async () => {
    const claims = verifyProposalToken((await services.approval()).keyring, token, now);
    expect(claims).toMatchObject({ modelName: MODEL, reviewer: 'reviewer@example.com' });
    const decide = {
      store: services.monitoring.store,
      runs: services.runs,
      artifacts: services.artifacts,
      pipeline: (name: string) => services.pipelines.get(name),
      production: (name: string) => services.registry.resolveAlias(name, PRODUCTION_ALIAS),
      start: async (instanceId: string, input: PipelineRunInput) => {
        started.push(instanceId);
        startInputs.push(input);
      },
    };
    const accepted = await decideProposal(decide, claims, 'accept', 'drift is real', now);
    expect(accepted.state).toBe('accepted');
    expect(started).toEqual([accepted.decision!.runId]);
    const run = await services.runs.find(accepted.decision!.runId!);
    expect(run?.source).toEqual({ kind: 'blob', uri: expect.stringContaining('/columnar/sha256/') });
    // The accepting reviewer requested the retrain (so they may not approve its deployment, see
    // below); the proposal is named in a field of its own.
    expect(run?.trigger).toMatchObject({
      kind: 'http',
      by: 'reviewer@example.com',
      proposal: claims.proposalId,
    });
    expect(startInputs[0]?.requestedBy).toBe('reviewer@example.com');
    await expect(decideProposal(decide, claims, 'dismiss', undefined, now)).rejects.toMatchObject({
      code: 'proposal_decided',
      status: 409,
    });
    expect(started).toHaveLength(1);
  });

  it('over HTTP: the monitoring document, the proposal page (HTML and JSON), feedback problems, a decided proposal is 409', async () => {
    const ctx = () => new InvocationContext({ logHandler: () => undefined });
    const req = (
      method: string,
      url: string,
      params: Record<string, string>,
      body?: unknown,
      accept?: string,
    ) =>
      new HttpRequest({
        method,
        url: `https://sluice.example${url}`,
        params,
        headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}) },
        ...(body !== undefined ? { body: { string: JSON.stringify(body) } } : {}),
      });
    const monitoring = await createGetMonitoringHandler({ store: services.monitoring.store })(
      req('GET', `/api/models/${MODEL}/monitoring`, { name: MODEL }),
      ctx(),
    );
    expect(monitoring.status).toBe(200);
    const json = monitoring.jsonBody as { proposals: { state: string }[]; live: unknown };
    expect(json.proposals.map((p) => p.state)).toEqual(['accepted']);
    expect(json.live).toBeDefined();
    const none = await createGetMonitoringHandler({ store: services.monitoring.store })(
      req('GET', '/api/models/other/monitoring', { name: 'other' }),
      ctx(),
    );
    expect(none.status).toBe(404);

    const pageReq = req('GET', `/api/proposals/${token}`, { token });
    const pageRes = await createProposalPageHandler(services)(pageReq, ctx());
    expect(pageRes.status).toBe(200);
    expect(String(pageRes.body)).toContain('Retrain wages?');
    expect(String(pageRes.body)).toContain('accepted');
    const asJson = await createProposalPageHandler(services)(
      req('GET', `/api/proposals/${token}`, { token }, undefined, 'application/json'),
      ctx(),
    );
    expect(asJson.jsonBody).toMatchObject({ state: 'accepted', reviewer: 'reviewer@example.com' });
    const tampered = `${token.slice(0, -2)}xx`;
    expect(
      (await createProposalPageHandler(services)(req('GET', '/', { token: tampered }), ctx())).status,
    ).toBe(401);
    const again = await createProposalDecisionHandler(services)(
      req('POST', `/api/proposals/${token}`, { token }, { decision: 'dismiss' }),
      ctx(),
    );
    expect(again.status).toBe(409);
    const bad = await createProposalDecisionHandler(services)(
      req('POST', `/api/proposals/${token}`, { token }, { decision: 'maybe' }),
      ctx(),
    );
    expect(bad).toMatchObject({ status: 400, jsonBody: { code: 'invalid_decision' } });

    const feedback = await createFeedbackHandler(services)(
      req('POST', `/api/models/${MODEL}/feedback`, { name: MODEL }, { labels: [{ label: 1 }] }),
      ctx(),
    );
    expect(feedback).toMatchObject({ status: 400, jsonBody: { code: 'invalid_feedback' } });
  });
  /** How functions/proposal.ts decides, with the orchestration start recorded instead of Durable's. */
  const decideDeps = (): DecideDeps => ({
    store: services.monitoring.store,
    runs: services.runs,
    artifacts: services.artifacts,
    pipeline: (name: string) => services.pipelines.get(name),
    production: (name: string) => services.registry.resolveAlias(name, PRODUCTION_ALIAS),
    start: async (instanceId: string, input: PipelineRunInput) => {
      started.push(instanceId);
      startInputs.push(input);
    },
  });

  /** An open proposal for both reviewers, stored as proposeRetrain stores one. */
  async function openProposal(id: string): Promise<void> {
    await services.monitoring.store.createProposal({
      id,
      kind: 'proposal',
      modelName: MODEL,
      pipeline: 'wages',
      state: 'open',
      createdAt: now.toISOString(),
      evidence: {
        window: { from: new Date(T0 + HOUR).toISOString(), to: new Date(T0 + 2 * HOUR).toISOString() },
        version: 1,
        reasons: ['feature drift in education'],
        driftedColumns: ['education'],
        predictionPsi: null,
        samples: 300,
      },
      reviewers: ['reviewer@example.com', 'lead@example.com'],
      notified: [],
    });
  }

  async function proposalToken(id: string, reviewer: string): Promise<string> {
    return signApprovalToken((await services.approval()).keyring, {
      runId: `${PROPOSAL_RUN_PREFIX}${MODEL}`,
      approvalId: id,
      reviewer,
      expiresAt: new Date(now.getTime() + 24 * HOUR),
    });
  }

  /** A proposal POST, signed in (App Service Authentication's header) as `signedInAs` when given. */
  function post(token: string, body: unknown, signedInAs?: string): HttpRequest {
    return new HttpRequest({
      method: 'POST',
      url: `https://sluice.example/api/proposals/${token}`,
      params: { token },
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...(signedInAs ? { 'x-ms-client-principal-name': signedInAs } : {}),
      },
      body: { string: JSON.stringify(body) },
    });
  }
  const invocation = () => new InvocationContext({ logHandler: () => undefined });

  it('the reviewer who accepted a proposal cannot approve the deployment of the retrain it started; another reviewer can', async () => {
    // The approval gate records the run's requestedBy as the approval's requester (trainingPipeline).
    const input = startInputs[0]!;
    const a = await services.approval();
    const approvalId = `${input.runId}:approval`;
    const candidate = {
      modelName: MODEL,
      modelVersion: 1,
      modelDigest: 'a'.repeat(64),
      datasetDigest: 'b'.repeat(64),
    };
    await a.store.createRecord(
      newApprovalRecord(
        approvalId,
        {
          runId: input.runId,
          pipeline: input.pipeline,
          requestedBy: input.requestedBy,
          candidate,
          policy: {
            reviewers: ['reviewer@example.com', 'lead@example.com'],
            requiredApprovals: 1,
            timeout: '72h',
            onTimeout: { action: 'reject' },
          },
          evidence: {},
        },
        now,
      ),
    );
    const link = (reviewer: string) =>
      signApprovalToken(a.keyring, {
        runId: input.runId,
        approvalId,
        reviewer,
        expiresAt: new Date(now.getTime() + HOUR),
      });
    const approve = {
      decision: 'approve',
      modelDigest: candidate.modelDigest,
      datasetDigest: candidate.datasetDigest,
    };
    await expect(submitDecision(a, link('reviewer@example.com'), approve)).rejects.toMatchObject({
      code: 'requester_cannot_approve',
      status: 403,
    });
    const { decision } = await submitDecision(a, link('lead@example.com'), approve);
    expect(decision).toMatchObject({ reviewer: 'lead@example.com', decision: 'approve' });
    const state = await a.store.readState(input.runId, approvalId);
    expect(state?.decisions.map((d) => d.reviewer)).toEqual(['lead@example.com']);
  });

  it('an accept whose run could not be created is completed by the same reviewer accepting again', async () => {
    const id = 'proposal-launch-fails';
    await openProposal(id);
    const claims = { modelName: MODEL, proposalId: id, reviewer: 'reviewer@example.com' };
    // Cosmos refuses the run document once, after the proposal was stored as accepted.
    const failing: RunStore = Object.assign(Object.create(services.runs) as RunStore, {
      create: async () => {
        throw new TransientError('cosmos_unavailable', 'Cosmos is unavailable (injected).');
      },
    });
    const before = started.length;
    await expect(
      decideProposal({ ...decideDeps(), runs: failing }, claims, 'accept', undefined, now),
    ).rejects.toMatchObject({ code: 'cosmos_unavailable' });
    const stuck = await services.monitoring.store.proposal(MODEL, id);
    expect(stuck?.state).toBe('accepted');
    const runId = stuck!.decision!.runId!;
    expect(await services.runs.get('wages', runId)).toBeUndefined();
    expect(started).toHaveLength(before);

    // Only the reviewer who accepted may finish it; a dismiss does not undo an accept.
    await expect(
      decideProposal(decideDeps(), { ...claims, reviewer: 'lead@example.com' }, 'accept', undefined, now),
    ).rejects.toMatchObject({ code: 'proposal_decided', status: 409 });
    await expect(decideProposal(decideDeps(), claims, 'dismiss', undefined, now)).rejects.toMatchObject({
      code: 'proposal_decided',
    });
    expect(started).toHaveLength(before);

    const done = await decideProposal(decideDeps(), claims, 'accept', undefined, now);
    expect(done).toMatchObject({ state: 'accepted', decision: { by: 'reviewer@example.com', runId } });
    expect(started.slice(before)).toEqual([runId]);
    const run = await services.runs.get('wages', runId);
    expect(run?.trigger).toMatchObject({ by: 'reviewer@example.com', proposal: id });
    expect(run?.source).toEqual({ kind: 'blob', uri: expect.stringContaining('/columnar/sha256/') });

    // The run exists now: accepting again is the usual 409 and starts nothing more.
    await expect(decideProposal(decideDeps(), claims, 'accept', undefined, now)).rejects.toMatchObject({
      code: 'proposal_decided',
      status: 409,
    });
    expect(started.slice(before)).toEqual([runId]);
  });

  it('with APPROVAL_REQUIRE_SIGNIN a proposal link decides only for its reviewer, signed in', async () => {
    const signin = await servicesWith({ APPROVAL_REQUIRE_SIGNIN: 'true', WEBSITE_AUTH_ENABLED: 'true' });
    const noPlatform = await servicesWith({ APPROVAL_REQUIRE_SIGNIN: 'true' });
    try {
      const id = 'proposal-signin';
      await openProposal(id);
      const token = await proposalToken(id, 'reviewer@example.com');
      const decideAs = createProposalDecisionHandler(signin, () => decideDeps());
      const before = started.length;

      for (const decision of ['accept', 'dismiss']) {
        expect(await decideAs(post(token, { decision }, 'lead@example.com'), invocation())).toMatchObject({
          status: 403,
          jsonBody: { code: 'principal_mismatch' },
        });
      }
      expect(await decideAs(post(token, { decision: 'accept' }), invocation())).toMatchObject({
        status: 401,
        jsonBody: { code: 'signin_required' },
      });
      // Sign-in required but the platform does not authenticate: the header proves nothing.
      expect(
        await createProposalDecisionHandler(noPlatform, () => decideDeps())(
          post(token, { decision: 'accept' }, 'reviewer@example.com'),
          invocation(),
        ),
      ).toMatchObject({ status: 403, jsonBody: { code: 'signin_unavailable' } });
      const untouched = await services.monitoring.store.proposal(MODEL, id);
      expect(untouched?.state).toBe('open');
      expect(untouched?.decision).toBeUndefined();
      expect(started).toHaveLength(before);

      const ok = await decideAs(
        post(token, { decision: 'accept', reason: 'confirmed' }, 'reviewer@example.com'),
        invocation(),
      );
      expect(ok).toMatchObject({
        status: 200,
        jsonBody: { state: 'accepted', decision: { by: 'reviewer@example.com', reason: 'confirmed' } },
      });
      expect(started).toHaveLength(before + 1);
      expect((await services.runs.find(started.at(-1)!))?.trigger.by).toBe('reviewer@example.com');
    } finally {
      signin.cosmos.client.dispose();
      noPlatform.cosmos.client.dispose();
    }
  });

  it('without APPROVAL_REQUIRE_SIGNIN the link alone decides, as before', async () => {
    const id = 'proposal-no-signin';
    await openProposal(id);
    const token = await proposalToken(id, 'reviewer@example.com');
    const res = await createProposalDecisionHandler(services, () => decideDeps())(
      post(token, { decision: 'dismiss', reason: 'seasonal' }),
      invocation(),
    );
    expect(res).toMatchObject({
      status: 200,
      jsonBody: { state: 'dismissed', decision: { by: 'reviewer@example.com', reason: 'seasonal' } },
    });
  });

  it('a reference that cannot be made is remembered in Blob and not scored again every window', async () => {
    // A version whose columnar dataset is gone: scoring its holdout fails (404, not transient).
    const production = (await services.registry.resolveAlias(MODEL, PRODUCTION_ALIAS))!;
    const gone = {
      ...production,
      version: 90,
      modelDigest: 'c'.repeat(64),
      trainingSpec: wagesJson.training as Record<string, unknown>,
      tags: {
        ...production.tags,
        [DATASET_COLUMNAR_URI_TAG]: `${services.artifacts.containerClient(resources.blobContainers.datasets).url}/columnar/sha256/missing`,
        [DATASET_COLUMNAR_SHA256_TAG]: 'e'.repeat(64),
      },
    };
    const at0 = new Date(T0 + 30 * HOUR);
    const first = await monitoredReference(services, gone, at0);
    expect(first.reference).toBeUndefined();
    expect(first.failure).toMatchObject({ failures: 1, backedOff: false });
    expect(first.failure!.reason).toMatch(/404/);
    const record = await services.artifacts.tryGetJson<{ failures: number; retryAfter: string }>({
      container: resources.blobContainers.reports,
      path: `monitoring/references/${MODEL}/v90-${'c'.repeat(16)}.failed.json`,
    });
    expect(record?.value).toMatchObject({
      failures: 1,
      retryAfter: new Date(at0.getTime() + HOUR).toISOString(),
    });

    // The next windows read the record; past the retry time it is scored again and the record
    // replaced under its ETag.
    const later = await monitoredReference(services, gone, new Date(at0.getTime() + 20 * 60_000));
    expect(later.failure).toMatchObject({ failures: 1, backedOff: true });
    const again = await monitoredReference(services, gone, new Date(at0.getTime() + HOUR + 1));
    expect(again.failure).toMatchObject({ failures: 2, backedOff: false });
    const replaced = await services.artifacts.tryGetJson<{ failures: number }>({
      container: resources.blobContainers.reports,
      path: `monitoring/references/${MODEL}/v90-${'c'.repeat(16)}.failed.json`,
    });
    expect(replaced?.value.failures).toBe(2);
  });
});
