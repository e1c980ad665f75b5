/**
 * SIGKILL of devhost in the middle of a run, then a restart on the same data folder and ports: the
 * run still completes, with exactly one deployment and one move of the production alias. Needs
 * `dist/`.
 *
 * devhost's Cosmos emulator answers a write only once it is on disk (as Cosmos DB is durable on
 * acknowledgement), so the tests kill as soon as the state they want is visible.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PipelineHarness } from './harness';
import { freePorts, startPipelineHarness, testPipeline, WAGE_FEATURES } from './harness';

jest.setTimeout(300_000);

describe('devhost killed mid-run', () => {
  let h: PipelineHarness;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-crash-'));
  beforeAll(async () => {
    h = await startPipelineHarness({ dataDir, ports: await freePorts() });
  });
  afterAll(async () => {
    await h?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function expectOneDeployment(id: string, model: string): Promise<void> {
    const done = await h.finished(id);
    expect(done.status).toBe('succeeded');
    expect(done.deployment).toMatchObject({ modelName: model, version: 1 });
    const m = await h.model(model);
    expect(m?.latestVersion).toBe(1);
    expect(m?.aliases.production?.version).toBe(1);
    expect(m?.aliasHistory.filter((a) => a.alias === 'production')).toHaveLength(1);
  }

  it('during training: the job whose worker died is trained again, and the run completes', async () => {
    await h.put(
      testPipeline('e2e-crash-train', {
        training: {
          algorithm: 'gradient_boosting',
          target: 'wage',
          features: WAGE_FEATURES,
          hyperparameters: { rounds: 3000, learningRate: 0.005, maxDepth: 8, earlyStoppingRounds: 0 },
          timeLimitSeconds: 300,
        },
        evaluation: { primaryMetric: 'r2', minRows: 50 },
      }),
    );
    const id = await h.start('e2e-crash-train');
    const training = await h.waitFor(id, 'the training job', (r) => {
      const train = r.steps.find((s) => s.name === 'train');
      return train?.status === 'running' && typeof train.outputs?.jobId === 'string';
    });
    const jobId = training.steps.find((s) => s.name === 'train')!.outputs!.jobId as string;
    const worker = await h.until('the worker to run', async () => {
      const blob = h.blobs.getContainerClient('jobs').getBlobClient(`${jobId}/status.json`);
      const s = JSON.parse((await blob.downloadToBuffer()).toString('utf8')) as {
        state: string;
        pid?: number;
      };
      return s.state === 'running' && s.pid ? s.pid : undefined;
    });
    // Killed while the job trains.
    // The whole machine goes: devhost and the training process with it.
    await h.crashAndRestart(() => {
      try {
        process.kill(worker, 'SIGKILL');
      } catch {
        // Already gone: it could not reach storage once Azurite died.
      }
    });

    const waiting = await h.waitFor(
      id,
      'approval after the restart',
      (r) => r.status === 'waiting_for_approval',
    );
    expect(waiting.steps.find((s) => s.name === 'train')?.outputs).toMatchObject({ attempt: 2 });
    await h.decide(id, 'approve', 'retrained after the host died');
    await expectOneDeployment(id, 'e2e-crash-train');
  });

  it('during the approval wait: the decision after the restart deploys once', async () => {
    await h.put(testPipeline('e2e-crash-approve'));
    const id = await h.start('e2e-crash-approve');
    await h.waitFor(id, 'approval', (r) => r.status === 'waiting_for_approval');
    const link = await h.link(id);

    await h.crashAndRestart();

    // The link from before the crash still works: same signing key, same approval record.
    expect((await fetch(link)).status).toBe(200);
    await h.decide(id, 'approve', 'approved after the host came back');
    await expectOneDeployment(id, 'e2e-crash-approve');
    expect((await h.ended(id)).runtimeStatus).toBe('Completed');
  });
});
