/**
 * The fake `@azure/functions-core` module (durable-host-spec §2.3). `@azure/functions` requires it
 * lazily at the app's first registration and caches the answer forever, so the shim must be in place
 * before any app file loads; otherwise the library silently switches to "test mode" and registers nothing.
 */
import Module from 'node:module';
import type { FunctionMetadata } from '../contracts';

export type CoreLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type CoreLogCategory = 'user' | 'system' | 'customMetric';

/** The library's `ProgrammingModel` (one per copy of `@azure/functions` in the app). */
export interface ProgrammingModelLike {
  name: string;
  version: string;
  getInvocationModel(coreCtx: unknown): InvocationModelLike | Promise<InvocationModelLike>;
  getCapabilities?(capabilities: Record<string, string>): Promise<Record<string, string>>;
}

export interface InvocationModelLike {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(
    context: unknown,
    inputs: unknown[],
    callback: (...args: unknown[]) => unknown,
  ): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}

export interface RpcTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  int?: number | null;
  double?: number | null;
  http?: Record<string, unknown> | null;
  [key: string]: unknown;
}

export interface RpcInvocationResponse {
  invocationId?: string;
  outputData?: { name?: string; data?: RpcTypedData | null }[];
  returnValue?: RpcTypedData | null;
}

export type HookName = 'appStart' | 'appTerminate' | 'preInvocation' | 'postInvocation' | 'log';
export type HookCallback = (context: Record<string, unknown>) => unknown;

export interface CapturedRegistration {
  metadata: FunctionMetadata;
  callback: (...args: unknown[]) => unknown;
  /** The programming model current when the function registered: the copy of `@azure/functions` that owns it. */
  programmingModel: ProgrammingModelLike | undefined;
}

/** Everything the app handed to the core module while it loaded (and afterwards). */
export interface CoreCapture {
  registrations: CapturedRegistration[];
  hooks: Record<HookName, HookCallback[]>;
  programmingModel(): ProgrammingModelLike | undefined;
  /** Where `coreApi.log` and unattributed library logs go; the host replaces it once its logger exists. */
  systemLog: (level: CoreLogLevel, category: CoreLogCategory, message: string) => void;
}

class Disposable {
  #callOnDispose: (() => unknown) | undefined;
  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((item) => item.dispose()));
  }
  dispose(): unknown {
    const fn = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return fn?.();
  }
}

const hookNames: readonly HookName[] = ['appStart', 'appTerminate', 'preInvocation', 'postInvocation', 'log'];

let installed: CoreCapture | undefined;

/**
 * Makes `require('@azure/functions-core')` resolve to a capturing core API, exactly as the Node worker
 * does (a Proxy on `Module.prototype.require`). Idempotent: a second call returns the same capture.
 */
export function installCoreModuleShim(hostVersion = '4.0.0-devhost'): CoreCapture {
  if (installed) return installed;
  let currentModel: ProgrammingModelLike | undefined;
  const capture: CoreCapture = {
    registrations: [],
    hooks: { appStart: [], appTerminate: [], preInvocation: [], postInvocation: [], log: [] },
    programmingModel: () => currentModel,
    systemLog: (level, category, message) => {
      if (level === 'warning' || level === 'error' || level === 'critical')
        console.error(`[${category}] ${message}`);
    },
  };

  const coreApi = {
    version: '3.10.1',
    hostVersion,
    Disposable,
    setProgrammingModel(model: ProgrammingModelLike): void {
      currentModel = model;
    },
    getProgrammingModel(): ProgrammingModelLike | undefined {
      return currentModel;
    },
    registerFunction(metadata: FunctionMetadata, callback: (...args: unknown[]) => unknown): Disposable {
      const id = (metadata.functionId ?? metadata.name).toLowerCase();
      if (
        capture.registrations.some((r) => (r.metadata.functionId ?? r.metadata.name).toLowerCase() === id)
      ) {
        throw new Error(
          `A function with id "${metadata.functionId ?? metadata.name}" has already been registered.`,
        );
      }
      const registration: CapturedRegistration = { metadata, callback, programmingModel: currentModel };
      capture.registrations.push(registration);
      return new Disposable(() => {
        const index = capture.registrations.indexOf(registration);
        if (index >= 0) capture.registrations.splice(index, 1);
      });
    },
    registerHook(name: string, callback: HookCallback): Disposable {
      if (!hookNames.includes(name as HookName)) {
        const error = new RangeError(`Unrecognized hook "${name}"`);
        (error as RangeError & { isAzureFunctionsSystemError: boolean }).isAzureFunctionsSystemError = true;
        throw error;
      }
      const list = capture.hooks[name as HookName];
      list.push(callback);
      return new Disposable(() => {
        const index = list.indexOf(callback);
        if (index >= 0) list.splice(index, 1);
      });
    },
    log(level: CoreLogLevel, category: CoreLogCategory, message: string): void {
      capture.systemLog(level, category, message);
    },
  };

  const proto = Module.prototype as unknown as { require: (id: string) => unknown };
  proto.require = new Proxy(proto.require, {
    apply(target, thisArg, args: unknown[]) {
      return args[0] === '@azure/functions-core' ? coreApi : Reflect.apply(target, thisArg, args);
    },
  });
  installed = capture;
  return capture;
}
