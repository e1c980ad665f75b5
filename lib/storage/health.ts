import { performance } from 'node:perf_hooks';
import type { Config } from '../config';
import type { TokenCredential } from '@azure/identity';
import type { ArtifactStore } from './blob';
import type { CosmosStore } from './cosmos';
import { createHostTableService, pingTables } from './tableService';

export type Dependency = 'blob' | 'table' | 'cosmos';
export const dependencies: Dependency[] = ['blob', 'table', 'cosmos'];

/** One connectivity check; rejects when the dependency cannot serve the app. */
export type Probe = (signal: AbortSignal) => Promise<void>;
export type Probes = Record<Dependency, Probe>;

export interface ProbeResult {
  status: 'up' | 'down';
  /** Wall time of the check in milliseconds (one decimal). */
  latencyMs: number;
  code?: string;
  error?: string;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  checks: Record<Dependency, ProbeResult>;
  /** The dependencies that are down, in a fixed order. */
  failing: Dependency[];
}

/**
 * Checks on the app's own storage adapters (the Table service of the host is built on first probe).
 * With
 * `ensureLocal` (default), emulator-backed stores (a connection string, a Cosmos key) first create
 * their containers once, as the app does on first use, so a fresh devhost reports healthy; in Azure
 * nothing is ever created (Bicep owns the resources).
 */
export function storageProbes(
  config: Config,
  options: {
    artifacts: ArtifactStore;
    cosmos: CosmosStore;
    /** The Entra credential for Azure (asked only when a client needs one). */
    credential?: () => TokenCredential;
    ensureLocal?: boolean;
  },
): Probes {
  const { artifacts, cosmos } = options;
  const ensureLocal = options.ensureLocal ?? true;
  let tables: ReturnType<typeof createHostTableService> | undefined;
  return {
    blob: async (signal) => {
      if (ensureLocal && config.ARTIFACT_STORAGE_CONNECTION) await artifacts.ensureContainers();
      await artifacts.ping(signal);
    },
    table: (signal) => {
      tables ??= createHostTableService(
        config,
        config.AzureWebJobsStorage ? undefined : options.credential?.(),
      );
      return pingTables(tables, signal);
    },
    cosmos: async (signal) => {
      if (ensureLocal && config.COSMOS_KEY) await cosmos.ensure();
      await cosmos.ping(signal);
    },
  };
}

async function run(probe: Probe, timeoutMs: number): Promise<ProbeResult> {
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  // An SDK retry loop may not stop at once on abort: the race bounds the answer regardless.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' }));
    }, timeoutMs);
  });
  try {
    await Promise.race([Promise.resolve().then(() => probe(controller.signal)), timeout]);
    return { status: 'up', latencyMs: elapsed(started) };
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return {
      status: 'down',
      latencyMs: elapsed(started),
      code: typeof e?.code === 'string' ? e.code : undefined,
      error: typeof e?.message === 'string' ? e.message : String(err),
    };
  } finally {
    clearTimeout(timer);
  }
}

const elapsed = (started: number) => Math.round((performance.now() - started) * 10) / 10;

/** Runs every probe in parallel, each bounded by `timeoutMs`. */
export async function checkHealth(
  probes: Probes,
  options: { timeoutMs?: number } = {},
): Promise<HealthReport> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const results = await Promise.all(dependencies.map((d) => run(probes[d], timeoutMs)));
  const checks = Object.fromEntries(dependencies.map((d, i) => [d, results[i]!])) as Record<
    Dependency,
    ProbeResult
  >;
  const failing = dependencies.filter((d) => checks[d].status === 'down');
  return { status: failing.length ? 'unhealthy' : 'healthy', checks, failing };
}
