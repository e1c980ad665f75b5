import { z } from 'zod';
import resources from './resources.json';
import { parseKeyring } from './keyring';

/**
 * App settings. Names are identical to the Bicep app-setting names (infra/main.bicep) and the
 * names in lib/resources.json. Parsed once per process; tests pass their own env.
 */
const intSetting = (def: number) => z.coerce.number().int().positive().default(def);

/**
 * The MLflow tracking/registry URI schemes Sluice speaks (docs/mlflow.md): a server's http(s) URL,
 * `databricks` (the workspace of DATABRICKS_HOST) or an Azure ML workspace's `azureml://` URI; for the
 * registry also `databricks-uc` (Unity Catalog of that workspace). Local stores (`file:`, a path,
 * `sqlite:`…) cannot be reached from a Function App and are refused.
 */
const mlflowUri = z
  .string()
  .refine(
    (u) => u === 'databricks' || u === 'databricks-uc' || /^(https?|azureml):\/\/[^/\s]+/.test(u),
    "must be an http(s):// URL of an MLflow server, `databricks` (`databricks-uc` for the registry), or an Azure ML workspace's azureml:// URI",
  );

/**
 * `<catalog>.<schema>` of Unity Catalog (MLFLOW_UC_SCHEMA): two identifiers as Unity Catalog stores
 * them (lower-case letters, digits, `_`; it folds upper case), each at most 255 characters.
 */
export const UC_SCHEMA = /^[a-z0-9_]{1,255}\.[a-z0-9_]{1,255}$/;

/** Hosts of Azure ML's MLflow endpoint: `<region>.api.azureml.ms` and the sovereign clouds' equivalents. */
const AZUREML_MLFLOW_HOST = /^[a-z0-9-]+\.api\.(azureml\.ms|ml\.azure\.cn|ml\.azure\.us)$/i;
const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Why an MLflow URI may not be given the app's credentials, or undefined: an `azureml://` URI gets
 * an Azure Resource Manager token, so it must name Azure ML's own host; plain `http://` would send a
 * token or password in clear text, so it is only for a server on this machine.
 */
export function mlflowUriProblem(uri: string, hasCredentials: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined; // `databricks`, or refused by the schema already
  }
  if (url.protocol === 'azureml:' && (url.username || url.password || /[\\@]/.test(uri)))
    return 'an azureml:// URI names the workspace host and path only (no user name, "@" or "\\")';
  if (url.protocol === 'azureml:' && !AZUREML_MLFLOW_HOST.test(url.hostname))
    return `an azureml:// URI gets the app's Azure Resource Manager token, so its host must be Azure ML's (<region>.api.azureml.ms, .api.ml.azure.cn or .api.ml.azure.us), not ${url.hostname}`;
  if (url.protocol === 'http:' && hasCredentials && !LOOPBACK.test(url.hostname))
    return 'http:// would send MLFLOW_TRACKING_TOKEN or the password in clear text: use https, or http only for a server on this machine (localhost)';
  return undefined;
}

export const configSchema = z
  .object({
    /** Blob Storage for artifacts: a connection string locally, or an account URL with managed identity in Azure. */
    ARTIFACT_STORAGE_CONNECTION: z.string().min(1).optional(),
    ARTIFACT_STORAGE_ACCOUNT_URL: z.url().optional(),
    /** Cosmos DB endpoint; COSMOS_KEY only for the local emulator (Azure uses managed identity). */
    COSMOS_ENDPOINT: z.url(),
    COSMOS_KEY: z.string().min(1).optional(),
    COSMOS_DATABASE: z.string().min(1).default(resources.cosmos.database),
    /** Client id of the user-assigned managed identity (Azure only). */
    AZURE_CLIENT_ID: z.string().optional(),
    /** Host storage (Durable task hub): a connection string locally; read by the health check. */
    AzureWebJobsStorage: z.string().min(1).optional(),
    /** Host storage account in Azure (identity-based connection, set by infra as a host setting). */
    AzureWebJobsStorage__accountName: z.string().min(1).optional(),
    DURABLE_TASK_HUB: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]{2,44}$/, 'must be 3-45 letters or digits, starting with a letter')
      .default('SluiceHub'),
    /** Public origin used in links sent to people (approval pages). */
    // Without a trailing slash, so links are built as `${PUBLIC_BASE_URL}/api/...`.
    PUBLIC_BASE_URL: z
      .url()
      .default('http://localhost:7071')
      .transform((u) => u.replace(/\/+$/, '')),
    INGEST_MAX_BYTES: intSetting(512 * 1024 * 1024),
    /**
     * The largest model folder Sluice accepts, in bytes: a user job's output (every backend), a
     * promoted MLflow model, a python_function model a remote score job reads. Over it: model_too_large.
     */
    MODEL_MAX_BYTES: intSetting(512 * 1024 * 1024),
    /** Run uploads streamed to Blob at once per instance; more are answered 503 with Retry-After. */
    INGEST_MAX_CONCURRENT_UPLOADS: intSetting(4),
    INGEST_MAX_COLUMNS: intSetting(10_000),
    INGEST_MAX_FIELD_BYTES: intSetting(1024 * 1024),
    INGEST_MAX_ROWS: intSetting(50_000_000),
    /** Longest CSV row or JSON line: bounds the unfinished row kept between read windows. */
    INGEST_MAX_ROW_BYTES: intSetting(16 * 1024 * 1024),
    /** Largest decompressed:compressed ratio of a gzip upload before it counts as a bomb. */
    INGEST_MAX_GZIP_RATIO: intSetting(200),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /**
     * Approval-link signing keys as JSON `{"kid":"base64 secret (>= 32 bytes)",...}`. Keep two kids
     * during a rotation: links signed with either still verify. In Azure a Key Vault reference.
     */
    APPROVAL_SIGNING_KEYS: z.string().min(1).optional(),
    /** The kid new approval links are signed with; must be a key of APPROVAL_SIGNING_KEYS. */
    APPROVAL_ACTIVE_KEY_ID: z.string().min(1).optional(),
    /** When true, a decision POST needs the App Service Authentication principal to be the reviewer. */
    APPROVAL_REQUIRE_SIGNIN: z.stringbool().default(false),
    /** How reviewers are told: `outbox` (Blob + log, local), `webhook` (JSON POST) or `acs-email`. */
    NOTIFIER: z.enum(['outbox', 'webhook', 'acs-email']).default('outbox'),
    NOTIFY_WEBHOOK_URL: z.url().optional(),
    /** HMAC-SHA256 secret for the webhook's `X-Sluice-Signature` header (a Key Vault reference in Azure). */
    NOTIFY_WEBHOOK_SECRET: z.string().min(16).optional(),
    /** Azure Communication Services endpoint and verified sender, for NOTIFIER=acs-email. */
    ACS_ENDPOINT: z.url().optional(),
    ACS_SENDER: z.string().min(3).optional(),
    ACS_API_VERSION: z.string().default('2023-03-31'),
    /** How long the scoring endpoint trusts its cached `production` alias before looking it up again. */
    SCORING_ALIAS_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
    /** How long predict trusts its cached rollout state (candidate, percent) before reading it again. */
    ROLLOUT_STATE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(2_000),
    /** Traffic stats (docs/rollout.md) are written per instance at least this often while requests come in... */
    TRAFFIC_FLUSH_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
    /** ...or after this many requests, whichever comes first. */
    TRAFFIC_FLUSH_REQUESTS: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
    /** Sampled predict requests (docs/monitoring.md) are written per instance at least this often... */
    MONITORING_SAMPLE_FLUSH_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
    /** ...or after this many sampled rows, whichever comes first (one JSON Lines blob per model per flush). */
    MONITORING_SAMPLE_FLUSH_ROWS: z.coerce.number().int().min(1).max(1_000_000).default(5_000),
    /** How long predict trusts a model's cached sampling settings (its pipeline's `monitoring` section). */
    MONITORING_SETTINGS_TTL_MS: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
    /**
     * Whether pipeline authors' commands may run on this host: custom specs on the `local` backend
     * and the `score` command of python_function-only models (docs/training.md, "Whose code runs
     * where"). Unset = true only when the app runs on a laptop (no WEBSITE_INSTANCE_ID, artifacts
     * on a loopback Azurite), so it is false in Azure unless an operator sets it; Bicep does not.
     */
    USER_CODE_LOCAL: z.stringbool().default(false),
    /**
     * Whether the console (docs/console.md) is open to anyone who can reach it, with every action,
     * and says so in a banner. Unset = true only when the app runs on a laptop (as USER_CODE_LOCAL);
     * in Azure the console needs App Service Authentication and the Sluice.Viewer or
     * Sluice.Operator app role. Bicep never sets it.
     */
    CONSOLE_OPEN: z.stringbool().default(false),
    /**
     * Set by App Service when App Service Authentication is on (then the platform strips and sets the
     * `x-ms-client-principal` headers itself, so they can be trusted). Not ours to set.
     */
    WEBSITE_AUTH_ENABLED: z.stringbool().default(false),
    /**
     * The folder a custom spec's host `code` folder must resolve inside (after symlinks), for the
     * local backend, the score command and Azure ML code uploads. Relative = against the app's
     * working directory (the default, `.`).
     */
    USER_CODE_ROOT: z.string().min(1).default('.'),
    /** Training: a local job whose heartbeat is older than this has died. */
    TRAINING_HEARTBEAT_STALE_SECONDS: intSetting(60),
    /** Azure ML workspace of the `azureml` training backend (all optional: only pipelines that pick it need them). */
    AZUREML_SUBSCRIPTION_ID: z.string().min(1).optional(),
    AZUREML_RESOURCE_GROUP: z.string().min(1).optional(),
    AZUREML_WORKSPACE_NAME: z.string().min(1).optional(),
    AZUREML_API_VERSION: z.string().min(1).default('2024-04-01'),
    /** ARM endpoint (tests point it at a local fake). */
    AZUREML_ENDPOINT: z.url().default('https://management.azure.com'),
    /** Environment with Node.js 22 and the Sluice worker, e.g. azureml:sluice-node22:1. */
    AZUREML_ENVIRONMENT_ID: z.string().min(1).optional(),
    /** A compute cluster's ARM id; unset = serverless compute of AZUREML_INSTANCE_TYPE. */
    AZUREML_COMPUTE_ID: z.string().min(1).optional(),
    AZUREML_INSTANCE_TYPE: z.string().min(1).default('Standard_DS3_v2'),
    /** Code asset holding the compiled Sluice worker. */
    AZUREML_CODE_ID: z.string().min(1).optional(),
    /**
     * Azure Databricks workspace of the `databricks` training backend (optional: only pipelines that
     * pick it need it), e.g. https://adb-1234567890123456.7.azuredatabricks.net.
     */
    DATABRICKS_HOST: z.url().optional(),
    /**
     * A personal access token, only when the app's managed identity cannot be used: in Azure a Key
     * Vault reference, never the token itself. Unset = a Microsoft Entra token from the identity.
     */
    DATABRICKS_TOKEN: z.string().min(1).optional(),
    /** Notification destination (an HTTP webhook to /api/training/databricks-events) set on every run. */
    DATABRICKS_WEBHOOK_DESTINATION_ID: z.string().min(1).max(100).optional(),
    /**
     * The password the destination sends (HTTP Basic) to /api/training/databricks-events, checked on
     * top of the function key; a Key Vault reference in Azure. Unset = the function key alone.
     */
    DATABRICKS_WEBHOOK_SECRET: z.string().min(16).optional(),
    /**
     * Where runs see the artifact account's `jobs` container: `abfss://jobs@<account>.dfs.core.windows.net`
     * (the default) or a Unity Catalog volume `/Volumes/<catalog>/<schema>/<volume>` whose storage
     * location is that container's root.
     */
    DATABRICKS_JOB_ROOT: z.string().min(1).optional(),
    /**
     * Where runs see the artifact account's `joboutputs` container, the only one they may write
     * (their model folder goes to `<root>/<jobId>`): `abfss://joboutputs@<account>.dfs.core.windows.net`
     * (the default with an ABFS job root) or a volume over that container (required with a volume
     * DATABRICKS_JOB_ROOT).
     */
    DATABRICKS_OUTPUT_ROOT: z.string().min(1).optional(),
    /**
     * User jobs (algorithm "custom"): the environment when the spec's azureml.environment names none,
     * an environment asset (azureml:name:version, azureml://registries/…) or a Docker image.
     */
    AZUREML_USER_ENVIRONMENT: z.string().min(1).optional(),
    /**
     * User jobs: a workspace datastore on the artifact account's jobs container (Bicep creates
     * `sluicejobs`); their inputs and output are then azureml://datastores/<name>/paths/... URIs
     * instead of https Blob URLs.
     */
    AZUREML_JOBS_DATASTORE: z.string().min(1).optional(),
    /**
     * A remote training job (Azure ML or Databricks) still queued this long after submit (no
     * compute, no quota, concurrency limit) is canceled and fails with queued_too_long.
     */
    TRAINING_QUEUED_LIMIT_SECONDS: intSetting(4 * 3600),
    /**
     * Deprecated alias of TRAINING_QUEUED_LIMIT_SECONDS (it predates Databricks): read when the new
     * name is unset; loadConfig gives both the same value.
     */
    AZUREML_QUEUED_LIMIT_SECONDS: intSetting(4 * 3600),
    /**
     * The user-assigned identity Azure ML jobs run as (Bicep attaches it to the workspace and grants
     * it the artifact storage): its client id and ARM resource id, for a job's
     * `identity: { identityType: 'Managed', clientId, resourceId }`. Serverless compute cannot use
     * the workspace's system-assigned identity.
     */
    AZUREML_JOB_IDENTITY_CLIENT_ID: z.string().min(1).optional(),
    AZUREML_JOB_IDENTITY_ID: z.string().min(1).optional(),
    /**
     * Deployment checks (docs/delivery.md). Hosts an Azure DevOps check may name in its PlanUrl;
     * Sluice posts the job's token only there. Comma-separated; `*.` matches any subdomain.
     */
    AZURE_DEVOPS_ALLOWED_HOSTS: z.string().min(1).default('dev.azure.com,*.visualstudio.com'),
    /**
     * How long before an Azure DevOps job token dies (48 h after the check starts) an undecided
     * check is completed as failed, leaving room for retries of that last call.
     */
    CHECK_TOKEN_MARGIN_MINUTES: z.coerce.number().int().min(10).max(1440).default(120),
    /** The GitHub App that answers custom deployment protection rules (its numeric id). */
    GITHUB_APP_ID: z.string().regex(/^\d+$/, 'a GitHub App id is a number').optional(),
    /** The App's private key (PEM); a Key Vault reference in Azure. */
    GITHUB_APP_PRIVATE_KEY: z.string().min(1).optional(),
    /** The App's webhook secret: `X-Hub-Signature-256` is checked with it; a Key Vault reference in Azure. */
    GITHUB_WEBHOOK_SECRET: z.string().min(16).optional(),
    /** GitHub's REST API root (GitHub Enterprise Server: https://HOST/api/v3; tests: a local fake). */
    GITHUB_API_URL: z
      .url()
      .default('https://api.github.com')
      .transform((u) => u.replace(/\/+$/, '')),
    /**
     * MLflow (docs/mlflow.md), under MLflow's own names: the tracking server every run is mirrored
     * to. Unset = no mirror. `databricks` uses DATABRICKS_HOST; `azureml://…` is the workspace's
     * `mlflow_tracking_uri`. Both get a Microsoft Entra token from the app's identity unless a token
     * or user name is set.
     */
    MLFLOW_TRACKING_URI: mlflowUri.optional(),
    /** Bearer token (an MLflow server behind a proxy, a Databricks PAT); in Azure a Key Vault reference. */
    MLFLOW_TRACKING_TOKEN: z.string().min(1).optional(),
    /** HTTP Basic credentials of an MLflow server with basic auth; take precedence over the token, as in MLflow. */
    MLFLOW_TRACKING_USERNAME: z.string().min(1).optional(),
    MLFLOW_TRACKING_PASSWORD: z.string().min(1).optional(),
    /**
     * The model registry, when it is not the tracking server (read by the registry mirror).
     * `databricks-uc`: Unity Catalog of the DATABRICKS_HOST workspace, models under MLFLOW_UC_SCHEMA.
     */
    MLFLOW_REGISTRY_URI: mlflowUri.optional(),
    /**
     * Whether a local training job linked to an MLflow run gets the app's own MLflow credentials
     * (`host`) or none (`none`, the default): with them, the team's code can write to every run and
     * registered model Sluice's identity can, including the artifacts of versions it deployed.
     */
    MLFLOW_LOCAL_JOB_CREDENTIALS: z.enum(['none', 'host']).default('none'),
    /**
     * With MLFLOW_REGISTRY_URI=databricks-uc: the `<catalog>.<schema>` Sluice's models go under
     * (`main.ml` → `main.ml.churn`); Sluice's model names are mapped (lib/mlflow/unityCatalog.ts).
     */
    MLFLOW_UC_SCHEMA: z
      .string()
      .regex(
        UC_SCHEMA,
        '<catalog>.<schema>: two Unity Catalog names of lower-case letters, digits or "_", joined by "."',
      )
      .optional(),
    /**
     * Prepended to the pipeline name to make the experiment name. Databricks names experiments by
     * workspace path, so there it must be a folder such as `/Shared/sluice/`.
     */
    MLFLOW_EXPERIMENT_PREFIX: z.string().max(200).default(''),
    /** The MLflow registry alias a deployment moves (e.g. `champion`); Sluice's own stays `production`. */
    MLFLOW_PRODUCTION_ALIAS: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,254}$/, 'an MLflow alias: letters, digits, "_" or "-"')
      .refine(
        (a) => !/^v\d+$/i.test(a) && a.toLowerCase() !== 'latest',
        'v<number> and latest are reserved by MLflow',
      )
      .default('production'),
  })
  .refine((c) => Boolean(c.ARTIFACT_STORAGE_CONNECTION || c.ARTIFACT_STORAGE_ACCOUNT_URL), {
    path: ['ARTIFACT_STORAGE_CONNECTION'],
    message: 'set ARTIFACT_STORAGE_CONNECTION (local) or ARTIFACT_STORAGE_ACCOUNT_URL (Azure)',
    // Report this together with other bad settings, not only once they are fixed.
    when: (payload) => {
      const v = payload.value as Record<string, unknown> | undefined;
      return typeof v === 'object' && v !== null;
    },
  })
  .superRefine((c, ctx) => {
    if (c.APPROVAL_SIGNING_KEYS || c.APPROVAL_ACTIVE_KEY_ID) {
      try {
        parseKeyring(c.APPROVAL_SIGNING_KEYS, c.APPROVAL_ACTIVE_KEY_ID);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['APPROVAL_SIGNING_KEYS'], message: (e as Error).message });
      }
    }
    const ucRegistry = c.MLFLOW_REGISTRY_URI === 'databricks-uc';
    if (c.MLFLOW_TRACKING_URI === 'databricks-uc')
      ctx.addIssue({
        code: 'custom',
        path: ['MLFLOW_TRACKING_URI'],
        message:
          '`databricks-uc` is a registry URI: set MLFLOW_TRACKING_URI=databricks and MLFLOW_REGISTRY_URI=databricks-uc',
      });
    if (ucRegistry && !c.MLFLOW_UC_SCHEMA)
      ctx.addIssue({
        code: 'custom',
        path: ['MLFLOW_UC_SCHEMA'],
        message:
          'MLFLOW_REGISTRY_URI=databricks-uc needs the <catalog>.<schema> models go under, e.g. main.ml',
      });
    if (c.MLFLOW_UC_SCHEMA && !ucRegistry)
      ctx.addIssue({
        code: 'custom',
        path: ['MLFLOW_UC_SCHEMA'],
        message: 'is only read with MLFLOW_REGISTRY_URI=databricks-uc',
      });
    if (c.MLFLOW_TRACKING_URI === 'databricks' || c.MLFLOW_REGISTRY_URI === 'databricks' || ucRegistry) {
      if (!c.DATABRICKS_HOST)
        ctx.addIssue({
          code: 'custom',
          path: [c.MLFLOW_TRACKING_URI === 'databricks' ? 'MLFLOW_TRACKING_URI' : 'MLFLOW_REGISTRY_URI'],
          message: `\`${c.MLFLOW_TRACKING_URI === 'databricks' ? 'databricks' : c.MLFLOW_REGISTRY_URI}\` needs DATABRICKS_HOST (the workspace URL)`,
        });
      if (c.MLFLOW_TRACKING_URI === 'databricks' && !c.MLFLOW_EXPERIMENT_PREFIX.startsWith('/'))
        ctx.addIssue({
          code: 'custom',
          path: ['MLFLOW_EXPERIMENT_PREFIX'],
          message: 'Databricks experiments are workspace paths: set a folder such as /Shared/sluice/',
        });
    }
    const mlflowCredentials = Boolean(c.MLFLOW_TRACKING_TOKEN || c.MLFLOW_TRACKING_PASSWORD);
    for (const key of ['MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI'] as const) {
      const why = c[key] ? mlflowUriProblem(c[key], mlflowCredentials) : undefined;
      if (why) ctx.addIssue({ code: 'custom', path: [key], message: why });
    }
    if (Boolean(c.MLFLOW_TRACKING_USERNAME) !== Boolean(c.MLFLOW_TRACKING_PASSWORD)) {
      ctx.addIssue({
        code: 'custom',
        path: [c.MLFLOW_TRACKING_USERNAME ? 'MLFLOW_TRACKING_PASSWORD' : 'MLFLOW_TRACKING_USERNAME'],
        message: 'MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD are set together',
      });
    }
    if (c.NOTIFIER === 'webhook' && !c.NOTIFY_WEBHOOK_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['NOTIFY_WEBHOOK_URL'],
        message: 'required when NOTIFIER=webhook',
      });
    }
    if (Boolean(c.GITHUB_APP_ID) !== Boolean(c.GITHUB_APP_PRIVATE_KEY)) {
      ctx.addIssue({
        code: 'custom',
        path: ['GITHUB_APP_PRIVATE_KEY'],
        message:
          'GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY go together (the App signs its token requests with the key)',
      });
    }
    if (c.NOTIFIER === 'acs-email' && !(c.ACS_ENDPOINT && c.ACS_SENDER)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ACS_ENDPOINT'],
        message: 'ACS_ENDPOINT and ACS_SENDER are required when NOTIFIER=acs-email',
      });
    }
  });

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Whether these settings describe the app on a developer's machine: not an App Service instance
 * (no WEBSITE_INSTANCE_ID), artifacts in a loopback Azurite (`UseDevelopmentStorage=true` or a
 * BlobEndpoint on localhost), never an account URL.
 */
export function runsLocally(env: Record<string, string | undefined>): boolean {
  if (env.WEBSITE_INSTANCE_ID || env.ARTIFACT_STORAGE_ACCOUNT_URL) return false;
  const connection = env.ARTIFACT_STORAGE_CONNECTION;
  if (!connection) return false;
  const parts = new Map(
    connection
      .split(';')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => {
        const eq = p.indexOf('=');
        return [p.slice(0, eq).toLowerCase(), p.slice(eq + 1)] as const;
      }),
  );
  if (parts.get('usedevelopmentstorage')?.toLowerCase() === 'true') return true;
  const blob = parts.get('blobendpoint');
  if (!blob) return false;
  try {
    return LOOPBACK.test(new URL(blob).hostname);
  } catch {
    return false;
  }
}

/** Parses settings from `env`, failing with a message that names every bad or missing setting. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned: Record<string, string | undefined> = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  // Links people click must reach this host: without an explicit origin, use the host name the
  // Functions host (or devhost, on whatever port it runs) says it answers on.
  if (!cleaned.PUBLIC_BASE_URL && cleaned.WEBSITE_HOSTNAME) {
    const host = cleaned.WEBSITE_HOSTNAME;
    const local = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(host);
    cleaned.PUBLIC_BASE_URL = `${local ? 'http' : 'https'}://${host}`;
  }
  // Users' commands run on this host by default only on a laptop: decided from what the Functions
  // host in Azure always sets (WEBSITE_INSTANCE_ID) and where artifacts live.
  if (cleaned.USER_CODE_LOCAL === undefined && runsLocally(cleaned)) cleaned.USER_CODE_LOCAL = 'true';
  if (cleaned.CONSOLE_OPEN === undefined && runsLocally(cleaned)) cleaned.CONSOLE_OPEN = 'true';
  // The queued limit's old name still works; when both are set they must agree.
  const queued = cleaned.TRAINING_QUEUED_LIMIT_SECONDS;
  const queuedOld = cleaned.AZUREML_QUEUED_LIMIT_SECONDS;
  if (queued !== undefined && queuedOld !== undefined && Number(queued) !== Number(queuedOld)) {
    throw new ConfigError(
      `Invalid Sluice settings:\n✖ TRAINING_QUEUED_LIMIT_SECONDS (${queued}) and its deprecated alias AZUREML_QUEUED_LIMIT_SECONDS (${queuedOld}) disagree: remove AZUREML_QUEUED_LIMIT_SECONDS\n  → at TRAINING_QUEUED_LIMIT_SECONDS`,
    );
  }
  if (queued === undefined && queuedOld !== undefined) cleaned.TRAINING_QUEUED_LIMIT_SECONDS = queuedOld;
  if (queuedOld === undefined && queued !== undefined) cleaned.AZUREML_QUEUED_LIMIT_SECONDS = queued;
  // App Service hands the app a Key Vault reference's literal text when it cannot read the secret
  // (no such secret, no access yet, a renamed vault). That text is public (anyone who reads the app
  // settings knows it) and long enough to pass as a webhook secret, so using it would let anyone sign
  // requests: refuse it, naming the setting, and fail closed.
  const unresolved = Object.keys(configSchema.shape).filter((k) =>
    /^\s*@Microsoft\.KeyVault\(/i.test(cleaned[k] ?? ''),
  );
  if (unresolved.length > 0) {
    throw new ConfigError(
      `Invalid Sluice settings:\n${unresolved
        .map(
          (k) =>
            `✖ ${k} is an unresolved Key Vault reference: App Service could not read the secret (does it exist in the vault, and may the app's identity read it?)\n  → at ${k}`,
        )
        .join('\n')}`,
    );
  }
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(`Invalid Sluice settings:\n${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
