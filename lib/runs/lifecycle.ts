import type { z } from 'zod';
import type { ActivityDef } from '../contracts/activity';
import {
  beginRunActivity,
  finishRunActivity,
  loadPipelineVersionActivity,
  recordRunStepActivity,
  type PipelineRunInput,
  type PipelineRunOutput,
} from '../contracts/pipeline';
import { MAX_STEP_UPDATES, type PinnedDefinition, type StepOutputs } from '../contracts/run';
import type { RunStatus, StepName, StepStatus, StepUpdate, StopReason } from '../contracts/runDocument';

/**
 * The run ledger: how an orchestration tells the run document (Cosmos, what people read) where a
 * run is. One place records a step's start and end, its typed outputs, a failure with code and
 * message, and the run's ending; the orchestrator only tells the story of the run.
 *
 * Bookkeeping is buffered: a step's end and the next step's start (or the run's ending) go to Cosmos
 * in ONE recordRunStep (or finishRun) call, each update keeping its own `at`, so the timeline loses
 * nothing. Pending updates are written before the orchestration waits on real work (any activity or
 * sub-orchestration called through the ledger, unless the call says it is quick enough to run with
 * them pending), so the document shows the step that is working.
 *
 * Pure and deterministic (no I/O, no clock but the orchestration's, no Node or Azure imports): it
 * runs inside orchestrator replay. Activities are called through the `call` function the
 * orchestrator passes in (orchestrators/support/call.ts bound to its context), so lib/ does not
 * import the Durable SDK.
 */

/** The parts of the Durable orchestration context the ledger uses (structural: no SDK import). */
export interface LedgerContext {
  df: {
    readonly currentUtcDateTime: Date;
    readonly isReplaying: boolean;
    readonly instanceId: string;
    setCustomStatus(status: unknown): void;
    newGuid(name: string): string;
  };
  log(...args: unknown[]): void;
}

/** Calls an activity through its descriptor and yields until it returns (`callActivity` bound to a context). */
export type CallActivity<T> = <I extends z.ZodType, O extends z.ZodType>(
  def: ActivityDef<I, O>,
  input: z.input<I>,
) => Generator<T, z.output<O>, unknown>;

/** What a step body returns: its value for the orchestrator, and what the run document records. */
export interface StepDone<S extends StepName, R> {
  result: R;
  outputs: StepOutputs<S>;
  /** Merged into the run's metrics (e.g. `{ training: … }`). */
  metrics?: Record<string, unknown>;
}

/** How the run ends, for {@link RunLedger.finish}. */
export interface RunEnding {
  status: RunStatus;
  stopReason?: StopReason;
  reason?: string;
  deployment?: Record<string, unknown>;
  approval?: Record<string, unknown>;
  deployedVersion?: number;
}

/**
 * Thrown (through `yield*`) by a gate to end the run early: a normal ending, not a failure. When
 * `step` is given, the current step is closed with it first (default status `failed`).
 */
export class RunStop extends Error {
  constructor(
    readonly ending: RunEnding & {
      status: Exclude<RunStatus, 'queued' | 'running' | 'waiting_for_approval'>;
    },
    readonly step?: {
      status?: Extract<StepStatus, 'failed' | 'canceled'>;
      outputs?: Record<string, unknown>;
      error: { code: string; message: string };
      metrics?: Record<string, unknown>;
    },
  ) {
    super(ending.reason ?? ending.status);
    this.name = 'RunStop';
  }
}

/** Options of a call made through the ledger. */
export interface CallOptions {
  /**
   * false: the call is quick and changes nothing the timeline shows, so pending bookkeeping may wait
   * and go with the next write (it still goes before anything long, and before the ending).
   */
  flush?: boolean;
}

export interface RunLedger<T> {
  readonly runId: string;
  readonly pipeline: string;
  /** The pipeline version this run pinned, as data activities take it. */
  readonly pinned: { name: string; version: number };
  /** This execution's id: the same on every replay, new for a restarted or duplicated execution. */
  readonly executionId: string;
  /** The orchestration's clock as an ISO string. */
  now(): string;
  /** Logs once (not on replay). */
  log(message: string): void;
  /** Claims the run for this execution; a refused execution gets its output back and must return it. */
  begin(): Generator<T, PipelineRunOutput | undefined, unknown>;
  /** The pinned definition, typed; loaded once per execution (versions are immutable). */
  definition(): Generator<T, PinnedDefinition, unknown>;
  /** Calls an activity, writing pending bookkeeping first (see {@link CallOptions}). */
  call<I extends z.ZodType, O extends z.ZodType>(
    def: ActivityDef<I, O>,
    input: z.input<I>,
    options?: CallOptions,
  ): Generator<T, z.output<O>, unknown>;
  /** Waits on anything else (a sub-orchestration) after writing pending bookkeeping. */
  wait<R>(work: Generator<T, R, unknown>): Generator<T, R, unknown>;
  /** Runs one step: its start, its body, its end with typed outputs. Returns the body's result. */
  step<S extends StepName, R>(
    name: S,
    body: () => Generator<T, StepDone<S, R>, unknown>,
  ): Generator<T, R, unknown>;
  /** Records outputs of the current step while it still runs (written before the next wait). */
  progress(outputs: Partial<StepOutputs<StepName>>, attempt?: number): void;
  /** Names a report on the run document (written with the ending). */
  report(name: string, uri: string): void;
  /** Runs the whole story; a {@link RunStop} or any failure escaping it ends the run with its reason. */
  execute(body: () => Generator<T, PipelineRunOutput, unknown>): Generator<T, PipelineRunOutput, unknown>;
  /** Ends the run (with the updates still pending) and returns the orchestration's output. */
  finish(ending: RunEnding): Generator<T, PipelineRunOutput, unknown>;
}

/** Builds the ledger of one run for one orchestration execution. */
export function runLifecycle<T>(
  context: LedgerContext,
  input: PipelineRunInput,
  call: CallActivity<T>,
): RunLedger<T> {
  const { runId, pipeline } = input;
  const ref = { runId, pipeline };
  const now = () => context.df.currentUtcDateTime.toISOString();
  const log = (message: string) => {
    if (!context.df.isReplaying) context.log(`trainingPipeline ${runId}: ${message}`);
  };
  const executionId = context.df.newGuid(`${context.df.instanceId}:execution`);

  const pending: StepUpdate[] = [];
  let pendingMetrics: Record<string, unknown> | undefined;
  /** The step that failures are charged to: the last one started (the first before any starts). */
  let current: StepName = 'ingest';
  const reports: Record<string, string> = {};
  let pinnedDefinition: PinnedDefinition | undefined;

  function push(update: StepUpdate, metrics?: Record<string, unknown>): void {
    pending.push(update);
    if (metrics) pendingMetrics = { ...(pendingMetrics ?? {}), ...metrics };
  }

  /**
   * Writes pending updates with recordRunStep, at most MAX_STEP_UPDATES a call, until `keep` are
   * left (the pending metrics go with the last call when none are kept). Updates leave the buffer
   * only once written: when a write fails, the ending carries them instead, so a step that
   * succeeded is not lost with its outputs.
   */
  function* writePending(keep: number): Generator<T, void, unknown> {
    while (pending.length > keep) {
      const updates = pending.slice(0, Math.min(MAX_STEP_UPDATES, pending.length - keep));
      const last = keep === 0 && updates.length === pending.length;
      const metrics = last ? pendingMetrics : undefined;
      yield* call(recordRunStepActivity, { ...ref, updates, ...(metrics ? { metrics } : {}) });
      pending.splice(0, updates.length);
      if (last) pendingMetrics = undefined;
    }
  }

  const flush = (): Generator<T, void, unknown> => writePending(0);

  const ledger: RunLedger<T> = {
    runId,
    pipeline,
    pinned: { name: pipeline, version: input.pipelineVersion },
    executionId,
    now,
    log,

    *begin() {
      const begun = yield* call(beginRunActivity, {
        ...ref,
        instanceId: context.df.instanceId,
        executionId,
        at: now(),
      });
      if (begun.accepted) return undefined;
      const reason = begun.reason ?? 'another execution runs this run';
      context.df.setCustomStatus({
        runId,
        step: 'done',
        status: 'stopped',
        stopReason: 'duplicate_execution',
      });
      log(`refused: ${reason}`);
      return { runId, status: 'stopped', stopReason: 'duplicate_execution', reason };
    },

    *definition() {
      pinnedDefinition ??= yield* call(loadPipelineVersionActivity, {
        pipeline,
        version: input.pipelineVersion,
      });
      return pinnedDefinition;
    },

    *call(def, activityInput, options = {}) {
      if (options.flush !== false) yield* flush();
      return yield* call(def, activityInput);
    },

    *wait(work) {
      yield* flush();
      return yield* work;
    },

    *step(name, body) {
      current = name;
      context.df.setCustomStatus({ runId, step: name });
      push({ step: name, status: 'running', at: now() });
      const done = yield* body();
      push(
        { step: name, status: 'succeeded', at: now(), outputs: done.outputs as Record<string, unknown> },
        done.metrics,
      );
      return done.result;
    },

    progress(outputs, attempt) {
      push({
        step: current,
        status: 'running',
        at: now(),
        ...(attempt !== undefined ? { attempt } : {}),
        outputs: outputs as Record<string, unknown>,
      });
    },

    report(name, uri) {
      reports[name] = uri;
    },

    *execute(body) {
      try {
        return yield* body();
      } catch (err) {
        if (err instanceof RunStop) {
          if (err.step) {
            const { status = 'failed', outputs, error, metrics } = err.step;
            push({ step: current, status, at: now(), ...(outputs ? { outputs } : {}), error }, metrics);
          }
          return yield* ledger.finish(err.ending);
        }
        // Anything that escaped the gates: a step's retries ran out, or a non-retriable failure.
        const e = err as { message?: string; code?: string };
        const code = e.code ?? 'step_failed';
        const message = (e.message ?? String(err)).slice(0, 2_000);
        push({ step: current, status: 'failed', at: now(), error: { code, message } });
        return yield* ledger.finish({
          status: 'failed',
          stopReason: 'error',
          reason: `${current} failed: ${message}`,
        });
      }
    },

    *finish(ending) {
      const { status, stopReason, reason, deployment, approval, deployedVersion } = ending;
      context.df.setCustomStatus({ runId, step: 'done', status, ...(stopReason ? { stopReason } : {}) });
      // More updates than one call takes: the surplus goes first, the rest with the ending.
      yield* writePending(MAX_STEP_UPDATES);
      const updates = pending.slice();
      const metrics = pendingMetrics;
      yield* call(finishRunActivity, {
        ...ref,
        ...(updates.length ? { updates } : {}),
        ...(metrics ? { metrics } : {}),
        status,
        at: now(),
        ...(stopReason ? { stopReason } : {}),
        ...(reason ? { reason: reason.slice(0, 4_000) } : {}),
        ...(deployment ? { deployment } : {}),
        ...(approval ? { approval } : {}),
        reports,
      });
      // Cleared once written, as in writePending: a failed ending is retried with them.
      pending.splice(0, updates.length);
      pendingMetrics = undefined;
      log(`${status}${stopReason ? ` (${stopReason})` : ''}${reason ? `: ${reason}` : ''}`);
      return {
        runId,
        status,
        ...(stopReason ? { stopReason } : {}),
        ...(reason ? { reason } : {}),
        ...(deployedVersion ? { deployedVersion } : {}),
      };
    },
  };
  return ledger;
}
