/**
 * Durable settings devhost honours: `extensions.durableTask` in host.json (durable-host-spec §10) plus
 * devhost-only knobs from app settings (`local.settings.json` Values / environment), which exist only
 * locally and therefore do not belong in host.json.
 */
import { availableParallelism } from 'node:os';

export interface DurableConfig {
  maxConcurrentActivityFunctions: number;
  maxConcurrentOrchestratorFunctions: number;
  /** `NonRunningStates` (default) or `AnyState` (spec §7.7). */
  overridableExistingInstanceStates: 'NonRunningStates' | 'AnyState';
  /** `localRpcEndpointEnabled: false` ⇒ the client binding data carries no `rpcBaseUrl`. */
  localRpcEndpointEnabled: boolean;
  /** Largest payload (input, output, event data, custom status) in UTF-8 bytes. */
  maxPayloadBytes: number;
  maximumShortTimerMs: number;
  longRunningTimerIntervalMs: number;
  /** A warning is logged once an execution's history grows past this many events. */
  historyWarningEvents: number;
  maxOrchestrationActions: number;
  /** `httpSettings.defaultAsyncRequestSleepTimeMilliseconds`: callHttp's poll interval without Retry-After. */
  httpAsyncSleepMs: number;
  /** How long one durable HTTP request may take (.NET HttpClient's default, 100 s). */
  httpTimeoutMs: number;
}

const numberOr = (value: unknown, fallback: number): number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;

/** Parses a .NET TimeSpan text (`d.hh:mm:ss[.fff]` or `hh:mm:ss[.fff]`) into milliseconds. */
export function parseTimeSpan(text: string): number {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not a TimeSpan (expected d.hh:mm:ss or hh:mm:ss)`);
  const [, d = '0', h = '0', min = '0', s = '0', frac = ''] = m;
  const fracMs = frac ? Number(`0.${frac}`) * 1000 : 0;
  return ((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60_000 + Number(s) * 1000 + fracMs;
}

/** Formats milliseconds as a .NET TimeSpan text the SDK (moment) parses: `d.hh:mm:ss.fff`. */
export function formatTimeSpan(ms: number): string {
  const pad = (n: number, w = 2): string => String(Math.floor(n)).padStart(w, '0');
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  const f = Math.round(rest - s * 1000);
  return `${days}.${pad(h)}:${pad(m)}:${pad(s)}${f ? `.${pad(f, 3)}` : ''}`;
}

export function readDurableConfig(
  hostJson: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): DurableConfig {
  const extensions = (hostJson.extensions ?? {}) as Record<string, unknown>;
  const dt = (extensions.durableTask ?? {}) as Record<string, unknown>;
  const cores = availableParallelism();
  const envNumber = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got '${raw}'`);
    return Math.floor(n);
  };
  const envSpan = (name: string, fallback: string): number => parseTimeSpan(env[name] || fallback);
  const maximumShortTimerMs = envSpan('DEVHOST_DURABLE_MAX_SHORT_TIMER', '6.00:00:00');
  const longRunningTimerIntervalMs = envSpan('DEVHOST_DURABLE_LONG_TIMER_INTERVAL', '3.00:00:00');
  if (longRunningTimerIntervalMs > maximumShortTimerMs) {
    throw new Error('DEVHOST_DURABLE_LONG_TIMER_INTERVAL must not exceed DEVHOST_DURABLE_MAX_SHORT_TIMER');
  }
  return {
    maxConcurrentActivityFunctions: numberOr(dt.maxConcurrentActivityFunctions, 10 * cores),
    maxConcurrentOrchestratorFunctions: numberOr(dt.maxConcurrentOrchestratorFunctions, 10 * cores),
    overridableExistingInstanceStates:
      String(dt.overridableExistingInstanceStates ?? '').toLowerCase() === 'anystate'
        ? 'AnyState'
        : 'NonRunningStates',
    localRpcEndpointEnabled: dt.localRpcEndpointEnabled !== false,
    maxPayloadBytes: envNumber('DEVHOST_DURABLE_MAX_PAYLOAD_BYTES', 256 * 1024),
    maximumShortTimerMs,
    longRunningTimerIntervalMs,
    historyWarningEvents: envNumber('DEVHOST_DURABLE_HISTORY_WARNING_EVENTS', 10_000),
    maxOrchestrationActions: numberOr(dt.maxOrchestrationActions, 100_000),
    httpAsyncSleepMs: numberOr(
      ((dt.httpSettings ?? {}) as Record<string, unknown>).defaultAsyncRequestSleepTimeMilliseconds,
      30_000,
    ),
    httpTimeoutMs: 100_000,
  };
}
