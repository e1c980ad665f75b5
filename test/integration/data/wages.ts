import type { DatasetContract } from '../../../lib/contracts/datasetContract';
import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import type { BlobDigest } from '../../../lib/data/datasets';
import type { DataDeps } from '../../../lib/data/datasets';
import { defaultLimits } from '../../../lib/data/limits';
import { ArtifactStore } from '../../../lib/storage/blob';
import type { BlobEmulator } from '../../support/emulators';
import { startAzuriteBlob } from '../../support/emulators';

/** The wages-like data the data-plane integration tests share: its contract, rows and CSV text. */

export const wagesContract: DatasetContract = parseDatasetContract({
  columns: [
    { name: 'age', type: 'integer', min: 18, max: 70 },
    { name: 'wage', type: 'number', min: 0 },
    { name: 'sector', type: 'category', values: ['a', 'b', 'c'] },
    { name: 'union', type: 'integer', values: [0, 1] },
  ],
  target: 'union',
  task: 'binary',
});

/** `n` rows; `shift` moves age, wage and sector so a shifted dataset drifts from an unshifted one. */
export function wagesRows(
  n: number,
  shift: number,
): { age: number; wage: number; sector: string; union: number }[] {
  return Array.from({ length: n }, (_, i) => ({
    age: 20 + ((i * 7) % 40) + shift * 10,
    wage: Number((5 + ((i * 13) % 20) + shift * 8).toFixed(2)),
    sector: ['a', 'b', 'c'][(i + shift) % 3]!,
    union: i % 4 === 0 ? 1 : 0,
  }));
}

export function wagesCsv(n: number, shift: number): string {
  const lines = wagesRows(n, shift).map((x) => `${x.age},${x.wage.toFixed(2)},${x.sector},${x.union}`);
  return `age,wage,sector,union\n${lines.join('\n')}\n`;
}

/**
 * Starts Azurite for the enclosing describe block and hands its store and data deps to `use` (small
 * inline and block sizes, so multi-block uploads are exercised on small data).
 */
export function useDataStore(
  contract: DatasetContract,
  use: (ctx: { store: ArtifactStore; deps: DataDeps }) => void,
): void {
  let azurite: BlobEmulator | undefined;
  beforeAll(async () => {
    azurite = await startAzuriteBlob();
    const store = ArtifactStore.fromConnectionString(azurite.connectionString, {
      inlineLimitBytes: 16 * 1024,
      blockSizeBytes: 64 * 1024,
    });
    await store.ensureContainers();
    use({ store, deps: { store, limits: defaultLimits, contractOf: async () => contract } });
  });
  afterAll(async () => {
    await azurite?.stop();
  });
}

/** Every blob in a container (name → sha256 metadata), to compare what storage holds across steps. */
export async function blobSnapshot(store: ArtifactStore, container: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const b of store.service.getContainerClient(container).listBlobsFlat({ includeMetadata: true }))
    out[b.name] = b.metadata?.sha256 ?? '';
  return out;
}

/** The ingest activity's source for a stored raw upload. */
export function uploadSource(upload: BlobDigest, format: 'csv' | 'jsonl' | 'parquet') {
  return {
    kind: 'upload' as const,
    uri: upload.uri,
    sha256: upload.sha256,
    bytes: upload.bytes,
    format,
  };
}

/**
 * A blob dropped into the datasets container by hand (`datasets/incoming/<name>`, not content-
 * addressed), as a run's `source.blob` names it: runs read datasets from that container only.
 */
export async function incoming(
  store: ArtifactStore,
  name: string,
  data: Uint8Array,
): Promise<{ uri: string; sha256: string }> {
  const written = await store.put({ container: 'datasets', path: `incoming/${name}` }, data, {
    condition: 'overwrite',
  });
  if (!written.ok) throw new Error(`could not write datasets/incoming/${name}`);
  return { uri: written.uri, sha256: written.sha256 };
}
