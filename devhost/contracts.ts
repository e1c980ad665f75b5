/**
 * The seams between devhost's parts. The app loader and HTTP front (devhost/app, devhost/http),
 * the embedded services (devhost/services) and the Durable engine (devhost/durable) are built
 * against these types, so each can be tested on its own and composed in devhost/host.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostClock } from './clock/clock';
import type { HostKeys } from './http/keys';

/** One binding of captured function metadata, as `@azure/functions` passes it to `registerFunction`. */
export interface BindingMetadata {
  type: string;
  name: string;
  direction: 'in' | 'out' | 'inout' | string;
  [key: string]: unknown;
}

export interface FunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, BindingMetadata>;
  retryOptions?: unknown;
  [key: string]: unknown;
}

export type TriggerKind = 'http' | 'timer' | 'orchestration' | 'activity' | 'entity' | 'other';

/** A function the app registered, captured by the fake `@azure/functions-core` module. */
export interface RegisteredFunction {
  name: string;
  kind: TriggerKind;
  metadata: FunctionMetadata;
  /** Key in `metadata.bindings` of the trigger binding (its `type` ends in "Trigger"). */
  triggerBindingName: string;
  triggerBinding: BindingMetadata;
  /** Key in `metadata.bindings` of a `durableClient` input, when the function has one. */
  durableClientBindingName?: string;
  /** The callback given to `registerFunction` (already wrapped by durable-functions for df.app.*). */
  callback: (...args: unknown[]) => unknown;
}

export interface FunctionRegistry {
  all(): RegisteredFunction[];
  /** Case-insensitive, as function names are in the Functions host. */
  get(name: string): RegisteredFunction | undefined;
  byKind(kind: TriggerKind): RegisteredFunction[];
}

/** What devhost asks the invoker to run. Values are plain decoded JS values, not RPC typed data. */
export type InvocationInput =
  /** The orchestration trigger payload object of durable-host-spec §5.1 (the invoker sends it as `{string: JSON}`). */
  | { kind: 'orchestration'; payload: unknown }
  /** The decoded activity input (§6.1); `undefined` means no input. */
  | { kind: 'activity'; input: unknown }
  /** Entity batch request (spec Appendix B). */
  | { kind: 'entity'; batch: unknown }
  /** Host's TimerInfo JSON (PascalCase, §4.2); the library camel-cases it. */
  | { kind: 'timer'; timerInfo: unknown }
  /** `POST /admin/functions/{name}` input for other non-HTTP triggers. */
  | { kind: 'other'; input: unknown };

/**
 * Runs one invocation and resolves with the handler's decoded return value (for an orchestrator:
 * the `{isDone, actions, output, customStatus, schemaVersion}` object). Rejects with what the
 * handler threw, normalized to an Error (the original value as `cause` when it was not an Error).
 * Injects the Durable client binding data when the function has a `durableClient` input.
 */
export type Invoker = (
  fn: RegisteredFunction,
  input: InvocationInput,
  options?: { invocationId?: string },
) => Promise<unknown>;

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A handler the HTTP front consults for the host's paths under `/runtime/webhooks/` (the Durable HTTP API). */
export interface HttpExtension {
  /** Returns true when it handled (answered) the request. `body` is the fully read request body. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<boolean>;
  /**
   * Asked before the body is read: false when the request is the extension's and its key does not
   * open it, so the host answers an empty 401 without holding a byte of the body. Absent: admitted.
   */
  admits?(req: IncomingMessage, url: URL): boolean;
}

export interface DurableEngineOptions {
  registry: FunctionRegistry;
  invoke: Invoker;
  /** `extensions.durableTask.hubName` from host.json, `%SETTING%` already resolved. */
  hubName: string;
  /** The whole parsed host.json (for maxConcurrent* and other durableTask settings). */
  hostJson: Record<string, unknown>;
  /**
   * Data folder: the task hub is persisted in `<dataDir>/durable/<hub>.sqlite`; `null` keeps it in memory.
   */
  dataDir: string | null;
  /**
   * The embedded Azurite's Table storage, where devhost versions before the SQLite store kept the task
   * hub: imported once, on the first start on a data folder. Undefined: nothing to import.
   */
  storageConnectionString?: string;
  /** Origin of the devhost HTTP front, e.g. `http://localhost:7071`. */
  baseUrl: string;
  /**
   * Keys in force (`--keys`): the Durable HTTP API then takes only the master key or the
   * `durabletask_extension` system key, and the management URLs carry that key as `code=`.
   */
  keys?: HostKeys;
  /** devhost's movable clock (a test facility, devhost/clock); default the wall clock. */
  clock?: HostClock;
  log: Logger;
}

export interface DurableEngine extends HttpExtension {
  /** The `durableClient` binding data object of spec §8 (taskHubName, creationUrls, managementUrls, rpcBaseUrl…). */
  clientBindingData(): Record<string, unknown>;
  /** Restores persisted instances and resumes pending work. */
  start(): Promise<void>;
  /** Stops dispatching, waits (bounded) for in-flight episodes, persists. */
  stop(): Promise<void>;
}

export type CreateDurableEngine = (options: DurableEngineOptions) => Promise<DurableEngine>;

export interface EmbeddedServicesOptions {
  /** Folder for persisted emulator data; `null` keeps everything in memory (tests). */
  dataDir: string | null;
  /** Fixed ports; 0 or undefined picks a free port. */
  ports?: { blob?: number; queue?: number; table?: number; cosmos?: number };
  log: Logger;
  /** The caller already holds the data folder's `services.lock` (the host takes it for everything in it). */
  dataDirLocked?: boolean;
}

export interface EmbeddedServices {
  /** Settings the app sees (AzureWebJobsStorage, ARTIFACT_STORAGE_CONNECTION, COSMOS_ENDPOINT, COSMOS_KEY, …). */
  env: Record<string, string>;
  storageConnectionString: string;
  cosmosEndpoint: string;
  cosmosKey: string;
  /** Flushes state (Cosmos snapshot) and stops the emulators. */
  stop(): Promise<void>;
}
