/**
 * Reading sampled predictions back (lib/monitoring/samples.ts): a flush whose blob was stored but
 * whose write was reported failed (a lost answer) is written again under the next flush number, so
 * the same samples sit in two blobs; the window counts each prediction once.
 */
import { PredictionSampler } from '../../../lib/monitoring/sampler';
import { SampleStore } from '../../../lib/monitoring/samples';
import type { ArtifactStore } from '../../../lib/storage/blob';

/** Blob's put / list / getBuffer over a Map (only what SampleStore uses). */
function memoryBlobs() {
  const blobs = new Map<string, Buffer>();
  const store = {
    put: async (ref: { container: string; path: string }, body: string) => {
      const key = `${ref.container}/${ref.path}`;
      const bytes = Buffer.from(body);
      const had = blobs.get(key);
      if (had && !had.equals(bytes)) return { ok: false, reason: 'exists', uri: key };
      blobs.set(key, bytes);
      return { ok: true, uri: key, etag: '"1"', sha256: '', written: !had };
    },
    list: async function* (container: string, prefix = '') {
      for (const key of [...blobs.keys()].sort())
        if (key.startsWith(`${container}/${prefix}`)) yield { path: key.slice(container.length + 1) };
    },
    getBuffer: async (ref: { container: string; path: string }) => ({
      data: blobs.get(`${ref.container}/${ref.path}`)!,
      properties: {},
    }),
  } as unknown as Pick<ArtifactStore, 'put' | 'list' | 'getBuffer'>;
  return { blobs, store };
}

const T0 = Date.parse('2026-03-02T10:00:00.000Z');

describe('SampleStore.read', () => {
  it('counts a sample once when a write stored its blob but reported failure and was written again', async () => {
    const { blobs, store } = memoryBlobs();
    const samples = new SampleStore(store);
    let writes = 0;
    let t = T0;
    const sampler = new PredictionSampler({
      settingsOf: async () => ({ sampleRate: 1, hashFeatures: [], dropFeatures: [] }),
      // The first write lands, then its answer is lost: the sampler keeps the samples and retries.
      write: async (model, source, seq, batch) => {
        await samples.write(model, source, seq, batch);
        if (++writes === 1) throw new Error('connection reset after the blob was stored');
      },
      flushEveryMs: 60_000,
      flushEveryRows: 3,
      settingsTtlMs: 60_000,
      now: () => (t += 1000),
      random: () => 0,
    });
    const req = (i: number) => ({
      modelName: 'm',
      version: 1,
      variant: 'production',
      rows: [{ x: i }],
      predictions: [i],
    });
    sampler.sample(req(0)); // looks the settings up
    await new Promise((r) => setImmediate(r));
    const ids = [1, 2, 3].map((i) => sampler.sample(req(i))); // the 3rd row starts a flush, which "fails"
    await sampler.close();
    ids.push(sampler.sample(req(4)));
    await sampler.close();

    expect(writes).toBeGreaterThanOrEqual(2);
    expect(blobs.size).toBeGreaterThanOrEqual(2); // the same samples stored under two flush numbers
    const read = await samples.read('m', new Date(T0), new Date(T0 + 3_600_000));
    expect(read.map((s) => s.predictionId).sort()).toEqual([...ids].sort());
    expect(read.map((s) => s.predictions[0]).sort()).toEqual([1, 2, 3, 4]);
  });
});
