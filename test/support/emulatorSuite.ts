/**
 * The emulators one integration test file runs on, started in its `beforeAll` and stopped in its
 * `afterAll`: the Cosmos emulator with the app's database and containers created (a CosmosStore
 * on it, its client built by the app's own `createCosmosClient`), and Azurite's Blob service when
 * asked. Call it at the top of the file, before the file's own hooks (they run in order), and read
 * the fields inside hooks and tests: they are set once `beforeAll` has run.
 *
 * Jest-only (it registers hooks); emulators.ts stays free of Jest for the benchmarks.
 */
import type { CosmosStore } from '../../lib/storage';
import type { BlobEmulator, CosmosEmulator } from './emulators';
import { cosmosStoreOn, startAzuriteBlob, startCosmos } from './emulators';

export interface EmulatorSuite {
  /** The Cosmos emulator (endpoint, key, a raw client). */
  readonly emulator: CosmosEmulator;
  /** The app's CosmosStore on it, `ensure()`d: every container of lib/resources.json exists. */
  readonly cosmos: CosmosStore;
  /** Azurite's Blob service; only with `{ blob: true }`. */
  readonly blob: BlobEmulator;
}

export function useEmulators(options: { blob?: boolean } = {}): EmulatorSuite {
  let emulator: CosmosEmulator | undefined;
  let cosmos: CosmosStore | undefined;
  let blob: BlobEmulator | undefined;
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started: read it inside a hook or test`);
    return value;
  };
  beforeAll(async () => {
    [emulator, blob] = await Promise.all([startCosmos(), options.blob ? startAzuriteBlob() : undefined]);
    cosmos = cosmosStoreOn(emulator);
    await cosmos.ensure();
  }, 60_000);
  afterAll(async () => {
    cosmos?.client.dispose();
    await Promise.all([emulator?.stop(), blob?.stop()]);
  });
  return {
    get emulator() {
      return need(emulator, 'the Cosmos emulator');
    },
    get cosmos() {
      return need(cosmos, 'the CosmosStore');
    },
    get blob() {
      return need(blob, options.blob ? 'Azurite' : 'Azurite (ask with { blob: true })');
    },
  };
}
