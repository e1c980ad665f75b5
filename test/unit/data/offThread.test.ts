import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { transformSync } from '@swc/core';
import { encodeColumnar } from '../../../lib/data/reading/columnar';
import { parseDatasetContract } from '../../../lib/contracts/datasetContract';
import type * as OffThread from '../../../lib/data/checking/offThread';
import { validateColumnarOffThread } from '../../../lib/data/checking/offThread';
import type { Column, Table } from '../../../lib/data/table';
import { emptyIssues } from '../../../lib/data/table';
import { createPrng } from '../../../lib/training/prng';
import { parse } from './helpers';

/**
 * The app runs compiled, and then validates on a worker thread. Jest runs TypeScript (inline), so
 * this test compiles lib/data to JavaScript in a scratch folder and drives the worker path there.
 */
const root = path.resolve(__dirname, '..', '..', '..');
const out = path.join(root, '.sluice', `offthread-test-${process.pid}`);

function compileLibData(): typeof OffThread {
  // The data layer (with its concept folders reading/, checking/, profiling/) and the contracts
  // beneath it (the dataset contract schema lives in lib/contracts).
  for (const dir of ['data', 'contracts']) {
    const src = path.join(root, 'lib', dir);
    for (const f of readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((n) =>
      n.endsWith('.ts'),
    )) {
      const code = transformSync(readFileSync(path.join(src, f), 'utf8'), {
        filename: path.basename(f),
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
      }).code;
      const target = path.join(out, 'lib', dir, f.replace(/\.ts$/, '.js'));
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, code);
    }
  }
  writeFileSync(
    path.join(out, 'lib', 'resources.json'),
    readFileSync(path.join(root, 'lib', 'resources.json')),
  );
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(out, 'lib', 'data', 'checking', 'offThread.js')) as typeof OffThread;
}

describe('validation on the worker thread (the compiled app)', () => {
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('gives the same report as inline validation, with the bytes transferred', async () => {
    const contract = parseDatasetContract({
      columns: [
        { name: 'x', type: 'number', max: 50 },
        { name: 'k', type: 'category', values: ['a', 'b'] },
      ],
    });
    const rows = (shift: number) =>
      Array.from({ length: 400 }, (_, i) => `${(i % 60) + shift},${i % 3 ? 'a' : 'b'}`).join('\n');
    const cur = await parse(`x,k\n${rows(5)}\n`, { contract });
    const ref = await parse(`x,k\n${rows(0)}\n`, { contract });
    const job = () => ({
      current: Buffer.concat(encodeColumnar(cur.table)),
      reference: Buffer.concat(encodeColumnar(ref.table)),
      contract,
      dataset: { rows: 0, columns: 0, sha256: 'abc' },
    });
    const inline = await validateColumnarOffThread(job());
    const compiled = compileLibData();
    const input = job();
    const viaWorker = await compiled.validateColumnarOffThread(input);
    expect(input.current.byteLength).toBe(0); // transferred to the worker, not copied
    expect(viaWorker.report).toEqual(inline.report);
    expect(viaWorker.report.violations[0]).toMatchObject({ rule: 'max', column: 'x' });
    // The worker is reused while busy and survives a second job.
    const again = await compiled.validateColumnarOffThread(job());
    expect(again.report).toEqual(inline.report);
  });

  it('shares a large table with a helper thread: the same report, the bytes shared, not copied', async () => {
    const contract = parseDatasetContract({
      columns: [
        { name: 'x', type: 'number', max: 50 },
        ...['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, type: 'number' as const })),
        { name: 'k', type: 'category', values: ['p', 'q'] },
      ],
    });
    // 200,000 rows × 7 built directly (no parse): a few hundred ms of column work to share.
    const rows = 200_000;
    const table = (shift: number): Table => {
      const rand = createPrng(7 + shift);
      const numeric = (name: string, scale: number): Column => ({
        name,
        type: 'number',
        values: Float64Array.from(
          { length: rows },
          () => Math.round((rand.next() * scale + shift) * 100) / 100,
        ),
        issues: emptyIssues(),
      });
      return {
        rows,
        columns: [
          numeric('x', 60),
          ...['a', 'b', 'c', 'd', 'e'].map((n, i) => numeric(n, 10 ** (i + 1))),
          {
            name: 'k',
            type: 'category',
            codes: Int32Array.from({ length: rows }, (_, i) => i % 3 && 1),
            dictionary: ['p', 'q'],
            issues: emptyIssues(),
          },
        ],
      };
    };
    const [cur, ref] = [table(5), table(0)];
    const inline = await validateColumnarOffThread({
      current: Buffer.concat(encodeColumnar(cur)),
      reference: Buffer.concat(encodeColumnar(ref)),
      contract,
      dataset: { rows: 0, columns: 0 },
    });
    const compiled = compileLibData();
    // The reference's profile, as an earlier validation stored it: only then are the columns shared.
    const key = { dataSha256: 'f'.repeat(64), contractSha256: 'c'.repeat(64) };
    const first = await compiled.validateColumnarOffThread({
      current: Buffer.concat(encodeColumnar(cur)),
      reference: Buffer.concat(encodeColumnar(ref)),
      referenceKey: key,
      contract,
      dataset: { rows: 0, columns: 0 },
    });
    expect(first.helperColumns).toBe(0); // profiling the reference's rows comes first, on one thread
    // Both threads started ahead, as the activity does while it downloads.
    compiled.warmValidationWorker({ bytes: 1e9 });
    expect(compiled.helperThreadId()).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const current = compiled.sharedConcat(encodeColumnar(cur));
    const job = {
      current,
      referenceProfile: first.referenceProfile!,
      referenceKey: key,
      contract,
      dataset: { rows: 0, columns: 0 },
    };
    const shared = await compiled.validateColumnarOffThread(job);
    expect(shared.helperColumns).toBeGreaterThan(0);
    expect(shared.helperColumns).toBeLessThan(7);
    expect(current.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(current.byteLength).toBeGreaterThan(0); // shared with both threads, still the caller's
    expect(JSON.stringify(shared.report)).toBe(JSON.stringify(inline.report));
    expect(shared.report.violations[0]).toMatchObject({ rule: 'max', column: 'x' });
    // Bad bytes fail the job with the validating thread's error; both threads serve the next job.
    const bad = compiled.sharedConcat([Buffer.from('not columnar at all')]);
    await expect(
      compiled.validateColumnarOffThread({ ...job, current: bad }, { share: true }),
    ).rejects.toMatchObject({ code: 'COLUMNAR_INVALID' });
    const again = await compiled.validateColumnarOffThread(job, { share: true });
    expect(JSON.stringify(again.report)).toBe(JSON.stringify(inline.report));
  });

  it('a job that cannot be posted fails at once, leaves nothing pending, and the thread it started still ends', async () => {
    const compiled = compileLibData();
    const contract = parseDatasetContract({ columns: [{ name: 'x', type: 'number' }] });
    const cur = await parse('x\n1\n2\n', { contract });
    const job = {
      current: Buffer.concat(encodeColumnar(cur.table)),
      contract,
      dataset: { rows: 0, columns: 0 },
    };
    // Start from no thread (an earlier test's thread ends after its idle time), so this job starts one.
    for (let waited = 0; compiled.validationWorkerThreadId() !== undefined && waited < 5_000; waited += 100)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(compiled.validationWorkerThreadId()).toBeUndefined();
    // A function does not survive structured cloning: the message is refused before it is sent.
    const unclonable = { ...job, dataset: { ...job.dataset, note: () => 'x' } } as unknown as typeof job;
    await expect(compiled.validateColumnarOffThread(unclonable)).rejects.toMatchObject({
      name: 'DataCloneError',
    });
    expect(compiled.validationWorkerThreadId()).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, compiled.WORKER_IDLE_MS + 500));
    expect(compiled.validationWorkerThreadId()).toBeUndefined();
    // Nothing was left half-registered: the next job runs normally.
    const ok = await compiled.validateColumnarOffThread(job);
    expect(ok.report.columns.map((c) => c.name)).toEqual(['x']);
  });

  it('a worker started ahead of a job that never comes ends after its grace period', async () => {
    const compiled = compileLibData();
    compiled.warmValidationWorker({ graceMs: 150 });
    expect(compiled.validationWorkerThreadId()).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(compiled.validationWorkerThreadId()).toBeUndefined();
  });

  it("the worker's module graph does not load zod (its start-up is on the path of every cold validation)", () => {
    compileLibData();
    const script = `require(${JSON.stringify(path.join(out, 'lib', 'data', 'checking', 'offThread.js'))});
      process.stdout.write(JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('node_modules'))));`;
    const loaded = JSON.parse(
      execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }),
    ) as string[];
    expect(loaded.filter((k) => /[\\/]zod[\\/]/.test(k))).toEqual([]);
    // The check sees node_modules at all: the compiled data layer does load them when it needs them.
    const withContract = `require(${JSON.stringify(path.join(out, 'lib', 'contracts', 'datasetContract.js'))});
      process.stdout.write(String(Object.keys(require.cache).some((k) => /[\\/]zod[\\/]/.test(k))));`;
    expect(execFileSync(process.execPath, ['-e', withContract], { cwd: root, encoding: 'utf8' })).toBe(
      'true',
    );
  });
});
