/**
 * The training job process. The local backend runs it as a child process
 * (`node dist/worker/trainingJob.js --job <jobId>`, storage settings in the environment); an Azure
 * ML command job runs it with mounted files (`--request <file> --dataset <file> --out <dir>`).
 *
 * The main thread does the I/O: it reads the request and the dataset (SHA-256 verified), writes
 * status, heartbeat, log and metrics, watches for a cancel marker and the time limit, and stores the
 * model. Training runs on a worker thread, so the heartbeat keeps beating while a long iteration
 * blocks that thread, and cancel or the time limit can stop it at once.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { decodeColumnar } from '../lib/data/reading/columnar';
import { ensureError } from '../lib/errors';
import resources from '../lib/resources.json';
import type { ArtifactStore } from '../lib/storage/blob';
import type { JobResult, TrainingJobRequest } from '../lib/contracts/trainingJob';
import { jobPath } from '../lib/training/backends/types';
import { JobStatusWriter, storeFromEnv } from './jobStatus';
import { trainingJobRequestSchema } from '../lib/contracts/trainingJob';
import { datasetFromTable } from '../lib/training/dataset';
import { storeModelFiles } from '../lib/mlmodel/blobFolder';
import type { BuiltInModelFolder } from '../lib/training/models/mlflowFolder';
import { MODEL_CONTENT_TYPE } from '../lib/training/models/artifact';
import { builtInModelFolder, inlineArtifact } from '../lib/training/models/mlflowFolder';
import { trainModel } from '../lib/training/models/train';
import type { TrainingSpec } from '../lib/contracts/trainingSpec';

/** Folder mode: the model folder's place inside the job's output folder. */
const MODEL_SUBFOLDER = 'model';

/** Messages from the trainer thread. */
type TrainerMessage =
  | { type: 'log'; line: string }
  | { type: 'progress'; fraction: number; iteration: number; loss?: number; validationLoss?: number }
  | {
      type: 'done';
      model: string;
      /**
       * The model's MLflow folder, built on the trainer thread (the ONNX export can take seconds);
       * absent when the model cannot be ONNX (a feature named like a graph output): then the lone
       * JSON is stored, as before model folders.
       */
      folder?: BuiltInModelFolder;
      summary: Omit<JobResult, 'modelUri' | 'modelDigest'>;
    }
  | { type: 'error'; code: string; message: string };

/** Where a job's files go: Blob (local backend) or a mounted folder (Azure ML). */
interface JobSink {
  readRequest(): Promise<TrainingJobRequest>;
  readDataset(request: TrainingJobRequest): Promise<Uint8Array>;
  write(name: string, body: string): Promise<void>;
  cancelRequested(): Promise<boolean>;
  /** Stores the trained model; what the job result says of it. */
  storeModel(json: Buffer, folder: BuiltInModelFolder | undefined): Promise<StoredModel>;
}

type StoredModel = Pick<JobResult, 'modelUri' | 'modelDigest' | 'artifact'>;

class BlobSink implements JobSink {
  private readonly container = resources.blobContainers.jobs;
  constructor(
    private readonly store: ArtifactStore,
    private readonly jobId: string,
  ) {}
  async readRequest(): Promise<TrainingJobRequest> {
    const { value } = await this.store.getJson({
      container: this.container,
      path: jobPath(this.jobId, 'request.json'),
    });
    return trainingJobRequestSchema.parse(value);
  }
  async readDataset(request: TrainingJobRequest): Promise<Uint8Array> {
    return (await this.store.getBuffer(request.dataset.uri, { sha256: request.dataset.sha256 })).data;
  }
  async write(name: string, body: string): Promise<void> {
    await this.store.put({ container: this.container, path: jobPath(this.jobId, name) }, body, {
      contentType: name.endsWith('.json') ? 'application/json' : 'text/plain; charset=utf-8',
      condition: 'overwrite',
    });
  }
  cancelRequested(): Promise<boolean> {
    return this.store.exists({ container: this.container, path: jobPath(this.jobId, 'cancel.json') });
  }
  /** The MLflow model folder (MLmodel, model.onnx, model.json) under its manifest digest. */
  async storeModel(json: Buffer, folder: BuiltInModelFolder | undefined): Promise<StoredModel> {
    if (!folder) {
      const legacy = await this.store.putContentAddressed(resources.blobContainers.models, json, {
        contentType: MODEL_CONTENT_TYPE,
      });
      return { modelUri: legacy.uri, modelDigest: legacy.sha256 };
    }
    const stored = await storeModelFiles(this.store, folder.files);
    // A wide model's description stays in its folder (payloads are bounded); readers derive it.
    const artifact = inlineArtifact(folder.artifact);
    return { modelUri: stored.uri, modelDigest: stored.digest, ...(artifact ? { artifact } : {}) };
  }
}

class FolderSink implements JobSink {
  constructor(
    private readonly requestFile: string,
    private readonly datasetFile: string,
    private readonly out: string,
    private readonly outUri: string | undefined,
  ) {
    mkdirSync(out, { recursive: true });
  }
  async readRequest(): Promise<TrainingJobRequest> {
    return trainingJobRequestSchema.parse(JSON.parse(readFileSync(this.requestFile, 'utf8')));
  }
  async readDataset(request: TrainingJobRequest): Promise<Uint8Array> {
    const bytes = readFileSync(this.datasetFile);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== request.dataset.sha256) {
      throw Object.assign(new Error(`dataset digest ${actual} does not match ${request.dataset.sha256}`), {
        code: 'BLOB_DIGEST_MISMATCH',
      });
    }
    return bytes;
  }
  async write(name: string, body: string): Promise<void> {
    const tmp = join(this.out, `.${name}.tmp`);
    writeFileSync(tmp, body);
    renameSync(tmp, join(this.out, name));
  }
  async cancelRequested(): Promise<boolean> {
    return existsSync(join(this.out, 'cancel.json'));
  }
  /**
   * The model folder's files go to `<out>/model/` (apart from the job's status and log files, which
   * are not part of the model); `model.json` also stays at `<out>/model.json`, and the result names
   * it with its SHA-256. The Azure ML backend, which has the Blob access this job lacks, checks the
   * folder against that digest and stores it, replacing this result's model with the folder
   * (lib/training/backends/azuremlWorkerModel.ts); without `model/` it keeps this JSON result.
   */
  async storeModel(json: Buffer, folder: BuiltInModelFolder | undefined): Promise<StoredModel> {
    if (folder) mkdirSync(join(this.out, MODEL_SUBFOLDER), { recursive: true });
    for (const f of folder?.files ?? []) {
      const tmp = join(this.out, MODEL_SUBFOLDER, `.${f.path}.tmp`);
      writeFileSync(tmp, f.bytes);
      renameSync(tmp, join(this.out, MODEL_SUBFOLDER, f.path));
    }
    await this.write('model.json', json.toString('utf8'));
    const modelUri = this.outUri
      ? `${this.outUri.replace(/\/?$/, '/')}model.json`
      : join(this.out, 'model.json');
    return { modelUri, modelDigest: createHash('sha256').update(json).digest('hex') };
  }
}

async function runJob(sink: JobSink, jobIdHint: string | undefined): Promise<number> {
  const heartbeatMs = Number(process.env.SLUICE_HEARTBEAT_MS ?? 2_000);
  const job = new JobStatusWriter((name, body) => sink.write(name, body), jobIdHint ?? 'unknown');
  const log = (line: string) => job.log(line);

  let trainer: Worker | undefined;
  const timers: NodeJS.Timeout[] = [];
  const stopAll = () => {
    timers.forEach((t) => clearInterval(t));
    void trainer?.terminate();
  };

  const outcome = await new Promise<number>((resolve) => {
    const fail = (code: string, message: string) => {
      log(`failed: ${code}: ${message}`);
      stopAll();
      void job.finish({ state: 'failed', error: { code, message } }).then(() => resolve(1));
    };
    const cancel = (why: string) => {
      log(`canceled: ${why}`);
      stopAll();
      void job
        .finish({ state: 'canceled', error: { code: 'canceled', message: why } })
        .then(() => resolve(2));
    };
    process.once('SIGTERM', () => cancel('stopped by the backend (SIGTERM)'));

    void (async () => {
      try {
        await job.beat();
        timers.push(setInterval(() => void job.beat(), heartbeatMs));
        timers.push(setInterval(() => void job.flush(), 1_000));
        const request = await sink.readRequest();
        job.update({ jobId: request.jobId, timeLimitSeconds: request.spec.timeLimitSeconds });
        log(`job ${request.jobId}: ${request.spec.algorithm} on ${request.dataset.uri}`);
        await job.flush();
        timers.push(
          setTimeout(
            () => fail('time_limit_exceeded', `training ran longer than ${request.spec.timeLimitSeconds} s`),
            request.spec.timeLimitSeconds * 1000,
          ),
        );
        timers.push(
          setInterval(() => {
            void sink.cancelRequested().then((yes) => {
              if (yes && !job.finished) cancel('cancel requested');
            });
          }, 1_000),
        );
        const bytes = await sink.readDataset(request);
        log(`dataset: ${bytes.byteLength} bytes, sha256 verified`);
        const copy = new Uint8Array(bytes.byteLength);
        copy.set(bytes);
        trainer = new Worker(__filename, { workerData: { spec: request.spec } });
        trainer.postMessage({ dataset: copy }, [copy.buffer]);
        trainer.on('message', (m: TrainerMessage) => {
          if (job.finished) return;
          if (m.type === 'log') log(m.line);
          else if (m.type === 'progress') {
            job.update({
              progress: Math.min(0.99, m.fraction),
              iteration: m.iteration,
              metrics: {
                ...(m.loss !== undefined ? { loss: m.loss } : {}),
                ...(m.validationLoss !== undefined ? { validationLoss: m.validationLoss } : {}),
              },
            });
            job.record({
              iteration: m.iteration,
              loss: m.loss,
              validationLoss: m.validationLoss,
              at: new Date().toISOString(),
            });
          } else if (m.type === 'error') fail(m.code, m.message);
          else if (m.type === 'done') {
            void (async () => {
              const stored = await sink.storeModel(Buffer.from(m.model, 'utf8'), m.folder);
              log(`model stored: ${stored.modelUri} (digest ${stored.modelDigest})`);
              stopAll();
              await job.finish({
                state: 'completed',
                progress: 1,
                result: { ...m.summary, ...stored },
              });
              resolve(0);
            })().catch((err: unknown) => fail('model_store_failed', ensureError(err).message));
          }
        });
        trainer.on('error', (err) => fail('trainer_crashed', err.message));
        trainer.on('exit', (code) => {
          if (!job.finished && code !== 0)
            fail('trainer_crashed', `training thread exited with code ${code}`);
        });
      } catch (err) {
        const e = ensureError(err) as Error & { code?: string };
        fail(typeof e.code === 'string' ? e.code : 'worker_failed', e.message);
      }
    })();
  });
  stopAll();
  await job.settled();
  return outcome;
}

/** The trainer thread: decode, train, serialize; report progress as messages. */
function trainerThread(): void {
  const port = parentPort!;
  const spec = (workerData as { spec: TrainingSpec }).spec;
  port.once('message', (msg: { dataset: Uint8Array }) => {
    try {
      const table = decodeColumnar(msg.dataset);
      const ds = datasetFromTable(table);
      port.postMessage({
        type: 'log',
        line: `decoded ${ds.rowCount} rows × ${ds.columns.length} columns`,
      } satisfies TrainerMessage);
      let last = 0;
      const result = trainModel(ds, spec, {
        onProgress: (p) => {
          const now = Date.now();
          if (now - last < 200 && p.fraction < 1) return;
          last = now;
          port.postMessage({ type: 'progress', ...p } satisfies TrainerMessage);
        },
      });
      const { rows } = result;
      port.postMessage({
        type: 'log',
        line: `trained ${spec.algorithm}: ${result.iterations} iterations, rows train ${rows.train} / validation ${rows.validation} / holdout ${rows.holdout}`,
      } satisfies TrainerMessage);
      if (result.metrics.holdout) {
        const m = Object.entries(result.metrics.holdout)
          .map(
            ([k, v]) => `${k}=${v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(4)}`,
          )
          .join(' ');
        port.postMessage({ type: 'log', line: `holdout: ${m}` } satisfies TrainerMessage);
      }
      const finite = (r: Record<string, number>) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number.isFinite(v) ? v : null]));
      const model = JSON.stringify(result.model);
      let folder: BuiltInModelFolder | undefined;
      try {
        folder = builtInModelFolder(Buffer.from(model, 'utf8'));
      } catch (err) {
        if ((err as { code?: string }).code !== 'onnx_name_conflict') throw err;
        port.postMessage({
          type: 'log',
          line: `no ONNX export (${(err as Error).message}); storing the model as JSON only`,
        } satisfies TrainerMessage);
      }
      port.postMessage({
        type: 'done',
        model,
        ...(folder ? { folder } : {}),
        summary: {
          algorithm: result.model.algorithm,
          task: result.model.task,
          metrics: Object.fromEntries(Object.entries(result.metrics).map(([k, v]) => [k, finite(v)])),
          rows: { ...rows },
          iterations: result.iterations,
          converged: result.converged,
        },
      } satisfies TrainerMessage);
    } catch (err) {
      const e = ensureError(err) as Error & { code?: string };
      port.postMessage({
        type: 'error',
        code: typeof e.code === 'string' ? e.code : 'training_failed',
        message: e.message,
      } satisfies TrainerMessage);
    }
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      job: { type: 'string' },
      request: { type: 'string' },
      dataset: { type: 'string' },
      out: { type: 'string' },
    },
  });
  let sink: JobSink;
  if (values.job) sink = new BlobSink(storeFromEnv(process.env), values.job);
  else if (values.request && values.dataset && values.out) {
    sink = new FolderSink(values.request, values.dataset, values.out, process.env.SLUICE_OUTPUT_URI);
  } else {
    process.stderr.write('usage: worker --job <jobId> | --request <file> --dataset <file> --out <dir>\n');
    process.exit(64);
  }
  const code = await runJob(sink, values.job);
  process.exit(code);
}

if (isMainThread) {
  if (require.main === module) {
    main().catch((err: unknown) => {
      process.stderr.write(`${ensureError(err).stack}\n`);
      process.exit(1);
    });
  }
} else {
  trainerThread();
}
