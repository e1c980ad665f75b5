import type { MlflowMirror, RunDocument } from '../contracts/runDocument';
import type { TrainingSpec } from '../contracts/trainingSpec';
import { isNonRetriable, NonRetriableError, TransientError } from '../errors';
import { terminalRunStatuses } from '../runs/document';
import type { RunStore } from '../runs/store';
import type { MlflowClient } from './client';
import { MlflowRejected } from './client';
import type { ExportedFolder } from './export';
import type { LogBatch } from './limits';
import { cutBytes, MAX_TAG_VALUE_BYTES, toBatches } from './limits';
import type { CurvePoint, RegisterVersion, RunContext } from './sections';
import { availableSections, createTags, curveJobOf, curveMetrics } from './sections';
import type { UcRegisterOptions } from './unityCatalog';
import { completeUcVersion, registerUcVersion, ucModelName } from './unityCatalog';

/** First backoff after a failed attempt; doubled per attempt up to the caps below. */
const FIRST_BACKOFF_MS = 60_000;
const MAX_TRANSIENT_BACKOFF_MS = 60 * 60_000;
const MAX_REJECTED_BACKOFF_MS = 6 * 60 * 60_000;
/** A run MLflow keeps refusing (not an outage) is given up after this many attempts. */
export const MAX_REJECTED_ATTEMPTS = 8;

export interface MirrorDeps {
  client: Pick<
    MlflowClient,
    'ensureExperiment' | 'findRunsByTag' | 'createRun' | 'logBatch' | 'logInputs' | 'updateRun'
  > &
    Partial<Pick<MlflowClient, 'getRunParams' | 'getRun' | 'putArtifact'>>;
  /** The model registry (MLFLOW_REGISTRY_URI, else the tracking server). */
  registry: Pick<
    MlflowClient,
    | 'ensureRegisteredModel'
    | 'findModelVersionsByRun'
    | 'createModelVersion'
    | 'setAlias'
    | 'getModelVersionByAlias'
  > &
    Partial<Pick<MlflowClient, 'call'>>;
  /**
   * MLFLOW_REGISTRY_URI=databricks-uc: versions are registered in Unity Catalog under `schema`
   * (MLFLOW_UC_SCHEMA) with their files (lib/mlflow/unityCatalog.ts); `upload` only for tests.
   */
  unityCatalog?: { schema: string; upload?: UcRegisterOptions };
  /** The registry alias a deployment moves (MLFLOW_PRODUCTION_ALIAS). */
  alias: string;
  /**
   * A Sluice version as an MLflow model folder (lib/mlflow/export.ts): uploaded as artifacts of the
   * run before the version is registered, so `models:/name/v` loads from the MLflow server. Without
   * it, or for a version that cannot be exported, the version's source is the Sluice blob URI.
   */
  modelFolderOf?(modelName: string, sluiceVersion: number): Promise<ExportedFolder>;
  /**
   * Sluice's production version of a model now (its registry is the source of truth): an MLflow
   * alias is moved only to the version that still is production, so a mirror that catches up late
   * never moves it back over a newer deployment.
   */
  productionVersionOf(modelName: string): Promise<number | undefined>;
  runs: Pick<RunStore, 'update' | 'listUnmirrored'> & Partial<Pick<RunStore, 'listCurvesDue'>>;
  /** The pinned training spec of a pipeline version. */
  trainingOf(pipeline: string, version: number): Promise<TrainingSpec | undefined>;
  /**
   * A training job's curve (its metrics.json `history`), `undefined` when the job stored none;
   * without this the curves are not logged. The composition root passes a bounded, fast-failing
   * read (lib/mlflow/curves.ts). A rejection holds nothing up: the run is mirrored and synced
   * without its curve, which later sweeps try again for {@link CURVE_RETRY_WINDOW_MS}.
   */
  curveOf?(jobId: string): Promise<readonly CurvePoint[] | undefined>;
  experimentPrefix: string;
  publicBaseUrl: string;
  now: () => Date;
}

export type MirrorOutcome =
  | { runId: string; status: 'synced' | 'pending'; logged: string[] }
  | { runId: string; status: 'retry' | 'failed'; logged: string[]; error: { code: string; message: string } };

const fresh = (): MlflowMirror => ({ status: 'pending', done: [], attempts: 0 });

/**
 * Mirrors one Sluice run to MLflow, as far as the run document goes: the experiment named after
 * the pipeline (created if absent), the MLflow run (found by its `sluice.run_id` tag, else created,
 * and its id stored on the run document before anything is logged), then each section not yet in
 * `mlflow.done`, each recorded as done right after MLflow took it, and the status update once the
 * run ended. A failure never reaches the Sluice run: it is written to `mlflow` with a backoff.
 */
export async function mirrorRun(
  deps: MirrorDeps,
  run: RunDocument,
  curveGate: CurveGate = { open: true },
): Promise<MirrorOutcome> {
  let state = run.mlflow ?? fresh();
  const logged: string[] = [];
  const save = async (change: (m: MlflowMirror) => MlflowMirror) => {
    const doc = await deps.runs.update(run.pipeline, run.id, (r) => ({
      ...r,
      mlflow: change(r.mlflow ?? fresh()),
    }));
    state = doc.mlflow ?? fresh();
    return doc;
  };
  try {
    const training = await deps.trainingOf(run.pipeline, run.pipelineVersion);
    const context = { run, training, publicBaseUrl: deps.publicBaseUrl };
    if (!state.runId) {
      const { experimentId, runId } = await findOrCreateRun(deps, context);
      await save((m) => ({ ...m, experimentId, runId }));
    }
    const runId = state.runId!;
    // The training curve, with steps, once the job ended: before the ending, which stops the sweeps.
    // A failed read skips it (the other sections and the sync go on); mirrorCurves tries it again.
    if (!state.done.includes('curves') && (await logCurve(deps, run, runId, save, curveGate)))
      logged.push('curves');
    // The run document may have moved on since it was listed: log what the stored one has.
    for (const section of availableSections(context)) {
      if (state.done.includes(section.name)) continue;
      if (section.inputs) await deps.client.logInputs(runId, section.inputs);
      if (section.batch)
        for (const batch of toBatches(section.batch)) await logBatchWriteOnce(deps, runId, batch, save);
      if (section.register) await register(deps, runId, section.register, () => state, save);
      if (section.end) await deps.client.updateRun({ run_id: runId, ...section.end });
      await save((m) => ({ ...m, done: m.done.includes(section.name) ? m.done : [...m.done, section.name] }));
      logged.push(section.name);
    }
    const synced = terminalRunStatuses.has(run.status) && state.done.includes('end');
    const at = deps.now().toISOString();
    const unchanged = !synced && state.status === 'pending' && state.attempts === 0 && !state.error;
    if (!unchanged)
      await save((m) => {
        const { error: _e, nextAttemptAt: _n, ...rest } = m;
        return synced
          ? { ...rest, status: 'synced', attempts: 0, syncedAt: at }
          : { ...rest, status: 'pending', attempts: 0 };
      });
    return { runId: run.id, status: synced ? 'synced' : 'pending', logged };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const error = { code: e.code ?? 'mlflow_error', message: (e.message ?? String(err)).slice(0, 500) };
    const rejected = isNonRetriable(err);
    const attempts = state.attempts + 1;
    const cap = rejected ? MAX_REJECTED_BACKOFF_MS : MAX_TRANSIENT_BACKOFF_MS;
    const delay = Math.min(cap, FIRST_BACKOFF_MS * 2 ** Math.min(20, attempts - 1));
    const nextAttemptAt = new Date(deps.now().getTime() + delay).toISOString();
    try {
      await save((m) => ({ ...m, status: rejected ? 'failed' : 'pending', attempts, error, nextAttemptAt }));
    } catch {
      // The run store is down too: the next sweep finds the run as it was and tries again.
    }
    return { runId: run.id, status: rejected ? 'failed' : 'retry', logged, error };
  }
}

/**
 * The experiment named after the pipeline (created if absent) and the run's MLflow run: the one
 * tagged with its `sluice.run_id` (a create whose answer was lost, or the run made when its job was
 * submitted), else a new one. The caller stores the ids on the run document.
 */
export async function findOrCreateRun(
  deps: Pick<MirrorDeps, 'client' | 'experimentPrefix'>,
  context: RunContext,
): Promise<{ experimentId: string; runId: string }> {
  const { run } = context;
  const experimentId = await deps.client.ensureExperiment(`${deps.experimentPrefix}${run.pipeline}`, [
    { key: 'sluice.pipeline', value: run.pipeline },
  ]);
  const existing = await deps.client.findRunsByTag(experimentId, 'sluice.run_id', run.id);
  const runId =
    existing[0]?.run_id ??
    (
      await deps.client.createRun({
        experiment_id: experimentId,
        run_name: run.id,
        start_time: Date.parse(run.createdAt),
        tags: createTags(context),
      })
    ).run_id;
  return { experimentId, runId };
}

/**
 * One `runs/log-batch`, with params write-once against what is already on the run: a run a user's
 * job logs into may hold a param Sluice also logs. MLflow refuses a whole batch that re-logs a
 * param with another value (INVALID_PARAMETER_VALUE), so on that refusal the run's params are read
 * (`runs/get`), the ones it has with the same value are left out, the ones it has with another value
 * are left out and recorded on the run document (`mlflow.paramConflicts`, and the run tag
 * `sluice.param_conflicts`), and the rest is sent again. The job's values stay as it logged them.
 */
async function logBatchWriteOnce(
  deps: MirrorDeps,
  runId: string,
  batch: LogBatch,
  save: (change: (m: MlflowMirror) => MlflowMirror) => Promise<unknown>,
): Promise<void> {
  try {
    await deps.client.logBatch(runId, batch);
    return;
  } catch (err) {
    if (
      !batch.params.length ||
      !(err instanceof MlflowRejected && err.errorCode === 'INVALID_PARAMETER_VALUE') ||
      !deps.client.getRunParams
    )
      throw err;
  }
  const logged = new Map((await deps.client.getRunParams(runId)).map((p) => [p.key, p.value]));
  const conflicts: { key: string; sluice: string; mlflow: string }[] = [];
  const params = batch.params.filter((p) => {
    const had = logged.get(p.key);
    if (had !== undefined && had !== p.value) conflicts.push({ key: p.key, sluice: p.value, mlflow: had });
    return had === undefined;
  });
  const tags = conflicts.length
    ? [
        ...batch.tags,
        {
          key: 'sluice.param_conflicts',
          value: cutBytes(conflicts.map((c) => c.key).join(', '), MAX_TAG_VALUE_BYTES),
        },
      ]
    : batch.tags;
  // Still refused: not a param clash, so the refusal stands (the mirror records it).
  await deps.client.logBatch(runId, { ...batch, params, tags });
  if (conflicts.length)
    await save((m) => {
      const known = new Set((m.paramConflicts ?? []).map((c) => c.key));
      return {
        ...m,
        paramConflicts: [...(m.paramConflicts ?? []), ...conflicts.filter((c) => !known.has(c.key))],
      };
    });
}

/**
 * The deployed version in the MLflow registry: the registered model (created if absent), the
 * version (found by its MLflow run if an earlier attempt made it, else created, and its number
 * stored on the run document at once), then the alias, if Sluice's production still is this version.
 */
async function register(
  deps: MirrorDeps,
  runId: string,
  r: RegisterVersion,
  state: () => MlflowMirror,
  save: (change: (m: MlflowMirror) => MlflowMirror) => Promise<unknown>,
): Promise<void> {
  if (deps.unityCatalog) return registerInUnityCatalog(deps, deps.unityCatalog, runId, r, state, save);
  await deps.registry.ensureRegisteredModel(r.name, [{ key: 'sluice.model', value: r.name }]);
  let version = state().model?.version;
  if (!version) {
    const uploaded = state().artifactUri ?? (await uploadModelFolder(deps, runId, r));
    if (uploaded && !state().artifactUri) await save((m) => ({ ...m, artifactUri: uploaded }));
    const found = await deps.registry.findModelVersionsByRun(r.name, runId);
    version =
      found[0]?.version ??
      (
        await deps.registry.createModelVersion({
          name: r.name,
          source: uploaded ?? r.source,
          run_id: runId,
          run_link: r.runLink,
          description: `Sluice ${r.name} version ${r.sluiceVersion}, deployed by Sluice's approval gate`,
          tags: r.tags,
        })
      ).version;
    const made = version;
    await save((m) => ({ ...m, model: { name: r.name, version: made } }));
  }
  if ((await deps.productionVersionOf(r.name)) !== r.sluiceVersion) return;
  await deps.registry.setAlias(r.name, deps.alias, version);
  const moved = version;
  await save((m) => ({ ...m, model: { name: r.name, version: moved, alias: deps.alias } }));
}

/**
 * The deployed version in Unity Catalog, under its three-level name: registered with its files
 * (registerUcVersion: created PENDING_REGISTRATION, files written to its storage location with the
 * temporary SAS, finalized READY), then the alias (`unity-catalog/registered-models/alias`) if
 * Sluice's production still is this version. The number is stored on the run document as soon as
 * Unity Catalog made the version, so an attempt cut short (an upload that failed, a lost answer) is
 * finished by the next one (completeUcVersion) rather than leaving a pending version behind. Unity
 * Catalog stores the files itself, so a version that cannot be exported as an MLflow model folder is
 * refused (the mirror records why).
 */
async function registerInUnityCatalog(
  deps: MirrorDeps,
  uc: NonNullable<MirrorDeps['unityCatalog']>,
  runId: string,
  r: RegisterVersion,
  state: () => MlflowMirror,
  save: (change: (m: MlflowMirror) => MlflowMirror) => Promise<unknown>,
): Promise<void> {
  const name = ucModelName(uc.schema, r.name);
  const registry = deps.registry;
  if (!deps.modelFolderOf || !registry.call)
    throw new NonRetriableError(
      'mlflow_uc_no_model_folder',
      `Unity Catalog needs the model files of ${r.name} version ${r.sluiceVersion}; this mirror has no model folder to give it`,
    );
  const client = { call: registry.call.bind(registry) };
  const folder = async (): Promise<ExportedFolder> => {
    try {
      return await deps.modelFolderOf!(r.name, r.sluiceVersion);
    } catch (err) {
      if (err instanceof TransientError || isNonRetriable(err)) throw err;
      throw new NonRetriableError(
        'mlflow_uc_no_model_folder',
        `${r.name} version ${r.sluiceVersion} cannot be exported as an MLflow model folder for Unity Catalog: ${(err as Error).message}`,
      );
    }
  };
  const stored = state().model;
  let version: string;
  if (stored?.name === name && stored.version) {
    version = stored.version;
    await completeUcVersion(client, name, version, await folder(), uc.upload);
  } else {
    // One export for both copies: the run's `model` artifacts and the Unity Catalog version's files.
    const files = await folder();
    const uploaded = state().artifactUri ?? (await uploadModelFolder(deps, runId, r, files));
    if (uploaded && !state().artifactUri) await save((m) => ({ ...m, artifactUri: uploaded }));
    const made = await registerUcVersion(
      client,
      {
        name,
        source: uploaded ?? r.source,
        run_id: runId,
        description: `Sluice ${r.name} version ${r.sluiceVersion}, deployed by Sluice's approval gate`,
        tags: r.tags,
      },
      files,
      {
        ...uc.upload,
        owner: r.name,
        onCreated: async (v) => {
          await save((m) => ({ ...m, model: { name, version: v } }));
        },
      },
    );
    version = made.version;
  }
  if ((await deps.productionVersionOf(r.name)) !== r.sluiceVersion) return;
  await deps.registry.setAlias(name, deps.alias, version);
  const moved = version;
  await save((m) => ({ ...m, model: { name, version: moved, alias: deps.alias } }));
}

/** Where a deployed version's folder goes under its run's artifacts (what `log_model` would name it). */
export const MODEL_ARTIFACT_PATH = 'model';

/**
 * Uploads the deployed version's MLflow model folder as artifacts of the run, through the tracking
 * server's artifact proxy (`PUT mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/model/<file>`),
 * and answers its URI (`mlflow-artifacts:/…/model`), the model version's `source`. Undefined, and
 * the blob URI stays the source, when the version cannot be exported as a folder (a legacy model the
 * ONNX export cannot convert, a file no longer in storage) or the run's artifacts are not behind the
 * proxy (Databricks `dbfs:/`, Azure ML, a server run with `--no-serve-artifacts`). A transient
 * failure is thrown: the mirror tries again later, and a PUT of the same file replaces it. `opened`:
 * the folder the caller already exported (Unity Catalog writes the same files), so the version is
 * opened, checked and (a legacy model) converted once.
 */
async function uploadModelFolder(
  deps: MirrorDeps,
  runId: string,
  r: RegisterVersion,
  opened?: ExportedFolder,
): Promise<string | undefined> {
  if (!deps.modelFolderOf || !deps.client.getRun || !deps.client.putArtifact) return undefined;
  let folder: ExportedFolder;
  if (opened) folder = opened;
  else
    try {
      folder = await deps.modelFolderOf(r.name, r.sluiceVersion);
    } catch (err) {
      if (err instanceof TransientError) throw err;
      return undefined;
    }
  const root = (await deps.client.getRun(runId)).artifact_uri ?? '';
  if (!root.startsWith('mlflow-artifacts:')) return undefined;
  const base = root.replace(/^mlflow-artifacts:\/*/, '').replace(/\/+$/, '');
  for await (const file of folder.files())
    await deps.client.putArtifact(`${base}/${MODEL_ARTIFACT_PATH}/${file.path}`, file.bytes);
  return `${root.replace(/\/+$/, '')}/${MODEL_ARTIFACT_PATH}`;
}

/**
 * One sweep of the outbox: the runs not yet synced whose backoff has passed (oldest first, at most
 * `limit`), each mirrored in turn. A run MLflow refused {@link MAX_REJECTED_ATTEMPTS} times stays
 * `failed` with its reason and is no longer tried.
 */
export async function mirrorPendingRuns(deps: MirrorDeps, limit = 25): Promise<MirrorOutcome[]> {
  const due = await deps.runs.listUnmirrored(MAX_REJECTED_ATTEMPTS, deps.now(), limit);
  const out: MirrorOutcome[] = [];
  // One failed curve read closes the gate for the rest of the sweep: an outage costs one timeout.
  const gate: CurveGate = { open: true };
  for (const run of due) out.push(await mirrorRun(deps, run, gate));
  // Late curves never fail the sweep: the next one tries again.
  if (gate.open) await mirrorCurves(deps, gate, limit).catch(() => undefined);
  return out;
}

/** How long after a run synced its curve is tried again when storage failed to give it. */
export const CURVE_RETRY_WINDOW_MS = 60 * 60_000;

/** Whether this sweep still reads curves (closed after the first failed read). */
export interface CurveGate {
  open: boolean;
  error?: { code: string; message: string };
}

/**
 * Logs a run's training curve if it has one to log: the train step ended with a job, `curveOf` is
 * given, and the gate is open. True when the curve section is done (logged, or the job had none);
 * false when there is nothing to do or the read failed, which closes the gate and leaves `curves`
 * out of `done` for a later sweep. MLflow accepts metrics on an ended run, so a late curve is fine.
 */
async function logCurve(
  deps: MirrorDeps,
  run: RunDocument,
  runId: string,
  save: (change: (m: MlflowMirror) => MlflowMirror) => Promise<unknown>,
  gate: CurveGate,
): Promise<boolean> {
  const job = curveJobOf(run);
  if (!job || !deps.curveOf || !gate.open) return false;
  let history: readonly CurvePoint[] | undefined;
  try {
    history = await deps.curveOf(job);
  } catch (err) {
    if (isNonRetriable(err)) throw err;
    const e = err as { code?: string; message?: string };
    gate.open = false;
    gate.error = {
      code: e.code ?? 'mlflow_curve_unavailable',
      message: (e.message ?? String(err)).slice(0, 500),
    };
    return false;
  }
  const points = curveMetrics(history ?? []);
  if (points.length)
    for (const batch of toBatches({ metrics: points, params: [], tags: [] }))
      await deps.client.logBatch(runId, batch);
  await save((m) => ({ ...m, done: m.done.includes('curves') ? m.done : [...m.done, 'curves'] }));
  return true;
}

/**
 * The curves a failed read left out: runs synced within {@link CURVE_RETRY_WINDOW_MS} whose train
 * step ran a job and whose `curves` is not done, each tried once per sweep while the gate is open.
 * A failure here changes nothing on the run (it stays synced); after the window the curve is given
 * up and the run keeps its final metrics only.
 */
export async function mirrorCurves(
  deps: MirrorDeps,
  gate: CurveGate = { open: true },
  limit = 25,
): Promise<string[]> {
  if (!deps.curveOf || !deps.runs.listCurvesDue) return [];
  const since = new Date(deps.now().getTime() - CURVE_RETRY_WINDOW_MS);
  const logged: string[] = [];
  for (const run of await deps.runs.listCurvesDue(since, limit)) {
    const runId = run.mlflow?.runId;
    if (!runId || !curveJobOf(run)) continue;
    if (!gate.open) break;
    const save = (change: (m: MlflowMirror) => MlflowMirror) =>
      deps.runs.update(run.pipeline, run.id, (r) => ({ ...r, mlflow: change(r.mlflow ?? fresh()) }));
    try {
      if (await logCurve(deps, run, runId, save, gate)) logged.push(run.id);
    } catch {
      // MLflow or the run store failed: the run stays synced, the next sweep tries again.
    }
  }
  return logged;
}
