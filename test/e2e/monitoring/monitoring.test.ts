/**
 * Live-traffic monitoring through devhost, driven over HTTP as users would: a model deployed
 * `direct`, a stream of shifted predict traffic (more education, age and experience than anyone in
 * the training data), and the monitoring timer (run through devhost's admin API, as Core Tools
 * runs a timer) yields a drift finding with prediction drift against the version's holdout
 * predictions, and exactly one retraining proposal: the reviewers are told with signed links, and
 * the proposal is on GET /monitoring. The next window's finding is inside the cool-down and yields
 * none. The signed link shows the proposal (GET changes nothing); accepting it (POST) starts a run
 * on the pipeline's current data source, once. Needs `dist/`.
 */
import type { PipelineHarness, RunView } from '../pipeline/harness';
import { REVIEWER, startPipelineHarness } from '../pipeline/harness';
import { approvedRun, rolloutPipeline, sendTraffic, stopAllTraffic } from '../rollout/traffic';

jest.setTimeout(600_000);

interface MonitoringView {
  version: number | null;
  window: { from: string; to: string };
  samples: { requests: number; rows: number };
  traffic: { requests: number; errors: number };
  featureDrift: { status: string; driftedColumns: string[] };
  predictionDrift: { psi: number | null; reason?: string };
  finding: {
    drifted: boolean;
    reasons: string[];
    proposal?: { id: string } | { skipped: string; detail: string };
  };
  proposals: {
    id: string;
    state: string;
    notified: number;
    evidence: { version: number | null };
    decision?: { runId?: string };
  }[];
}

/** A wages row moved well outside the training data: 8 more years of education, 20 of age, 15 of experience. */
function shifted(row: Record<string, unknown>): Record<string, unknown> {
  return {
    ...row,
    education: Math.min(25, Number(row.education) + 8),
    age: Math.min(80, Number(row.age) + 20),
    experience: Math.min(70, Number(row.experience) + 15),
  };
}

describe('live-traffic monitoring through devhost', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startPipelineHarness({
      env: {
        MONITORING_SAMPLE_FLUSH_MS: '300',
        MONITORING_SETTINGS_TTL_MS: '200',
        TRAFFIC_FLUSH_MS: '300',
      },
    });
  });
  afterEach(stopAllTraffic);
  afterAll(async () => {
    await h?.stop();
  });

  async function monitoring(name: string): Promise<MonitoringView | undefined> {
    const res = await h.api('GET', `/api/models/${name}/monitoring`);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET monitoring answered ${res.status}`);
    return (await res.json()) as MonitoringView;
  }

  /** Runs the monitoring timer once through devhost's admin API (as `func` does) until `test` holds. */
  function timerUntil(name: string, what: string, test: (m: MonitoringView) => boolean) {
    return h.until(
      what,
      async () => {
        const run = await h.api('POST', '/admin/functions/monitorModels', {});
        if (run.status !== 202) throw new Error(`admin run answered ${run.status}`);
        await new Promise((r) => setTimeout(r, 1000));
        const m = await monitoring(name);
        return m && test(m) ? m : undefined;
      },
      200_000,
    );
  }

  it('shifted live traffic yields a drift finding and one proposal; accepting it starts a run on the current data', async () => {
    const name = 'e2e-monitoring';
    await h.put(
      rolloutPipeline(name, {
        monitoring: {
          sampleRate: 1,
          windowMinutes: 1,
          policy: { minSamples: 40, featureDrift: true, maxPredictionPsi: 0.25 },
          proposals: { coolDownHours: 24, maxPerWindow: 2, budgetWindowHours: 168, linkHours: 1 },
        },
      }),
    );
    const first = await approvedRun(h, name);
    const deployed = await h.finished(first);
    expect(deployed.status).toBe('succeeded');
    expect(deployed.deployment).toMatchObject({ modelName: name, version: 1 });

    const traffic = sendTraffic(h, name, 2, shifted);
    // The first window with the shifted traffic in it is a finding, and proposes.
    const found = await timerUntil(name, 'a drift finding with a proposal', (m) =>
      Boolean(m.finding.proposal && 'id' in m.finding.proposal),
    );
    expect(found.version).toBe(1);
    expect(found.finding.drifted).toBe(true);
    expect(found.samples.rows).toBeGreaterThanOrEqual(40);
    expect(found.traffic.requests).toBeGreaterThan(0);
    expect(found.featureDrift.status).toBe('drifted');
    expect(found.featureDrift.driftedColumns).toEqual(expect.arrayContaining(['education', 'age']));
    // Deployed `direct`, yet prediction drift is judged against the version's holdout predictions.
    expect(found.predictionDrift.psi).toEqual(expect.any(Number));
    expect(found.predictionDrift.psi!).toBeGreaterThan(0.25);
    expect(found.finding.reasons.join('\n')).toMatch(/feature drift/);
    const proposalId = (found.finding.proposal as { id: string }).id;

    // The next window drifts too, inside the cool-down: a finding, no proposal, and it says why.
    const next = await timerUntil(
      name,
      'the next window',
      (m) => m.window.to > found.window.to && m.samples.rows > 0,
    );
    await traffic.stop();
    expect(traffic.answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(next.finding.drifted).toBe(true);
    expect(next.finding.proposal).toMatchObject({ skipped: 'cool_down' });

    // Exactly one proposal, on the monitoring document, and each reviewer told once with a link.
    const view = (await monitoring(name))!;
    expect(view.proposals.map((p) => [p.id, p.state, p.notified])).toEqual([[proposalId, 'open', 2]]);
    // The outbox files a proposal's messages under its run id `proposal:<model>`, made blob-safe.
    const messages = await h.messages(`proposal_${name}`);
    expect(messages.map((m) => m.to).sort()).toEqual(['lead@example.com', REVIEWER].sort());
    const link = messages.find((m) => m.to === REVIEWER)!.link!;
    expect(link).toContain('/api/proposals/');

    // GET shows the proposal and changes nothing (mail scanners prefetch links).
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(new RegExp(`Retrain ${name}\\?`));
    const json = await fetch(link, { headers: { accept: 'application/json' } });
    expect(((await json.json()) as { state: string }).state).toBe('open');

    // POST accepts it: a run starts on the pipeline's current data source (the source of the run
    // that trained production), and a second decision is refused.
    const accept = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ decision: 'accept', reason: 'drift is real' }),
    });
    const accepted = (await accept.json()) as { state: string; decision: { runId: string; by: string } };
    expect(accept.status).toBe(200);
    expect(accepted.state).toBe('accepted');
    expect(accepted.decision.by).toBe(REVIEWER);
    const retrain = await h.until('the proposed run', async () => {
      const res = await h.api('GET', `/api/runs/${accepted.decision.runId}`);
      return res.status === 200 ? ((await res.json()) as RunView) : undefined;
    });
    expect(retrain.pipeline).toBe(name);
    expect(retrain.source).toEqual(deployed.source);
    const progressed = await h.waitFor(accepted.decision.runId, 'ingest to finish', (r) =>
      r.steps.some((s) => s.name === 'ingest' && s.status === 'succeeded'),
    );
    expect(progressed.status).not.toBe('failed');

    const again = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ decision: 'dismiss' }),
    });
    expect(again.status).toBe(409);
    const after = (await monitoring(name))!;
    expect(after.proposals).toHaveLength(1);
    expect(after.proposals[0]).toMatchObject({
      state: 'accepted',
      decision: { runId: accepted.decision.runId },
    });
  });
});
