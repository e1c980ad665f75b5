/**
 * Canary rollouts through devhost, driven over HTTP as users would, with live predict traffic
 * running the whole time: a candidate whose live predictions are shifted from its holdout
 * predictions rolls back on its own (production never changes), a good one completes and moves
 * production once. Every predict answer succeeds and comes from production or the approved
 * candidate. Needs `dist/`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PipelineHarness } from '../pipeline/harness';
import { REVIEWER, startPipelineHarness } from '../pipeline/harness';
import type { Answer } from './traffic';
import {
  FAST_CANARY,
  FAST_ROLLOUT_ENV,
  approvedRun,
  putCandidate,
  rolloutPipeline,
  sendTraffic,
  stopAllTraffic,
  wagesSubset,
  withProduction,
} from './traffic';

jest.setTimeout(600_000);

describe('canary rollout', () => {
  let h: PipelineHarness;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-canary-'));
  beforeAll(async () => {
    h = await startPipelineHarness({ env: FAST_ROLLOUT_ENV });
  });
  afterEach(stopAllTraffic);
  afterAll(async () => {
    await h?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Every answer succeeded, from production (v1, or v2 once promoted) or the approved candidate v2. */
  function expectServedOnlyApproved(answers: Answer[], candidateServedAs: 'candidate' | 'either'): void {
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    for (const a of answers) {
      expect([1, 2]).toContain(a.version);
      if (a.variant === 'candidate') expect(a.version).toBe(2);
      if (candidateServedAs === 'candidate' && a.variant === 'production') expect(a.version).toBe(1);
    }
  }

  it('a candidate with shifted predictions rolls back on its own; production never changes', async () => {
    const name = 'e2e-canary-bad';
    await withProduction(h, name);

    // Trained only on people with 14+ years of education: on the whole population its predictions
    // sit far below those on its own holdout. Lenient evaluation lets it through to people, who approve.
    const base = rolloutPipeline(name);
    const dataset = base.dataset as Record<string, unknown>;
    await h.put({
      ...base,
      dataset: {
        ...dataset,
        quality: { ...(dataset.quality as object), minRows: 100 },
        drift: { enabled: false },
      },
      evaluation: {
        primaryMetric: 'r2',
        minRows: 20,
        comparison: { mode: 'non_inferiority', margin: 5 },
        championCollapse: { action: 'off' },
      },
      deployment: FAST_CANARY,
    });
    const traffic = sendTraffic(h, name);
    const subset = wagesSubset(path.join(tmp, 'educated.csv'), (c) => Number(c[0]) >= 14);
    const id = await approvedRun(h, name, subset);
    const done = await h.finished(id, 240_000);
    await traffic.stop();

    expect(done.status).toBe('stopped');
    expect(done.stopReason).toBe('rollout_rolled_back');
    const rollout = done.rollout as {
      outcome: string;
      breaches: { guard: string; value: number; limit: number }[];
      steps: { step: number; outcome?: string; figures?: { psi: number | null; requests: number } }[];
    };
    expect(rollout.outcome).toBe('rolled_back');
    expect(rollout.breaches.map((b) => b.guard)).toContain('maxPredictionPsi');
    const breach = rollout.breaches.find((b) => b.guard === 'maxPredictionPsi')!;
    expect(breach.value).toBeGreaterThan(breach.limit);
    expect(rollout.steps[0]).toMatchObject({ step: 0, outcome: 'rolled_back' });
    expect(done.reason).toMatch(/PSI/);

    // Production never moved: one production move in the whole history, to version 1.
    const model = await h.model(name);
    expect(model?.aliases.production?.version).toBe(1);
    expect(model?.aliasHistory.filter((m) => m.alias === 'production').map((m) => m.to)).toEqual([1]);

    // The candidate served some of the traffic before the rollback, and only the approved version.
    expectServedOnlyApproved(traffic.answers, 'candidate');
    expect(traffic.answers.some((a) => a.variant === 'candidate')).toBe(true);

    // Once rolled back, production answers everything again.
    const after = sendTraffic(h, name, 1);
    await new Promise((r) => setTimeout(r, 1500));
    await after.stop();
    expect(
      after.answers.slice(-5).every((a) => a.status === 200 && a.variant === 'production' && a.version === 1),
    ).toBe(true);

    // The reviewers were told, with the figures.
    const told = await h.until('the rollback message', async () =>
      (await h.messages(id)).find((m) => m.to === REVIEWER && /rolled back/.test(m.subject)),
    );
    expect(told.text).toMatch(/PSI/);
  });

  it('a good candidate completes, and production moves once, under load', async () => {
    const name = 'e2e-canary-good';
    await withProduction(h, name);

    await putCandidate(h, name, FAST_CANARY);
    const traffic = sendTraffic(h, name);
    const id = await approvedRun(h, name);
    const done = await h.finished(id, 240_000);
    // Keep predicting across the switch to production, then stop.
    await new Promise((r) => setTimeout(r, 1500));
    await traffic.stop();

    expect(done.status).toBe('succeeded');
    expect(done.deployment).toMatchObject({ modelName: name, version: 2, previous: 1 });
    const rollout = done.rollout as { outcome: string; steps: { step: number; outcome?: string }[] };
    expect(rollout.outcome).toBe('completed');
    expect(rollout.steps.map((s) => s.outcome)).toEqual(['passed', 'completed']);

    const model = await h.model(name);
    expect(model?.aliases.production?.version).toBe(2);
    expect(model?.aliasHistory.filter((m) => m.alias === 'production').map((m) => m.to)).toEqual([1, 2]);

    expectServedOnlyApproved(traffic.answers, 'either');
    expect(traffic.answers.some((a) => a.variant === 'candidate')).toBe(true);
    // After the switch production itself is version 2.
    expect(traffic.answers.at(-1)).toMatchObject({ status: 200, version: 2, variant: 'production' });
  });
});
