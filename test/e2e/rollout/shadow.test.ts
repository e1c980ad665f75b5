/**
 * A shadow rollout through devhost: production answers every request while the candidate scores a
 * copy of the traffic off the request's path; the rollout reports the candidate's agreement with
 * production (live, and on the run when it completes), then moves production. Needs `dist/`.
 */
import type { PipelineHarness } from '../pipeline/harness';
import { startPipelineHarness } from '../pipeline/harness';
import {
  FAST_ROLLOUT_ENV,
  approvedRun,
  putCandidate,
  sendTraffic,
  stopAllTraffic,
  withProduction,
} from './traffic';

jest.setTimeout(600_000);

describe('shadow rollout', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startPipelineHarness({ env: FAST_ROLLOUT_ENV });
  });
  afterEach(stopAllTraffic);
  afterAll(async () => {
    await h?.stop();
  });

  it('answers from production only and reports the candidate agreement', async () => {
    const name = 'e2e-shadow';
    await withProduction(h, name);

    await putCandidate(h, name, {
      strategy: 'shadow',
      steps: [{ percent: 100, minRequests: 40, minSeconds: 4 }],
      guards: { maxPredictionPsi: 0.4, minShadowAgreement: 0.8, minSamples: 20 },
      checkEverySeconds: 1,
    });
    const traffic = sendTraffic(h, name, 2);
    const id = await approvedRun(h, name);

    // While it runs, the rollout endpoint shows the agreement so far.
    const live = await h.until('shadow agreement', async () => {
      const res = await h.api('GET', `/api/models/${name}/rollout`);
      const body = (await res.json()) as {
        strategy: string;
        figures: { compared: number; agreement: number | null };
      };
      return body.figures.compared > 0 ? body : undefined;
    });
    expect(live.strategy).toBe('shadow');
    expect(live.figures.agreement).toBeGreaterThan(0.8);

    const done = await h.finished(id, 240_000);
    await traffic.stop();
    expect(done.status).toBe('succeeded');
    const rollout = done.rollout as {
      strategy: string;
      outcome: string;
      steps: { figures?: { compared: number; agreement: number | null } }[];
    };
    expect(rollout).toMatchObject({ strategy: 'shadow', outcome: 'completed' });
    const figures = rollout.steps[0]!.figures!;
    expect(figures.compared).toBeGreaterThanOrEqual(20);
    expect(figures.agreement).toBeGreaterThan(0.8);

    // Production answered everything: the shadow never served.
    expect(traffic.answers.length).toBeGreaterThan(0);
    expect(traffic.answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(traffic.answers.every((a) => a.variant === 'production')).toBe(true);
    expect((await h.model(name))?.aliases.production?.version).toBe(2);
  });
});
