/**
 * The run ledger (lib/runs/lifecycle.ts) on its own: which bookkeeping goes in which call, with
 * which times. Activities are answered by a scripted `call`; the clock moves only when a test says.
 */
import type { z } from 'zod';
import type { ActivityDef } from '../../../lib/contracts/activity';
import type { PipelineRunInput } from '../../../lib/contracts/pipeline';
import { readStepOutputs } from '../../../lib/contracts/run';
import { RunStop, runLifecycle, type LedgerContext } from '../../../lib/runs/lifecycle';
import { stepNames } from '../../../lib/contracts/runDocument';

interface Sent {
  name: string;
  input: Record<string, unknown>;
}

const T0 = Date.parse('2026-03-01T12:00:00.000Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const input: PipelineRunInput = {
  runId: 'r1',
  pipeline: 'wages',
  pipelineVersion: 4,
  source: { kind: 'blob', uri: 'http://x/a.csv' },
  requestedBy: 'ana@example.com',
  revision: 3,
};
const definition = {
  modelName: 'wages',
  training: { algorithm: 'ridge', target: 'wage', features: ['age'], timeLimitSeconds: 60 },
  evaluation: { primaryMetric: 'r2' },
  approval: { reviewers: ['bob@example.com'] },
};
const work = { name: 'work' } as unknown as ActivityDef<z.ZodAny, z.ZodAny>;

function harness(answers: Record<string, unknown> = {}) {
  let clock = T0;
  const sent: Sent[] = [];
  const statuses: unknown[] = [];
  const context: LedgerContext = {
    log: () => undefined,
    df: {
      instanceId: 'r1',
      isReplaying: false,
      get currentUtcDateTime() {
        return new Date(clock);
      },
      newGuid: (n: string) => `guid:${n}`,
      setCustomStatus: (s: unknown) => void statuses.push(s),
    },
  };
  // Answers synchronously (the ledger's generators never yield here), like a replayed history.
  // eslint-disable-next-line require-yield
  function* call(def: ActivityDef, activityInput: unknown): Generator<never, never, unknown> {
    sent.push({ name: def.name, input: activityInput as Record<string, unknown> });
    const answer =
      def.name in answers
        ? answers[def.name]
        : def.name === 'loadPipelineVersion'
          ? definition
          : def.name === 'beginRun'
            ? { accepted: true }
            : { status: 'running' };
    if (answer instanceof Error) throw answer;
    return (def.output ? def.output.parse(answer) : answer) as never;
  }
  const run = runLifecycle<never>(context, input, call as never);
  const tick = (s = 1) => void (clock += s * 1000);
  const drive = <R>(g: Generator<never, R, unknown>): R => {
    const r = g.next();
    if (!r.done) throw new Error('the ledger yielded without a call');
    return r.value;
  };
  return { run, sent, statuses, tick, drive };
}

describe('run ledger: buffered bookkeeping', () => {
  it('writes the end of one step and the start of the next in one call, each with its own time', () => {
    const { run, sent, tick, drive } = harness();
    drive(
      run.execute(function* () {
        yield* run.step('ingest', function* () {
          yield* run.call(work, {});
          tick();
          return { result: 1, outputs: ingestOutputs };
        });
        tick();
        yield* run.step('validate', function* () {
          yield* run.call(work, {});
          return { result: 2, outputs: validateOutputs };
        });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(sent.map((s) => s.name)).toEqual(['recordRunStep', 'work', 'recordRunStep', 'work', 'finishRun']);
    expect(sent[2]!.input.updates).toEqual([
      { step: 'ingest', status: 'succeeded', at: iso(1), outputs: ingestOutputs },
      { step: 'validate', status: 'running', at: iso(2) },
    ]);
    // The last step's end goes with the ending.
    expect(sent[4]!.input).toMatchObject({
      status: 'succeeded',
      updates: [{ step: 'validate', status: 'succeeded', at: iso(2), outputs: validateOutputs }],
    });
  });

  it('lets pending bookkeeping ride past a quick call, and writes it before the next wait', () => {
    const { run, sent, drive } = harness();
    drive(
      run.execute(function* () {
        yield* run.step('ingest', function* () {
          yield* run.call(work, {}, { flush: false });
          run.progress({ jobId: 'job-1', backend: 'local', attempt: 1 }, 0);
          yield* run.wait(
            // eslint-disable-next-line require-yield
            (function* () {
              sent.push({ name: 'sub', input: {} });
            })(),
          );
          return { result: 1, outputs: ingestOutputs };
        });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(sent.map((s) => s.name)).toEqual(['work', 'recordRunStep', 'sub', 'finishRun']);
    expect(sent[1]!.input.updates).toEqual([
      { step: 'ingest', status: 'running', at: iso(0) },
      {
        step: 'ingest',
        status: 'running',
        at: iso(0),
        attempt: 0,
        outputs: { jobId: 'job-1', backend: 'local', attempt: 1 },
      },
    ]);
  });

  it('a failure flushes the pending update with the failure and the ending, in one call', () => {
    const { run, sent, statuses, drive } = harness({ work: new Error('retries ran out') });
    const output = drive(
      run.execute(function* () {
        // eslint-disable-next-line require-yield
        yield* run.step('ingest', function* () {
          return { result: 1, outputs: ingestOutputs };
        });
        yield* run.step('validate', function* () {
          yield* run.call(work, {}, { flush: false });
          return { result: 2, outputs: validateOutputs };
        });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(sent.map((s) => s.name)).toEqual(['work', 'finishRun']);
    expect(sent[1]!.input).toMatchObject({
      status: 'failed',
      stopReason: 'error',
      reason: 'validate failed: retries ran out',
      updates: [
        { step: 'ingest', status: 'running' },
        { step: 'ingest', status: 'succeeded', outputs: ingestOutputs },
        { step: 'validate', status: 'running' },
        { step: 'validate', status: 'failed', error: { code: 'step_failed', message: 'retries ran out' } },
      ],
    });
    expect(output).toEqual({
      runId: 'r1',
      status: 'failed',
      stopReason: 'error',
      reason: 'validate failed: retries ran out',
    });
    expect(statuses.at(-1)).toEqual({ runId: 'r1', step: 'done', status: 'failed', stopReason: 'error' });
  });

  it('a gate stop closes the current step with its outputs, error and metrics, and keeps the reports', () => {
    const { run, sent, drive } = harness();
    drive(
      run.execute(function* () {
        yield* run.step('validate', function* () {
          yield* run.call(work, {});
          run.report('validation', 'http://x/report.json');
          throw new RunStop(
            { status: 'stopped', stopReason: 'validation_failed', reason: '3 errors' },
            {
              outputs: validateOutputs,
              error: { code: 'validation_failed', message: '3 errors' },
              metrics: { quality: 1 },
            },
          );
        });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(sent.at(-1)).toEqual({
      name: 'finishRun',
      input: {
        runId: 'r1',
        pipeline: 'wages',
        status: 'stopped',
        stopReason: 'validation_failed',
        reason: '3 errors',
        at: iso(0),
        reports: { validation: 'http://x/report.json' },
        metrics: { quality: 1 },
        updates: [
          {
            step: 'validate',
            status: 'failed',
            at: iso(0),
            outputs: validateOutputs,
            error: { code: 'validation_failed', message: '3 errors' },
          },
        ],
      },
    });
  });

  it('a bookkeeping write that fails loses nothing: the ending carries the updates it held', () => {
    // Regression: the batch used to be taken off before the write, so a succeeded step whose end
    // rode in a failed recordRunStep was closed as canceled, its outputs lost.
    const { run, sent, drive } = harness({ recordRunStep: new Error('Cosmos unavailable') });
    drive(
      run.execute(function* () {
        // eslint-disable-next-line require-yield
        yield* run.step('ingest', function* () {
          return { result: 1, outputs: ingestOutputs };
        });
        yield* run.step('validate', function* () {
          yield* run.call(work, {});
          return { result: 2, outputs: validateOutputs };
        });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(sent.map((s) => s.name)).toEqual(['recordRunStep', 'finishRun']);
    expect(sent[1]!.input).toMatchObject({
      status: 'failed',
      updates: [
        { step: 'ingest', status: 'running' },
        { step: 'ingest', status: 'succeeded', outputs: ingestOutputs },
        { step: 'validate', status: 'running' },
        { step: 'validate', status: 'failed', error: { message: 'Cosmos unavailable' } },
      ],
    });
  });

  it('an ending that fails to write keeps its updates for the retried ending', () => {
    // Regression: the ending took the pending updates off before finishRun ran, so when it failed,
    // the retried ending (charged to the current step) no longer carried the step's success.
    const { run, sent, drive } = harness({ finishRun: new Error('Cosmos unavailable') });
    expect(() =>
      drive(
        run.execute(function* () {
          // eslint-disable-next-line require-yield
          yield* run.step('ingest', function* () {
            return { result: 1, outputs: ingestOutputs };
          });
          return yield* run.finish({ status: 'succeeded' });
        }),
      ),
    ).toThrow('Cosmos unavailable');
    expect(sent.map((s) => s.name)).toEqual(['finishRun', 'finishRun']);
    expect(sent[1]!.input).toMatchObject({
      status: 'failed',
      updates: [
        { step: 'ingest', status: 'running' },
        { step: 'ingest', status: 'succeeded', outputs: ingestOutputs },
        { step: 'ingest', status: 'failed', error: { message: 'Cosmos unavailable' } },
      ],
    });
  });

  it('splits a long backlog into calls of at most the limit each, the last ones with the ending', () => {
    // Regression: more than twice the limit went out as one oversize surplus call.
    const { run, sent, drive } = harness();
    drive(
      run.execute(function* () {
        for (let i = 0; i < 30; i++) run.progress({ jobId: `job-${i}`, backend: 'local' });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(sent.map((s) => s.name)).toEqual(['recordRunStep', 'recordRunStep', 'finishRun']);
    expect(sent.map((s) => (s.input.updates as unknown[]).length)).toEqual([12, 6, 12]);
    const jobs = sent.flatMap((s) =>
      (s.input.updates as { outputs: { jobId: string } }[]).map((u) => u.outputs.jobId),
    );
    expect(jobs).toEqual(Array.from({ length: 30 }, (_, i) => `job-${i}`));
  });

  it('splits more updates than one call takes, oldest first, the rest with the ending', () => {
    const { run, sent, drive } = harness();
    drive(
      run.execute(function* () {
        for (let i = 0; i < 14; i++) run.progress({ jobId: `job-${i}`, backend: 'local' });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(sent.map((s) => s.name)).toEqual(['recordRunStep', 'finishRun']);
    expect((sent[0]!.input.updates as unknown[]).length).toBe(2);
    expect((sent[1]!.input.updates as unknown[]).length).toBe(12);
  });
});

describe('run ledger: the pinned definition and the claim', () => {
  it('loads the pinned definition once per execution, typed', () => {
    const { run, sent, drive } = harness();
    const a = drive(run.definition());
    const b = drive(run.definition());
    expect(sent.filter((s) => s.name === 'loadPipelineVersion')).toEqual([
      { name: 'loadPipelineVersion', input: { pipeline: 'wages', version: 4 } },
    ]);
    expect(b).toBe(a);
    // Parsed: defaults of the training spec and approval policy are filled in.
    expect(a.approval.requiredApprovals).toBe(1);
    expect(a.training.algorithm).toBe('ridge');
  });

  it('a refused execution stops as a duplicate without writing anything else', () => {
    const { run, sent, drive } = harness({ beginRun: { accepted: false, reason: 'taken' } });
    expect(drive(run.begin())).toEqual({
      runId: 'r1',
      status: 'stopped',
      stopReason: 'duplicate_execution',
      reason: 'taken',
    });
    expect(sent.map((s) => s.name)).toEqual(['beginRun']);
    expect(sent[0]!.input).toEqual({
      runId: 'r1',
      pipeline: 'wages',
      instanceId: 'r1',
      executionId: 'guid:r1:execution',
      at: iso(0),
    });
  });
});

describe('typed step outputs', () => {
  it('reads the train step outputs through their schema', () => {
    const steps = stepNames.map((name) => ({
      name,
      outputs: undefined as Record<string, unknown> | undefined,
    }));
    steps[2]!.outputs = { jobId: 'job-1', backend: 'azureml', attempt: 1 };
    expect(readStepOutputs(steps, 'train')).toEqual({ jobId: 'job-1', backend: 'azureml', attempt: 1 });
    steps[2]!.outputs = { jobId: 'job-1', backend: 'somewhere-else' };
    expect(readStepOutputs(steps, 'train')).toBeUndefined();
    expect(readStepOutputs(steps, 'deploy')).toBeUndefined();
  });

  it('a step body must return its step outputs (a compile error otherwise)', () => {
    const { run, drive } = harness();
    const out = drive(
      run.execute(function* () {
        // @ts-expect-error `rows` is not an output of the evaluate step, `reportUri` is missing
        // eslint-disable-next-line require-yield
        yield* run.step('evaluate', function* () {
          return { result: 0, outputs: { rows: 3 } };
        });
        return yield* run.finish({ status: 'succeeded' });
      }),
    );
    expect(out.status).toBe('succeeded');
  });
});

const ingestOutputs = {
  rows: 10,
  columns: 2,
  sha256: 'a'.repeat(64),
  bytes: 100,
  rawUri: 'http://x/raw',
  columnarUri: 'http://x/col',
  format: 'csv' as const,
};
const validateOutputs = {
  status: 'passed' as const,
  headline: 'ok',
  errors: 0,
  warnings: 0,
  drift: 'stable' as const,
  driftedColumns: [],
  reportUri: 'http://x/report.json',
};
