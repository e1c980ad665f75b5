/**
 * Drives the real durable-functions library in-process, without devhost's engine or HTTP: loads a
 * fixture app with a fake `@azure/functions-core` (the seam the Node worker uses), invokes
 * orchestrators with hand-built or captured histories, and reads back the library's own task ids
 * (`taskOrchestratorExecutor.openTasks`, private API used only as a test oracle).
 *
 * Call `loadApp` at most once per test file, before anything else requires `@azure/functions`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { OrchestratorState } from '../../../../devhost/durable/actions';
import { formatTimeSpan } from '../../../../devhost/durable/config';
import { EventType, type HistoryEvent, isSchedulingEvent } from '../../../../devhost/durable/history';
import { itemName, type WorkItem } from '../../../../devhost/durable/replay';

export interface Registered {
  name: string;
  kind: 'orchestration' | 'activity' | 'other';
  callback: (...args: unknown[]) => unknown;
}

interface FunctionsModule {
  InvocationContext: new (init: Record<string, unknown>) => Record<string, unknown>;
}

export interface LoadedApp {
  functions: Map<string, Registered>;
  /** Runs one episode; returns the state (or the failure) and the library's open task ids. */
  runOrchestrator(
    name: string,
    history: HistoryEvent[],
    input: unknown,
    instanceId?: string,
    timers?: { maxShortTimerMs: number; longTimerIntervalMs: number },
  ): Promise<EpisodeResult>;
  runActivity(name: string, input: unknown): Promise<unknown>;
}

export interface EpisodeResult {
  state?: OrchestratorState;
  error?: Error;
  /** Numeric keys of the library's open tasks: the sequence ids it waits on. */
  openIds: number[];
  /** How many sequence ids the library allocated. */
  allocated: number;
}

export const timerOptions = { maxShortTimerMs: 6 * 86_400_000, longTimerIntervalMs: 3 * 86_400_000 };

export function loadApp(files: string[]): LoadedApp {
  const registrations: {
    metadata: { name: string; bindings: Record<string, { type: string }> };
    callback: Registered['callback'];
  }[] = [];
  jest.doMock(
    '@azure/functions-core',
    () => ({
      version: 'test',
      hostVersion: 'test',
      registerFunction: (
        metadata: (typeof registrations)[number]['metadata'],
        callback: Registered['callback'],
      ) => {
        registrations.push({ metadata, callback });
        return { dispose: () => undefined };
      },
      setProgrammingModel: () => undefined,
      getProgrammingModel: () => undefined,
      registerHook: () => ({ dispose: () => undefined }),
      log: () => undefined,
      Disposable: class {
        dispose(): void {}
      },
    }),
    { virtual: true },
  );
  for (const f of files) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(path.resolve(__dirname, '..', '..', '..', '..', f));
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const functions = require('@azure/functions') as FunctionsModule;
  const map = new Map<string, Registered>();
  for (const r of registrations) {
    const trigger = Object.values(r.metadata.bindings).find((b) => /trigger$/i.test(b.type));
    const kind =
      trigger?.type === 'orchestrationTrigger'
        ? 'orchestration'
        : trigger?.type === 'activityTrigger'
          ? 'activity'
          : 'other';
    map.set(r.metadata.name.toLowerCase(), { name: r.metadata.name, kind, callback: r.callback });
  }
  const context = (name: string): Record<string, unknown> =>
    new functions.InvocationContext({
      invocationId: 'test',
      functionName: name,
      logHandler: () => undefined,
    });

  return {
    functions: map,
    async runOrchestrator(name, history, input, instanceId = 'inst-1', timers = timerOptions) {
      const fn = map.get(name.toLowerCase());
      if (!fn) throw new Error(`no orchestrator ${name}`);
      const ctx = context(name);
      // JSON round trip: what the worker-style invoker does, and it keeps the caller's events untouched.
      const payload = JSON.parse(
        JSON.stringify({
          history,
          input,
          instanceId,
          isReplaying: false,
          parentInstanceId: null,
          upperSchemaVersion: 1,
          upperSchemaVersionNew: 2,
          longRunningTimerIntervalDuration: formatTimeSpan(timers.longTimerIntervalMs),
          maximumShortTimerDuration: formatTimeSpan(timers.maxShortTimerMs),
          defaultHttpAsyncRequestSleepTimeMillseconds: 30000,
        }),
      ) as unknown;
      let state: OrchestratorState | undefined;
      let error: Error | undefined;
      try {
        state = JSON.parse(JSON.stringify(await fn.callback(payload, ctx))) as OrchestratorState;
      } catch (e) {
        error = e as Error;
      }
      const df = (
        ctx as {
          df?: {
            taskOrchestratorExecutor?: { openTasks?: Record<string, unknown>; sequenceNumber?: number };
          };
        }
      ).df;
      const openIds = Object.keys(df?.taskOrchestratorExecutor?.openTasks ?? {})
        .filter((k) => /^\d+$/.test(k))
        .map(Number)
        .sort((a, b) => a - b);
      const allocated = df?.taskOrchestratorExecutor?.sequenceNumber ?? 0;
      return { ...(state ? { state } : {}), ...(error ? { error } : {}), openIds, allocated };
    },
    async runActivity(name, input) {
      const fn = map.get(name.toLowerCase());
      if (!fn) throw new Error(`no activity ${name}`);
      return fn.callback(input, context(name));
    },
  };
}

/** A history captured from a real devhost run, with what the orchestration was given and returned. */
export interface Golden {
  orchestrator: string;
  instanceId: string;
  input: unknown;
  output: unknown;
  history: HistoryEvent[];
}

/** Every `*.json` golden history in `dir`, named by file. */
export function loadGoldens(dir: string): (readonly [string, Golden])[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map(
      (f) =>
        [f.replace(/\.json$/, ''), JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Golden] as const,
    );
}

/**
 * Splits a stored history into episodes: what the library was given (everything before, plus the
 * events delivered in that episode) and the scheduling events devhost then recorded.
 */
export function goldenEpisodes(
  history: HistoryEvent[],
): { given: HistoryEvent[]; recorded: HistoryEvent[] }[] {
  const out: { given: HistoryEvent[]; recorded: HistoryEvent[] }[] = [];
  let before: HistoryEvent[] = [];
  let current: HistoryEvent[] = [];
  for (const e of history) {
    if (e.EventType === EventType.OrchestratorCompleted) {
      const recorded = current.filter(isSchedulingEvent);
      const delivered = current.filter((x) => !isSchedulingEvent(x));
      out.push({ given: [...before, ...delivered], recorded });
      before = [...before, ...current, e];
      current = [];
    } else {
      current.push(e);
    }
  }
  return out;
}

/** One unit of work by sequence id, as replay asks for it or as devhost recorded it. */
export interface Work {
  id: number;
  kind: string | undefined;
  name: string | undefined;
}

/** The work a replay asked for, in the shape of `workRecorded` so the two compare with `toEqual`. */
export function workAsked(items: WorkItem[]): Work[] {
  return items.map((i) => ({ id: i.id, kind: i.kind, name: i.kind === 'timer' ? undefined : itemName(i) }));
}

/** The work devhost recorded: activities, sub-orchestrations and timers, by sequence id. */
export function workRecorded(events: HistoryEvent[]): Work[] {
  return events.map((e) => ({
    id: e.EventId,
    kind: { 4: 'activity', 7: 'subOrchestration', 10: 'timer' }[e.EventType as 4 | 7 | 10],
    name: e.EventType === EventType.TimerCreated ? undefined : e.Name,
  }));
}
