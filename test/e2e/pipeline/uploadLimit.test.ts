/**
 * Issue 13, "Chunked bodies are buffered whole": run uploads stream to Blob Storage, and past
 * INGEST_MAX_CONCURRENT_UPLOADS an upload is refused with 503 and Retry-After before any of it is
 * stored, through devhost over real HTTP. (bench/http/uploads.ts measures the memory.) Needs `dist/`.
 */
import { TEMP_PREFIX } from '../../../lib/storage/blob';
import type { PipelineHarness } from './harness';
import { startPipelineHarness, testPipeline } from './harness';

jest.setTimeout(240_000);

const PIPELINE = 'e2e-uploads';
const SMALL_CSV =
  'education,south,gender,experience,union,wage,age,race,occupation,sector,married\n' +
  Array.from(
    { length: 60 },
    (_, i) => `${10 + (i % 6)},0,female,${i % 20},0,${5 + (i % 9)},30,white,other,other,1`,
  ).join('\n');

/**
 * A chunked CSV body of about `megabytes` MB (no Content-Length), produced as it is read. After
 * `pauseAfterMb` MB it waits for `resume`: a host that buffered the whole body before the function
 * ran would then store nothing until the test gave up.
 */
function chunkedCsv(
  megabytes: number,
  pauseAfterMb: number,
  resume: Promise<void>,
): ReadableStream<Uint8Array> {
  const row = Buffer.from('12,0,male,10,0,7.5,31,white,other,other,1\n'.repeat(1600));
  const total = Math.ceil((megabytes * 1024 * 1024) / row.length);
  const pauseAt = total - Math.ceil((pauseAfterMb * 1024 * 1024) / row.length);
  let left = total;
  let first = true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (left === pauseAt) await resume;
      if (first) {
        first = false;
        controller.enqueue(
          Buffer.from('education,south,gender,experience,union,wage,age,race,occupation,sector,married\n'),
        );
      } else if (left-- > 0) controller.enqueue(row);
      else controller.close();
    },
  });
}

describe('chunked uploads stream to Blob under a concurrency limit (issue 13 load and bad input)', () => {
  let h: PipelineHarness;

  beforeAll(async () => {
    h = await startPipelineHarness({ env: { INGEST_MAX_CONCURRENT_UPLOADS: '1' } });
    await h.put(testPipeline(PIPELINE));
  });
  afterAll(async () => {
    await h?.stop();
  });

  const runsOf = async () =>
    ((await (await h.api('GET', `/api/runs?pipeline=${PIPELINE}`)).json()) as { id: string }[]).length;

  it('answers 503 with Retry-After past INGEST_MAX_CONCURRENT_UPLOADS, storing nothing, and takes the upload once a slot is free', async () => {
    const datasets = h.blobs.getContainerClient('datasets');
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    const big = fetch(`${h.url}/api/pipelines/${PIPELINE}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: chunkedCsv(90, 12, resumed),
      duplex: 'half',
    } as RequestInit);
    // The first upload holds the only slot while its blocks are being staged in a temp blob: with the
    // client paused after 12 of 90 MB, they can only get there if the body streams.
    await h.until(
      'the first upload to reach Blob Storage',
      async () => {
        for await (const b of datasets.listBlobsFlat({ prefix: TEMP_PREFIX, includeUncommitedBlobs: true }))
          if (b.name) return true;
        return undefined;
      },
      120_000,
    );
    const before = await runsOf();
    const refused = await h.api('POST', `/api/pipelines/${PIPELINE}/runs`, Buffer.from(SMALL_CSV), {
      'content-type': 'text/csv',
    });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await refused.json()) as { code: string }).code).toBe('too_many_uploads');
    expect(await runsOf()).toBe(before);
    const stored: string[] = [];
    for await (const b of datasets.listBlobsFlat({ prefix: `uploads/${PIPELINE}/` })) stored.push(b.name);
    expect(stored).toEqual([]); // the refused upload left nothing behind

    resume();
    const first = await big;
    expect(first.status).toBe(202);
    const { runId, source } = (await first.json()) as { runId: string; source: { bytes: number } };
    expect(source.bytes).toBeGreaterThan(90 * 1024 * 1024);
    await h.api('POST', `/api/runs/${runId}/cancel`);

    const again = await h.api('POST', `/api/pipelines/${PIPELINE}/runs`, Buffer.from(SMALL_CSV), {
      'content-type': 'text/csv',
    });
    expect(again.status).toBe(202);
    await h.api('POST', `/api/runs/${((await again.json()) as { runId: string }).runId}/cancel`);
  });
});
