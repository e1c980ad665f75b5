/**
 * SIGKILL of the whole devhost process group (devhost, Azurite, workers) during a canary step,
 * then a restart on the same data folder and ports: the rollout resumes in the step it was in,
 * completes, and production moves once. Needs `dist/`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PipelineHarness } from '../pipeline/harness';
import { freePorts, startPipelineHarness } from '../pipeline/harness';
import {
  FAST_ROLLOUT_ENV,
  approvedRun,
  putCandidate,
  sendTraffic,
  stopAllTraffic,
  withProduction,
} from './traffic';

jest.setTimeout(600_000);

describe('devhost killed during a canary step', () => {
  let h: PipelineHarness;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-rollout-crash-'));
  beforeAll(async () => {
    h = await startPipelineHarness({
      dataDir,
      ports: await freePorts(),
      env: FAST_ROLLOUT_ENV,
      detached: true,
    });
  });
  afterEach(stopAllTraffic);
  afterAll(async () => {
    await h?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('resumes in its step after the restart, completes, and moves production once', async () => {
    const name = 'e2e-canary-crash';
    await withProduction(h, name);

    await putCandidate(h, name, {
      strategy: 'canary',
      // A first step long enough to be killed in.
      steps: [
        { percent: 30, minRequests: 20, minSeconds: 8 },
        { percent: 100, minRequests: 20, minSeconds: 2 },
      ],
      // A restarted host's first scores are slow (cold sessions on a busy box), and a good
      // candidate's first hundred live rows can drift from its holdout by chance: neither is what
      // this tests (canary.test.ts tests the drift guard), so both limits are wide.
      guards: { maxPredictionPsi: 2, maxLatencyP99Ms: 5_000, minSamples: 20 },
      checkEverySeconds: 1,
    });
    const before = sendTraffic(h, name, 2);
    const id = await approvedRun(h, name);
    await h.waitFor(
      id,
      'the first canary step',
      (r) => (r.rollout as { step?: number } | undefined)?.step === 0,
    );
    await before.stop();

    await h.crashAndRestart();

    const after = sendTraffic(h, name, 2);
    const done = await h.finished(id, 240_000);
    await after.stop();
    expect({ status: done.status, reason: done.reason }).toEqual({ status: 'succeeded', reason: undefined });
    const rollout = done.rollout as { outcome: string; steps: { step: number; outcome?: string }[] };
    expect(rollout.outcome).toBe('completed');
    // The step it was killed in is recorded once, and passed after the restart.
    expect(rollout.steps.map((s) => [s.step, s.outcome])).toEqual([
      [0, 'passed'],
      [1, 'completed'],
    ]);
    const model = await h.model(name);
    expect(model?.aliases.production?.version).toBe(2);
    expect(model?.aliasHistory.filter((m) => m.alias === 'production').map((m) => m.to)).toEqual([1, 2]);
    expect(after.answers.filter((a) => a.status !== 200 && a.status !== 0)).toEqual([]);
    expect((await h.ended(id)).runtimeStatus).toBe('Completed');
  });
});
