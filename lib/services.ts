import type { TokenCredential } from '@azure/identity';
import { AnchorStore } from './audit/anchors';
import { AuditLog } from './audit/log';
import type { ApprovalServiceDeps } from './approval/service';
import { ApprovalSlots } from './approval/slot';
import { DeploymentLocks } from './registry/deployLock';
import { ApprovalStore } from './approval/store';
import { DelegationStore } from './approval/delegation';
import { AzureDevOpsClient } from './checks/azureDevOps';
import { GitHubApp } from './checks/github';
import type { CheckDeps } from './checks/service';
import { CheckStore } from './checks/store';
import type { Keyring } from './keyring';
import { parseKeyring } from './keyring';
import type { Config } from './config';
import { PRODUCTION_ALIAS, columnarReferenceOf } from './registry/records';
import type { ModelVersion } from './registry/records';
import { contractLimits } from './pipelines/servingLimits';
import type { DatasetContract } from './contracts/datasetContract';
import type { DataDeps } from './data/datasets';
import type { IngestLimits } from './data/limits';
import { limitsFromConfig } from './data/limits';
import type { Notifier } from './notify';
import { createNotifier } from './notify';
import type { PipelineDefinition } from './pipelines/definition';
import { modelNameOf } from './pipelines/definition';
import { PipelineStore } from './pipelines/store';
import { ModelRegistry } from './registry/registry';
import resources from './resources.json';
import { RunStore } from './runs/store';
import { OnnxModels } from './mlmodel/onnxModels';
import type { RunScoreCommand } from './scoring/scoreCommand';
import { runScoreCommand } from './training/userJob/score';
import { ProductionModels } from './serving/production';
import { RolloutServing } from './serving/rollout';
import { RolloutStore } from './rollout/store';
import { TrafficRecorder, TrafficStore } from './rollout/traffic';
import { PredictionSampler } from './monitoring/sampler';
import { SampleStore } from './monitoring/samples';
import { MonitoringStore } from './monitoring/store';
import { ArtifactStore } from './storage/blob';
import { CosmosStore } from './storage/cosmos';
import { azureCredential } from './storage/credential';
import type { MlflowClientOptions } from './mlflow/client';
import { MlflowClient } from './mlflow/client';
import { jobCurveReader } from './mlflow/curves';
import { openExportFolder } from './mlflow/export';
import { NonRetriableError } from './errors';
import type { LinkDeps } from './mlflow/link';
import { linkTrainingJob } from './mlflow/link';
import type { MirrorDeps } from './mlflow/mirror';
import type { PromoteDeps } from './mlflow/promote';
import { mlflowTarget } from './mlflow/target';
import { storageProbes, type Probes } from './storage/health';
import type { TrainingBackends } from './training/backends/fromConfig';
import { backendsFromConfig } from './training/backends/fromConfig';
import { scoreCommandOnBackend } from './training/backends/scoreOnBackend';
import type { TrainingBackend } from './training/backends/types';
import { isAssetReference } from './training/backends/azuremlUserJob';
import type { UserCodePolicy } from './training/userJob/codePolicy';
import { confineCodeFolder, requireLocalUserCode, userCodePolicy } from './training/userJob/codePolicy';
import { checkUserCodePolicy } from './training/userJob/preflight';

/**
 * Everything the app's activities and functions use, each built once from the settings by
 * {@link createServices}. Handlers take the part they need (`Pick<Services, 'runs' | 'registry'>`),
 * so tests hand them the same objects built on the emulators, or fakes of the same shape.
 */
export interface Services {
  config: Config;
  /** The process's Entra credential (Azure only; emulators use keys), built on first use. */
  credential: () => TokenCredential;
  cosmos: CosmosStore;
  artifacts: ArtifactStore;
  /** The hash-chained audit log and its anchors (docs/governance.md). */
  audit: AuditLog;
  /** Run documents (partition key: pipeline). */
  runs: RunStore;
  pipelines: PipelineStore<PipelineDefinition>;
  /** Approval records and decisions. */
  approvals: ApprovalStore;
  /** Reviewer delegations (docs/governance.md, "Delegation"). */
  delegations: DelegationStore;
  /** One approval at a time per pipeline. */
  slots: ApprovalSlots;
  /** One deployment at a time per model (lib/registry/deployLock.ts). */
  deployLocks: DeploymentLocks;
  registry: ModelRegistry;
  /** Deployment checks asked by Azure DevOps and GitHub (docs/delivery.md). */
  checks: CheckStore;
  backend: TrainingBackends;
  /** The scoring endpoint's cache of production models (and rollout candidates). */
  scoring: ProductionModels;
  /** Predict: production, or a live rollout's candidate (docs/rollout.md). */
  serving: RolloutServing;
  /** Rollout documents (one per model, in `models`). */
  rollouts: RolloutStore;
  /** Traffic stats records (container `traffic`). */
  traffic: TrafficStore;
  /** This process's buffer of traffic stats, flushed in batches to {@link traffic}. */
  trafficRecorder: TrafficRecorder;
  /** Live-traffic monitoring (docs/monitoring.md): this process's sampler of predict requests, the sampled requests in Blob, and the monitoring documents, labels and proposals. */
  monitoring: { sampler: PredictionSampler; samples: SampleStore; store: MonitoringStore };
  /**
   * ONNX sessions by model digest for evaluation. Predict keeps a cache of its own, so evaluations
   * scoring other models never evict the production session from under live requests.
   */
  onnx: OnnxModels;
  /** Runs a pipeline's `score` command over rows (python_function-only models in evaluation). */
  scoreCommand: RunScoreCommand;
  limits: IngestLimits;
  /** The health check's probes of storage, on these same clients (built once, like them). */
  probes: Probes;
  /** The dataset contract of a stored pipeline version (undefined when there is no such version). */
  contractOf(pipeline: string, version?: number): Promise<DatasetContract | undefined>;
  /**
   * The columnar dataset the pipeline's production model was trained on (the drift reference), as
   * recorded on its registry version; undefined before a first deployment.
   */
  productionReference: NonNullable<DataDeps['productionReference']>;
  now: () => Date;
  /** The MLflow mirror (docs/mlflow.md); undefined when MLFLOW_TRACKING_URI is not set. */
  mlflow: MirrorDeps | undefined;
  /** MLflow's runs, registry and artifact proxy, for promoting models trained elsewhere; undefined without MLFLOW_TRACKING_URI. */
  mlflowModels: PromoteDeps | undefined;
  /**
   * The approval side (signing keyring, notifier, public links). Built on first use: its settings
   * (APPROVAL_SIGNING_KEYS, NOTIFIER…) are needed by approvals only, so a missing key fails the
   * approval steps with its message and nothing else. A failure is not kept: the next call retries.
   */
  approval(): Promise<ApprovalDeps>;
  /**
   * Creates the containers the app writes to, against the local emulators only (in Azure, Bicep
   * creates them and the identity may not). Idempotent; a failed attempt is retried by the next call.
   */
  prepare(): Promise<void>;
}

/** What the approval page, the decision endpoint and the approval activities need. */
export interface ApprovalDeps extends ApprovalServiceDeps {
  store: ApprovalStore;
  keyring: Keyring;
  notifier: Notifier;
  publicBaseUrl: string;
  /** Reviewer delegations: their messages also go to the delegate; the delegate's link decides for them. */
  delegations?: DelegationStore;
}

/** What the train, evaluate and register activities need. */
export interface TrainingDeps {
  store: ArtifactStore;
  registry: ModelRegistry;
  backend: TrainingBackends;
  /** ONNX sessions by model digest, shared with predict. */
  onnx: OnnxModels;
  /**
   * Runs a pipeline's `score` command (python_function-only models in evaluation); without it such
   * a model fails evaluation with `score_command_required`.
   */
  scoreCommand?: RunScoreCommand;
  /** The dataset contract of a pipeline version, to parse a golden set. */
  contractOf?: DataDeps['contractOf'];
}

/** Replacements for remote services that cannot run here (or clocks), for tests. */
export interface ServiceOverrides {
  credential?: TokenCredential;
  backend?: TrainingBackends;
  notifier?: Notifier;
  now?: () => Date;
  /** The `score` command runner (default: lib/training/userJob/score.ts `runScoreCommand`). */
  scoreCommand?: RunScoreCommand;
  /** The MLflow client's fetch and retry pacing (tests: no real waits). */
  mlflow?: Pick<MlflowClientOptions, 'fetch' | 'sleep' | 'maxAttempts' | 'firstDelayMs'>;
  /** Skip {@link Services.prepare} (the health check probes before anything is created). */
  prepare?: boolean;
}

/**
 * The composition root: builds every store, client and backend of the app once from `config`, then
 * (unless `overrides.prepare` is false) creates the local emulators' containers. A plain function
 * with no module state: the app keeps one result per process (app/services.ts), tests build their
 * own on the emulators.
 */
export async function createServices(config: Config, overrides: ServiceOverrides = {}): Promise<Services> {
  let credential = overrides.credential;
  // Only Azure needs it (emulators use keys), and only when a client first asks.
  const credentialOnce = (): TokenCredential => (credential ??= azureCredential(config.AZURE_CLIENT_ID));
  const cosmos = CosmosStore.fromConfig(config, config.COSMOS_KEY ? undefined : credentialOnce());
  const artifacts = ArtifactStore.fromConfig(
    config,
    undefined,
    config.ARTIFACT_STORAGE_CONNECTION ? undefined : credentialOnce(),
  );
  const now = overrides.now ?? (() => new Date());
  const anchors = new AnchorStore(artifacts);
  const audit = new AuditLog(cosmos.container('audit'), { anchors, now });
  const pipelines = new PipelineStore<PipelineDefinition>(cosmos.container('pipelines'), { audit });
  const registry = new ModelRegistry(cosmos.container('models'), undefined, audit);
  const approvals = new ApprovalStore(cosmos.container('approvals'), audit);
  const delegations = new DelegationStore(cosmos.container('approvals'), audit);
  const policy = userCodePolicy(config);
  // One intra-op thread, no spinning: requests and activities run side by side in one process, and
  // on a busy 2-core box this cut predict's p99 from ~40 ms to ~9 ms (bench:scoring, modelPaths.ts).
  const onnxOptions = {
    sessionOptions: {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    },
  };
  const onnx = new OnnxModels(onnxOptions);

  const contractOf: Services['contractOf'] = async (name, version) =>
    (await pipelines.get(name, version))?.definition.dataset;
  // The contract a served version was trained under: its run's pinned pipeline version.
  const runsForServing = new RunStore(cosmos);
  const contractLimitsOf = async (doc: ModelVersion) => {
    const pipeline = doc.tags.pipeline;
    if (!pipeline) return undefined;
    const run = await runsForServing.find(doc.runId);
    const stored = await pipelines.get(pipeline, run?.pipelineVersion);
    return stored ? contractLimits(stored.definition) : undefined;
  };
  const productionReference: Services['productionReference'] = async (name) => {
    const stored = await pipelines.get(name);
    const production = await registry.resolveAlias(
      stored ? modelNameOf(stored.definition) : name,
      PRODUCTION_ALIAS,
    );
    return production ? columnarReferenceOf(production.tags) : undefined;
  };

  let approval: Promise<ApprovalDeps> | undefined;
  const buildApproval = async (): Promise<ApprovalDeps> => {
    const outbox = () => artifacts.containerClient(resources.blobContainers.outbox);
    const notifier = overrides.notifier ?? createNotifier(config, { outbox, credential: credentialOnce });
    if (notifier.channel === 'outbox') await outbox().createIfNotExists();
    return {
      store: approvals,
      delegations,
      keyring: parseKeyring(config.APPROVAL_SIGNING_KEYS, config.APPROVAL_ACTIVE_KEY_ID),
      notifier,
      publicBaseUrl: config.PUBLIC_BASE_URL,
      requireSignin: config.APPROVAL_REQUIRE_SIGNIN,
      platformAuth: config.WEBSITE_AUTH_ENABLED,
      now,
      // A decision is refused when the registry holds the version under other digests (its record
      // was rewritten after the review). A version the registry does not hold is not refused here:
      // it can never be deployed (deployModel and startRollout check the registry's digests).
      checkCandidate: async (c) => {
        const v = await registry.getVersion(c.modelName, c.modelVersion);
        return !v || (v.modelDigest === c.modelDigest && v.datasetDigest === c.datasetDigest);
      },
    };
  };

  const mlflowClient = (uri: string) =>
    new MlflowClient({ target: mlflowTarget(config, uri), credential: credentialOnce, ...overrides.mlflow });
  const tracking = config.MLFLOW_TRACKING_URI ? mlflowClient(config.MLFLOW_TRACKING_URI) : undefined;
  const mlflowRegistry =
    tracking && config.MLFLOW_REGISTRY_URI ? mlflowClient(config.MLFLOW_REGISTRY_URI) : tracking;
  const mlflow: MirrorDeps | undefined = tracking
    ? {
        client: tracking,
        registry: mlflowRegistry!,
        alias: config.MLFLOW_PRODUCTION_ALIAS,
        ...(config.MLFLOW_REGISTRY_URI === 'databricks-uc' && config.MLFLOW_UC_SCHEMA
          ? { unityCatalog: { schema: config.MLFLOW_UC_SCHEMA } }
          : {}),
        // The deployed version's folder, uploaded as the MLflow run's `model` artifacts.
        modelFolderOf: async (name, version) => {
          const found = await registry.getVersion(name, version);
          if (!found)
            throw new NonRetriableError('model_version_not_found', `no version ${version} of ${name}`);
          return openExportFolder(artifacts, found);
        },
        productionVersionOf: async (name) => (await registry.resolveAlias(name, PRODUCTION_ALIAS))?.version,
        runs: new RunStore(cosmos),
        trainingOf: async (name, version) => (await pipelines.get(name, version))?.definition.training,
        // One try within seconds, never the store's retries: a storage outage must not stall the mirror.
        curveOf: jobCurveReader(artifacts.service),
        experimentPrefix: config.MLFLOW_EXPERIMENT_PREFIX,
        publicBaseUrl: config.PUBLIC_BASE_URL,
        now,
      }
    : undefined;

  const scoring = new ProductionModels({
    registry,
    scorers: { store: artifacts, onnx: new OnnxModels(onnxOptions) },
    aliasTtlMs: config.SCORING_ALIAS_TTL_MS,
    contractLimitsOf,
  });
  const rollouts = new RolloutStore(cosmos);
  const traffic = new TrafficStore(cosmos);
  const trafficRecorder = new TrafficRecorder({
    write: (records) => traffic.write(records),
    flushEveryMs: config.TRAFFIC_FLUSH_MS,
    flushEveryRequests: config.TRAFFIC_FLUSH_REQUESTS,
    log: (line) => console.warn(line),
  });

  const samples = new SampleStore(artifacts);
  const sampler = new PredictionSampler({
    settingsOf: async (modelName) => {
      // The pipeline that put the model in production (its version's tag), at its current version.
      const production = await registry.resolveAlias(modelName, PRODUCTION_ALIAS);
      const pipeline = production?.tags.pipeline;
      const stored = pipeline ? await pipelines.get(pipeline) : undefined;
      return stored?.definition.monitoring;
    },
    write: (modelName, source, seq, batch) => samples.write(modelName, source, seq, batch),
    flushEveryMs: config.MONITORING_SAMPLE_FLUSH_MS,
    flushEveryRows: config.MONITORING_SAMPLE_FLUSH_ROWS,
    settingsTtlMs: config.MONITORING_SETTINGS_TTL_MS,
    log: (line) => console.warn(line),
  });

  // A user job is linked to its run's MLflow run before it is submitted (lib/mlflow/link.ts): one
  // short attempt, so an MLflow outage costs a submit at most a few seconds.
  const link: LinkDeps | undefined =
    mlflow && config.MLFLOW_TRACKING_URI
      ? {
          client: new MlflowClient({
            target: mlflowTarget(config, config.MLFLOW_TRACKING_URI),
            credential: credentialOnce,
            ...overrides.mlflow,
            maxAttempts: 1,
            timeoutMs: 5_000,
          }),
          runs: new RunStore(cosmos),
          trainingOf: mlflow.trainingOf,
          experimentPrefix: mlflow.experimentPrefix,
          publicBaseUrl: mlflow.publicBaseUrl,
          trackingUri: config.MLFLOW_TRACKING_URI,
        }
      : undefined;

  // One set of backends (each built on first use) for training and for remote score commands.
  let backends: TrainingBackends | undefined;
  const rawBackends = (): TrainingBackends =>
    (backends ??= backendsFromConfig(config, artifacts, credentialOnce));
  const services: Services = {
    config,
    credential: credentialOnce,
    cosmos,
    artifacts,
    audit,
    runs: new RunStore(cosmos),
    pipelines,
    approvals,
    delegations,
    slots: new ApprovalSlots(cosmos),
    deployLocks: new DeploymentLocks(cosmos, { audit, now }),
    registry,
    checks: new CheckStore(cosmos),
    backend: mlflowLinkedBackends(overrides.backend ?? userCodeBackends(rawBackends(), policy), link),
    scoring,
    serving: new RolloutServing({
      models: scoring,
      readRollout: (name) => rollouts.get(name),
      record: (sample) => trafficRecorder.record(sample),
      sample: (answered) => sampler.sample(answered),
      stateTtlMs: config.ROLLOUT_STATE_TTL_MS,
      log: (line) => console.warn(line),
    }),
    rollouts,
    traffic,
    trafficRecorder,
    monitoring: { sampler, samples, store: new MonitoringStore(cosmos) },
    onnx,
    // A python_function model is scored on its pipeline's backend (Azure ML: a command job).
    scoreCommand:
      overrides.scoreCommand ??
      scoreCommandOnBackend(rawBackends(), userCodeScoreCommand(runScoreCommand, policy)),
    limits: limitsFromConfig(config),
    probes: storageProbes(config, { artifacts, cosmos, credential: credentialOnce }),
    contractOf,
    productionReference,
    now,
    mlflow,
    mlflowModels: tracking
      ? {
          tracking,
          registry: mlflowRegistry!,
          ...(mlflow?.unityCatalog
            ? // The start-time listing check uses the same limit as the train step's download.
              { unityCatalog: { schema: mlflow.unityCatalog.schema, maxBytes: config.MODEL_MAX_BYTES } }
            : {}),
          // Models logged in the workspace itself (dbfs:/, /Volumes/): read through its API.
          ...(config.MLFLOW_TRACKING_URI === 'databricks'
            ? {
                databricks: {
                  client: tracking,
                  ...(overrides.mlflow?.fetch ? { fetch: overrides.mlflow.fetch } : {}),
                  ...(overrides.mlflow?.sleep ? { sleep: overrides.mlflow.sleep } : {}),
                },
              }
            : {}),
        }
      : undefined,
    approval: () =>
      (approval ??= buildApproval().catch((err: unknown) => {
        approval = undefined;
        throw err;
      })),
    prepare: async () => {
      // The local emulators start empty; in Azure, Bicep creates the database and containers.
      await Promise.all([
        config.COSMOS_KEY ? cosmos.ensure() : undefined,
        config.ARTIFACT_STORAGE_CONNECTION ? artifacts.ensureContainers() : undefined,
        config.ARTIFACT_STORAGE_CONNECTION ? anchors.ensure() : undefined,
      ]);
    },
  };
  if (overrides.prepare ?? true) await services.prepare();
  return services;
}

/**
 * The backends, with the host's rules for pipeline authors' code applied at submit: a custom job on
 * `local` needs USER_CODE_LOCAL, and a host `code` folder (local, or uploaded to Azure ML) must be
 * inside USER_CODE_ROOT. PUT checks the same, but a stored pipeline may predate the rules.
 */
export function userCodeBackends(backends: TrainingBackends, policy: UserCodePolicy): TrainingBackends {
  const guarded = new Map<TrainingBackend, TrainingBackend>();
  return (name) => {
    const backend = backends(name);
    if (name !== 'local' && name !== 'azureml') return backend;
    let wrapped = guarded.get(backend);
    if (!wrapped) {
      wrapped = {
        name: backend.name,
        submit: async (request) => {
          const spec = request.spec as { algorithm: string; code?: unknown };
          if (
            spec.algorithm === 'custom' &&
            typeof spec.code === 'string' &&
            !(name === 'azureml' && isAssetReference(spec.code))
          )
            await checkUserCodePolicy(spec.code, policy, { local: name === 'local' });
          return backend.submit(request);
        },
        status: (jobId) => backend.status(jobId),
        cancel: (jobId) => backend.cancel(jobId),
        ...(backend.whenEnded ? { whenEnded: (jobId: string) => backend.whenEnded?.(jobId) } : {}),
      };
      guarded.set(backend, wrapped);
    }
    return wrapped;
  };
}

/**
 * The score command under the host's rules: it runs here whatever backend trained the model, so it
 * needs USER_CODE_LOCAL, and it runs in the spec's `code` folder, which must be inside USER_CODE_ROOT
 * (the command then runs in that folder with symlinks resolved).
 */
export function userCodeScoreCommand(run: RunScoreCommand, policy: UserCodePolicy): RunScoreCommand {
  return async (options) => {
    requireLocalUserCode(policy, "a python_function model's score command");
    const code = await confineCodeFolder(options.spec.code, policy.root);
    return run({ ...options, spec: { ...options.spec, code } });
  };
}

/**
 * The backends with user jobs linked to MLflow (docs/mlflow.md, "A job that logs to MLflow"): a
 * custom job of a Sluice run gets the run's MLflow run (made now if the mirror has not made it yet)
 * as `request.mlflow`, which each backend turns into MLFLOW_RUN_ID and the other variables. Linking
 * never fails a submit: without a link the job is submitted as it was.
 */
export function mlflowLinkedBackends(
  backends: TrainingBackends,
  link: LinkDeps | undefined,
): TrainingBackends {
  if (!link) return backends;
  const linked = new Map<TrainingBackend, TrainingBackend>();
  return (name) => {
    const backend = backends(name);
    let wrapped = linked.get(backend);
    if (!wrapped) {
      wrapped = {
        name: backend.name,
        submit: async (request) => {
          const spec = request.spec as { algorithm: string };
          if (spec.algorithm !== 'custom' || !request.runId || request.mlflow) return backend.submit(request);
          const outcome = await linkTrainingJob(link, request.runId, request.jobId);
          return backend.submit(outcome.linked ? { ...request, mlflow: outcome.linked } : request);
        },
        status: (jobId) => backend.status(jobId),
        cancel: (jobId) => backend.cancel(jobId),
        ...(backend.whenEnded ? { whenEnded: (jobId: string) => backend.whenEnded?.(jobId) } : {}),
      };
      linked.set(backend, wrapped);
    }
    return wrapped;
  };
}

/** The data activities' and dataset endpoints' view of the services. */
export function dataDeps(s: Services): DataDeps {
  return {
    store: s.artifacts,
    limits: s.limits,
    contractOf: s.contractOf,
    productionReference: s.productionReference,
  };
}

/** The training activities' view of the services. */
export function trainingDeps(s: Services): TrainingDeps {
  return {
    store: s.artifacts,
    registry: s.registry,
    backend: s.backend,
    onnx: s.onnx,
    scoreCommand: s.scoreCommand,
    contractOf: s.contractOf,
  };
}

/** The deployment checks' view of the services: the endpoints, the timer and their callers' clients. */
export function checkDeps(s: Services): CheckDeps {
  const { config } = s;
  const github =
    config.GITHUB_APP_ID && config.GITHUB_APP_PRIVATE_KEY
      ? new GitHubApp({
          appId: config.GITHUB_APP_ID,
          // App settings cannot hold line breaks from every tool: accept a key with literal \n.
          privateKey: config.GITHUB_APP_PRIVATE_KEY.replaceAll('\\n', '\n'),
          apiUrl: config.GITHUB_API_URL,
          now: s.now,
        })
      : undefined;
  return {
    store: s.checks,
    sources: {
      getModel: (name) => s.registry.getModel(name),
      findRun: (id) => s.runs.find(id),
      publicBaseUrl: config.PUBLIC_BASE_URL,
    },
    azureDevOps: new AzureDevOpsClient(),
    ...(github ? { github } : {}),
    ...(config.GITHUB_WEBHOOK_SECRET ? { githubWebhookSecret: config.GITHUB_WEBHOOK_SECRET } : {}),
    allowedHosts: config.AZURE_DEVOPS_ALLOWED_HOSTS.split(',')
      .map((h) => h.trim())
      .filter(Boolean),
    marginMs: config.CHECK_TOKEN_MARGIN_MINUTES * 60_000,
    now: s.now,
  };
}
