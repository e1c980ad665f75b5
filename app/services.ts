import { loadConfig } from '../lib/config';
import type { Services } from '../lib/services';
import { createServices } from '../lib/services';

/**
 * The app's one per-process memo of its services. The Functions host (and devhost) loads every
 * trigger, orchestrator and activity file into one Node process, and all of them import this
 * module, so the settings are parsed and every client is built once, on first use. A failure is
 * not kept: the next call builds again (settings fixed, an emulator back up).
 *
 * Only functions/ and activities/ import this; lib/ stays free of process state and tests build
 * their own services with createServices.
 */

let built: Promise<Services> | undefined;
let ready: Promise<Services> | undefined;

/** The services, built but not prepared: the health check probes storage before anything is created. */
export function getBuiltServices(): Promise<Services> {
  built ??= (async () => createServices(loadConfig(), { prepare: false }))().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return built;
}

/** The services, with the local emulators' containers created (a no-op in Azure). */
export function getServices(): Promise<Services> {
  ready ??= getBuiltServices()
    .then(async (services) => {
      await services.prepare();
      return services;
    })
    .catch((err: unknown) => {
      ready = undefined;
      throw err;
    });
  return ready;
}

/**
 * Makes a handler from the services on each call (handlers are cheap closures; the services are
 * built once). For HTTP and timer triggers: `handler: withServices((s) => listRuns(s))`.
 */
export function withServices<A extends unknown[], R>(
  factory: (services: Services) => (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args) => factory(await getServices())(...args);
}
