/**
 * The pipeline end to end through devhost over HTTP: every way a run can end at a gate. The runs
 * start together (one devhost for the file) and each test checks its own. Needs `dist/`.
 */
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PipelineHarness } from './harness';
import {
  DRIFTED_CSV,
  REQUESTER,
  REVIEWER,
  startPipelineHarness,
  WAGES_ROWS,
  STEPS_AT_APPROVAL,
  stepStatuses,
  testPipeline,
} from './harness';

jest.setTimeout(240_000);

describe('trainingPipeline through devhost', () => {
  let h: PipelineHarness;
  const runs: Record<string, string> = {};
  const badCsv = path.join(os.tmpdir(), `sluice-e2e-bad-${process.pid}.csv`);

  beforeAll(async () => {
    h = await startPipelineHarness();
    // Rows that break the contract: a negative wage and an occupation the contract does not list.
    writeFileSync(
      badCsv,
      [
        'education,south,gender,experience,union,wage,age,race,occupation,sector,married',
        ...Array.from({ length: 250 }, (_, i) =>
          i === 7
            ? '12,0,male,10,0,-3,28,white,astronaut,other,1'
            : `${10 + (i % 8)},${i % 2},${i % 3 ? 'male' : 'female'},${i % 30},${i % 2},${(5 + (i % 17)).toFixed(2)},${40 + (i % 20)},white,other,other,${i % 2}`,
        ),
      ].join('\n'),
    );
    await h.put(testPipeline('e2e-happy'));
    await h.put(testPipeline('e2e-contract'));
    await h.put(
      testPipeline('e2e-eval', {
        evaluation: { primaryMetric: 'r2', threshold: 0.99, minRows: 50 },
      }),
    );
    await h.put(testPipeline('e2e-reject'));
    await h.put(
      testPipeline('e2e-timeout', {
        approval: {
          reviewers: [REVIEWER],
          timeout: '3s',
          onTimeout: { action: 'escalate', reviewers: ['oncall@example.com'], timeout: '3s' },
        },
      }),
    );
    const [happy, contract, evaluation, reject, timeout] = await Promise.all([
      h.start('e2e-happy'),
      h.start('e2e-contract', badCsv),
      h.start('e2e-eval'),
      h.start('e2e-reject'),
      h.start('e2e-timeout'),
    ]);
    Object.assign(runs, { happy, contract, evaluation, reject, timeout });
  });
  afterAll(async () => {
    await h?.stop();
    rmSync(badCsv, { force: true });
  });

  it('happy path: trains, waits for a reviewer, deploys what was approved and serves it', async () => {
    const waiting = await h.waitFor(runs.happy!, 'approval', (r) => r.status === 'waiting_for_approval');
    expect(stepStatuses(waiting)).toEqual(STEPS_AT_APPROVAL);
    expect(waiting.steps[0]!.outputs).toMatchObject({ rows: 534, columns: 11 });

    // The reviewer reads the page and presses Approve; the requester's own link cannot approve.
    await h.decide(runs.happy!, 'approve', 'holdout r2 is fine');
    const done = await h.finished(runs.happy!);
    expect(done.status).toBe('succeeded');
    expect(done.steps.every((s) => s.status === 'succeeded')).toBe(true);
    expect(done.approval).toMatchObject({ outcome: 'approved', approvedBy: [REVIEWER] });
    expect(done.deployment).toMatchObject({ modelName: 'e2e-happy', version: 1, moved: true });
    expect(done.metrics).toMatchObject({ evaluation: { primaryMetric: 'r2', passed: true } });
    expect(done.timing.peopleMs).toBeGreaterThan(0);
    expect(done.trigger).toMatchObject({ by: REQUESTER });

    const model = await h.model('e2e-happy');
    expect(model?.aliases.production?.version).toBe(1);
    expect(model?.aliasHistory.filter((m) => m.alias === 'production')).toHaveLength(1);

    const scored = await h.api('POST', '/api/models/e2e-happy/predict', { rows: WAGES_ROWS });
    expect(scored.status).toBe(200);
    const body = (await scored.json()) as { version: number; predictions: number[] };
    expect(body.version).toBe(1);
    expect(body.predictions).toHaveLength(2);
    for (const p of body.predictions) expect(p).toBeGreaterThan(0);

    const listed = (await (await h.api('GET', '/api/runs?pipeline=e2e-happy')).json()) as { id: string }[];
    expect(listed.map((r) => r.id)).toContain(runs.happy);
  });

  it('data that drifted from production is stopped by validation, before training', async () => {
    await h.finished(runs.happy!);
    const id = await h.start('e2e-happy', DRIFTED_CSV);
    const done = await h.finished(id);
    expect(done).toMatchObject({ status: 'stopped', stopReason: 'validation_failed' });
    expect(done.reason).toMatch(/drift in \d+ of \d+ columns: wage/);
    const validate = done.steps.find((s) => s.name === 'validate')!;
    expect(validate.status).toBe('failed');
    expect(validate.outputs).toMatchObject({ drift: 'drifted', driftedColumns: ['wage'] });
    expect(done.steps.filter((s) => s.status === 'skipped').map((s) => s.name)).toEqual([
      'train',
      'evaluate',
      'approve',
      'deploy',
    ]);
    const model = await h.model('e2e-happy');
    expect(model?.latestVersion).toBe(1);
    expect(model?.aliases.production?.version).toBe(1);
  });

  it('data that breaks the contract is stopped by validation, naming the column', async () => {
    const done = await h.finished(runs.contract!);
    expect(done).toMatchObject({ status: 'stopped', stopReason: 'validation_failed' });
    expect(done.reason).toMatch(/wage|occupation/);
    expect(done.steps.find((s) => s.name === 'train')?.status).toBe('skipped');
    expect(await h.model('e2e-contract')).toBeNull();
  });

  it('a candidate that misses the evaluation policy never reaches reviewers', async () => {
    const done = await h.finished(runs.evaluation!);
    expect(done).toMatchObject({ status: 'stopped', stopReason: 'evaluation_failed' });
    expect(done.reason).toMatch(/r2 = 0\.\d+, required >= 0\.99/);
    expect(done.steps.find((s) => s.name === 'approve')?.status).toBe('skipped');
    expect(await h.messages(runs.evaluation!)).toEqual([]);
    const model = await h.model('e2e-eval');
    expect(model?.aliases.production).toBeUndefined();
  });

  it('a reviewer who rejects stops the run with their comment, and nothing is deployed', async () => {
    await h.waitFor(runs.reject!, 'approval', (r) => r.status === 'waiting_for_approval');
    await h.decide(runs.reject!, 'reject', 'r2 of 0.2 is too weak for payroll planning');
    const done = await h.finished(runs.reject!);
    expect(done).toMatchObject({ status: 'stopped', stopReason: 'approval_rejected' });
    expect(done.reason).toContain('too weak for payroll planning');
    expect(done.approval).toMatchObject({ outcome: 'rejected', rejectedBy: [REVIEWER] });
    expect(done.steps.find((s) => s.name === 'deploy')?.status).toBe('skipped');
    expect((await h.model('e2e-reject'))?.aliases.production).toBeUndefined();
  });

  it('an approval nobody answers escalates, then times out, and the run stops', async () => {
    const done = await h.finished(runs.timeout!);
    expect(done).toMatchObject({ status: 'stopped', stopReason: 'approval_timed_out' });
    expect(done.approval).toMatchObject({ escalated: true, approvedBy: [] });
    const sent = (await h.messages(runs.timeout!)).map((m) => `${m.kind}:${m.to}`);
    expect(sent).toEqual(expect.arrayContaining([`request:${REVIEWER}`, 'escalation:oncall@example.com']));
    expect((await h.model('e2e-timeout'))?.aliases.production).toBeUndefined();
  });

  it('bad input gets a problem naming the field', async () => {
    const unknown = await h.api('POST', '/api/pipelines/no-such-pipeline/runs', 'a,b\n1,2', {
      'content-type': 'text/csv',
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ field: 'name' });
    const bad = await h.api('PUT', '/api/pipelines/e2e-bad', {
      ...testPipeline('e2e-bad'),
      training: { ...(testPipeline('e2e-bad').training as object), target: 'salary' },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('training');
  });
});
