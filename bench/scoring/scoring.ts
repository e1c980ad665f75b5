/**
 * Scoring throughput: `POST /api/models/{name}/predict` (one row, 20 features, logistic
 * regression) through devhost, next to a bare node:http server doing the same parse/validate/score
 * work, to the library floor (floor.ts: the @azure/functions invocation round trip with no host
 * around it) and to the streaming floor (streamingFloor.ts: the same with `enableHttpStream`, as
 * Sluice runs, so the request and response go through the library's HTTP proxy), in the same run. Each server is pinned to CPU 0 and autocannon to CPU 1 when `taskset` is
 * available (2-core machines), so "one core" is literal. Prints req/s, p50/p99 and the ratios.
 *
 * Then the same through devhost with the model stored as the worker stores it now (an MLflow folder
 * scored through ONNX), and modelPaths.ts: JSON vs ONNX per request for small batches, and the
 * evaluation of two models on 100,000 holdout rows.
 *
 * Last, rollout.ts: the handler under a live canary with traffic stats against direct serving.
 *
 *   npm run bench:scoring          (BENCH_SECONDS=8 BENCH_CONNECTIONS=50 by default;
 *                                   BENCH_PROFILE=DIR saves a CPU profile of devhost)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CosmosClient } from '@azure/cosmos';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { COSMOS_EMULATOR_KEY, AZURITE_ACCOUNT, AZURITE_KEY } from '../../devhost/services/wellKnown';
import { ModelRegistry } from '../../lib/registry/registry';
import { CosmosStore } from '../../lib/storage/cosmos';
import { ArtifactStore } from '../../lib/storage/blob';
import { serializeModel } from '../../lib/training/models/artifact';
import { createScoreHandler } from '../../functions/support/scoreHandler';
import { inMemoryProductionModels } from './memoryModels';
import { benchModelPaths } from './modelPaths';
import { benchRollout } from './rollout';
import { storeModelFiles } from '../../lib/mlmodel/blobFolder';
import { builtInModelFolder } from '../../lib/training/models/mlflowFolder';
import { repoRoot, startDevhost } from '../../test/support/devhost';
import { freePort } from '../../test/support/emulators';
import { logisticModel, sampleRow } from '../../test/support/lrModel';
import { autocannon, type AutocannonResult } from '../support/autocannon';

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const body = JSON.stringify({ rows: [sampleRow(20, 3)] });

const hasTaskset = spawnSync('taskset', ['-V']).status === 0;
function pin(pid: number | undefined, cpu: number): void {
  if (hasTaskset && pid)
    spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Starts `dist/bench/scoring/<name>.js`, which prints `<name> ready <port>`. */
function startServer(
  name: 'bare' | 'floor' | 'streamingFloor',
): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [path.join(repoRoot, `dist/bench/scoring/${name}.js`)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = new RegExp(`${name} ready (\\d+)`).exec(out);
      if (m) resolve({ url: `http://127.0.0.1:${m[1]}/api/models/bench/predict`, proc });
    });
    proc.once('exit', (code) => reject(new Error(`${name} server exited with ${String(code)}`)));
  });
}

/** CPU seconds (user + system) the process has used so far, from /proc; undefined off Linux. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}
const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

interface Measured extends AutocannonResult {
  /** Share of one core the server used during the timed run (1 = fully busy). */
  serverCpu?: number;
}

async function measure(url: string, serverPid: number | undefined): Promise<Measured> {
  const opts = {
    url,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body,
    connections,
  };
  await autocannon({ ...opts, duration: 2 });
  const cpu0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  const result: Measured = await autocannon({ ...opts, duration: seconds });
  const cpu1 = cpuSeconds(serverPid);
  if (cpu0 !== undefined && cpu1 !== undefined)
    result.serverCpu = (cpu1 - cpu0) / ((performance.now() - t0) / 1000);
  return result;
}

/** Registers a 20-feature model in devhost's Cosmos emulator and Azurite and makes it production. */
async function seed(cosmosPort: number, blobPort: number): Promise<void> {
  const client = new CosmosClient({
    endpoint: `http://127.0.0.1:${cosmosPort}`,
    key: COSMOS_EMULATOR_KEY,
    connectionPolicy: { enableEndpointDiscovery: false },
  });
  const cosmos = new CosmosStore(client);
  await cosmos.ensure();
  const blob = ArtifactStore.fromConnectionString(
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT};`,
  );
  await blob.ensureContainers();
  const { bytes, digest } = serializeModel(logisticModel(20, 7));
  const put = await blob.put({ container: 'models', path: 'bench/v1.json' }, bytes);
  if (!put.ok) throw new Error('could not store the model artifact');
  const registry = new ModelRegistry(cosmos.container('models'));
  const { version } = await registry.registerVersion({
    modelName: 'bench',
    modelDigest: digest,
    artifactUri: put.uri,
    datasetDigest: '0'.repeat(64),
    metrics: {},
    trainingSpec: {},
    algorithm: 'logistic_regression',
    runId: 'bench',
  });
  await registry.moveAlias({
    modelName: 'bench',
    alias: 'production',
    to: version.version,
    by: 'bench',
    reason: 'bench',
  });
  // The same model as the built-in worker stores it now: an MLflow folder, served through ONNX.
  const { files, artifact } = builtInModelFolder(bytes);
  const folder = await storeModelFiles(blob, files);
  const onnxVersion = await registry.registerVersion({
    modelName: 'bench-onnx',
    modelDigest: folder.digest,
    artifactUri: folder.uri,
    artifact,
    datasetDigest: '0'.repeat(64),
    metrics: {},
    trainingSpec: {},
    algorithm: 'logistic_regression',
    runId: 'bench',
  });
  await registry.moveAlias({
    modelName: 'bench-onnx',
    alias: 'production',
    to: onnxVersion.version.version,
    by: 'bench',
    reason: 'bench',
  });
  client.dispose();
}

/** The scoring function's own cost: its handler called directly with a Functions HttpRequest. */
async function handlerOnly(): Promise<{ n: number; perRequestUs: number }> {
  // The registry and Blob answer from memory: only the function's own work is measured.
  const models = inMemoryProductionModels();
  const handler = createScoreHandler(async () => models);
  const context = new InvocationContext({
    invocationId: 'bench',
    functionName: 'score',
    logHandler: () => undefined,
  });
  const request = () =>
    new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/models/bench/predict',
      params: { name: 'bench' },
      headers: { 'content-type': 'application/json' },
      body: { string: body },
    });
  for (let i = 0; i < 2000; i++) await handler(request(), context);
  const n = 20_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await handler(request(), context);
  return { n, perRequestUs: Number(process.hrtime.bigint() - t0) / 1000 / n };
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

async function main(): Promise<void> {
  const [cosmosPort, blobPort] = [await freePort(), await freePort()];
  const bare = await startServer('bare');
  const floor = await startServer('floor');
  const streamingFloor = await startServer('streamingFloor');
  const devhost = await startDevhost({
    app: path.join(repoRoot, 'bench/scoring/app'),
    args: ['--cosmos-port', String(cosmosPort), '--blob-port', String(blobPort)],
    // BENCH_PROFILE=DIR writes a V8 CPU profile of the devhost process there when it stops.
    env: process.env.BENCH_PROFILE
      ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE)}` }
      : {},
  });
  try {
    await seed(cosmosPort, blobPort);
    const url = `http://127.0.0.1:${devhost.port}/api/models/bench/predict`;
    const onnxUrl = `http://127.0.0.1:${devhost.port}/api/models/bench-onnx/predict`;
    for (const u of [url, onnxUrl]) {
      const check = await fetch(u, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (check.status !== 200) throw new Error(`devhost answered ${check.status}: ${await check.text()}`);
    }
    devhost.discardOutput();
    pin(process.pid, 1);
    pin(bare.proc.pid, 0);
    pin(floor.proc.pid, 0);
    pin(streamingFloor.proc.pid, 0);
    pin(devhost.proc.pid, 0);

    const bareResult = await measure(bare.url, bare.proc.pid);
    const floorResult = await measure(floor.url, floor.proc.pid);
    const streamingFloorResult = await measure(streamingFloor.url, streamingFloor.proc.pid);
    const devhostResult = await measure(url, devhost.proc.pid);
    const devhostOnnxResult = await measure(onnxUrl, devhost.proc.pid);
    const inProcess = await handlerOnly();
    console.log(
      `bench:scoring  POST predict, 1 row x 20 features, logistic regression; ${connections} connections, ${seconds}s after 2s warm-up; ` +
        (hasTaskset ? 'server on CPU 0, load generator on CPU 1' : 'not pinned (no taskset)'),
    );
    console.log(
      `${'target'.padEnd(16)}${'req/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'server CPU'.padStart(12)}`,
    );
    for (const [name, r] of [
      ['bare node:http', bareResult],
      ['library floor', floorResult],
      ['streaming floor', streamingFloorResult],
      ['devhost', devhostResult],
      ['devhost, ONNX', devhostOnnxResult],
    ] as const) {
      const errors = r.errors + r.timeouts + r.non2xx;
      console.log(
        `${name.padEnd(16)}${fmt(r.requests.average).padStart(10)}${fmt(r.latency.p50, 2).padStart(9)}${fmt(r.latency.p99, 2).padStart(9)}${String(errors).padStart(8)}${(r.serverCpu === undefined ? '-' : `${fmt(r.serverCpu * 100)}%`).padStart(12)}`,
      );
    }
    console.log(
      `score handler alone (no HTTP, same process): ${fmt(inProcess.perRequestUs, 1)} µs/request over ${fmt(inProcess.n)} requests (${fmt(1e6 / inProcess.perRequestUs)} req/s on one core)`,
    );
    const share = devhostResult.requests.average / Math.max(1, bareResult.requests.average);
    const floorShare = floorResult.requests.average / Math.max(1, bareResult.requests.average);
    const goal = (devhostResult.requests.average >= 20_000 && devhostResult.latency.p99 < 10) || share >= 0.5;
    console.log(
      `library floor / bare: ${fmt(floorShare, 2)}x (the @azure/functions invocation round trip alone, no host, streaming off)`,
    );
    console.log(
      `streaming floor / library floor: ${fmt(streamingFloorResult.requests.average / Math.max(1, floorResult.requests.average), 2)}x (the library's HTTP streaming proxy hop, enableHttpStream, with no host)`,
    );
    console.log(
      `devhost / library floor: ${fmt(devhostResult.requests.average / Math.max(1, floorResult.requests.average), 2)}x (devhost streams, this floor does not)`,
    );
    console.log(
      `devhost / streaming floor: ${fmt(devhostResult.requests.average / Math.max(1, streamingFloorResult.requests.average), 2)}x (the host's own share of the cost with streaming on)`,
    );
    console.log(
      `devhost / bare: ${fmt(share, 2)}x req/s; goal (>= 20,000 req/s and p99 < 10 ms, or >= 0.5x bare): ${goal ? 'met' : 'NOT met'}`,
    );
    console.log(
      `devhost ONNX / devhost JSON: ${fmt(devhostOnnxResult.requests.average / Math.max(1, devhostResult.requests.average), 2)}x req/s (the same model as an MLflow folder through onnxruntime-node)`,
    );
    await benchModelPaths();
    await benchRollout();
  } finally {
    await devhost.stop();
    bare.proc.kill('SIGTERM');
    floor.proc.kill('SIGTERM');
    streamingFloor.proc.kill('SIGTERM');
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
