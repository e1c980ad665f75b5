// The Function App settings main.bicep deploys are the contract lib/config.ts parses: every setting
// the schema requires is set, names come from lib/resources.json, local-only settings (keys,
// connection strings) are never set in Azure, secrets are Key Vault references, and the settings
// of each deployment variant load with loadConfig once App Service resolves those references.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema, loadConfig } from '../../lib/config';
import { declsOf, Unknown } from './bicep';
import type { Decl, Value } from './bicep';
import {
  appSettings,
  bicep,
  bicepPaths,
  INFRA,
  mainEvaluator,
  moduleParam,
  REQUIRED_PARAMS,
  ROOT,
  SCENARIOS,
  sharedNames,
} from './helpers';

/** Settings of the Functions host itself, not of Sluice (lib/config.ts does not read them). */
const durable = sharedNames().durable;
const HOST_SETTINGS = [
  'AzureWebJobsStorage__accountName',
  'AzureWebJobsStorage__credential',
  'AzureWebJobsStorage__clientId',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
  // The Durable backend (lib/resources.json durable): host.json overrides and the scheduler's connection.
  ...['type', 'connectionStringName', 'maxQueuePollingInterval'].map(
    (k) => durable.storageProviderSettingPrefix + k,
  ),
  durable.schedulerConnectionSetting,
];
const shape = configSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
const schemaKeys = Object.keys(shape);
const required = schemaKeys.filter((k) => !shape[k]!.safeParse(undefined).success);
const names = sharedNames();
const localOnly = Object.values(names.appSettings.localOnly);

// azd's generator (cli/azd/pkg/password): letters, digits and, unless noSpecial, these symbols.
const AZD_SYMBOLS = '-_.{}~()*+!';
const LETTERS_DIGITS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function azdGenerate(param: Decl): string {
  const meta = param.decorators.find((d) => d.name === 'metadata');
  const value = mainEvaluator().node(meta!.args[0]!, new Map()) as {
    azd: { type: string; config: { length: number; noSpecial?: boolean } };
  };
  const alphabet = LETTERS_DIGITS + (value.azd.config.noSpecial ? '' : AZD_SYMBOLS);
  return Array.from({ length: value.azd.config.length }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/** The secrets azd would generate for main.bicep's generate-metadata parameters. */
function generatedSecrets(): Record<string, string> {
  const params = declsOf(bicep('main.bicep'), 'param').filter(
    (p) =>
      !p.value &&
      p.decorators.some((d) => d.name === 'metadata') &&
      p.decorators.some((d) => d.name === 'secure'),
  );
  return Object.fromEntries(params.map((p) => [p.name, azdGenerate(p)]));
}

const show = (v: Value) => (v instanceof Unknown ? v.text : String(v));

const SAMPLES = ['https://sample.example.net/', '4a1a8f39-5a3b-4c1e-9d54-0c5b2d1c6e7f', 'Sample'];

/**
 * What the app sees in Azure: Key Vault references resolved to the secrets main.bicep stores, and a
 * plausible value (one its schema accepts) for anything only known after deployment.
 */
function simulatedEnvironment(overrides: Record<string, Value>): Record<string, string> {
  const params = { ...REQUIRED_PARAMS, ...generatedSecrets(), ...overrides };
  const secrets = moduleParam(mainEvaluator(params), 'modules/keyvault.bicep', 'secrets') as Record<
    string,
    Value
  >;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(appSettings(params))) {
    if (typeof value === 'string') {
      env[name] = value;
      continue;
    }
    const text = show(value);
    const reference = /^@Microsoft\.KeyVault\(SecretUri=<[^>]+>secrets\/([^/]+)\/\)$/.exec(text);
    if (reference) {
      const secret = secrets[reference[1]!];
      if (typeof secret !== 'string')
        throw new Error(`${name} references secret ${reference[1]}, which is not stored`);
      env[name] = secret;
      continue;
    }
    const field = shape[name];
    const sample = field ? SAMPLES.find((s) => field.safeParse(s).success) : SAMPLES[0];
    if (!sample) throw new Error(`no sample value fits ${name} (set from ${text})`);
    env[name] = sample;
  }
  return env;
}

describe('app settings', () => {
  it('lib/config.ts requires settings and resources.json names real schema keys', () => {
    expect(required).toContain('COSMOS_ENDPOINT');
    const named = [...Object.values(names.appSettings.azure), ...localOnly];
    expect(named.filter((n) => !schemaKeys.includes(n))).toEqual([]);
    expect(Object.values(names.appSettings.azure).filter((n) => localOnly.includes(n))).toEqual([]);
  });

  it.each(Object.entries(SCENARIOS))('sets every setting the schema requires (%s)', (_name, overrides) => {
    const settings = appSettings(overrides);
    const missing = required.filter((k) => !localOnly.includes(k) && !(k in settings));
    expect(missing).toEqual([]);
  });

  it('covers every setting of lib/config.ts: set in Azure, local-only, or defaulted', () => {
    const everSet = new Set(Object.values(SCENARIOS).flatMap((o) => Object.keys(appSettings(o))));
    // Optional settings without a default are the ones an Azure deployment may have to provide.
    const optionalWithoutDefault = schemaKeys.filter((k) => {
      const parsed = shape[k]!.safeParse(undefined) as { success: boolean; data?: unknown };
      return parsed.success && parsed.data === undefined;
    });
    const unaccounted = optionalWithoutDefault.filter((k) => !everSet.has(k) && !localOnly.includes(k));
    // A new setting lands here: set it in infra/main.bicep (name in lib/resources.json
    // appSettings.azure) or, if it only makes sense on a laptop, list it in appSettings.localOnly.
    expect(unaccounted).toEqual([]);
  });

  it.each(Object.entries(SCENARIOS))(
    'sets only settings lib/config.ts or the host reads (%s)',
    (_name, overrides) => {
      const unknown = Object.keys(appSettings(overrides)).filter(
        (k) => !schemaKeys.includes(k) && !HOST_SETTINGS.includes(k),
      );
      expect(unknown).toEqual([]);
    },
  );

  it.each(Object.entries(SCENARIOS))(
    'never sets local-only settings or key-based ones (%s)',
    (_name, overrides) => {
      const keys = Object.keys(appSettings(overrides));
      expect(localOnly.length).toBeGreaterThan(0);
      expect(keys.filter((k) => localOnly.includes(k))).toEqual([]);
      // Flex Consumption sets the runtime in functionAppConfig; these would break or bypass it.
      const forbidden = keys.filter((k) =>
        /^(FUNCTIONS_WORKER_RUNTIME|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT.*|AzureWebJobsStorage|COSMOS_KEY)$/.test(
          k,
        ),
      );
      expect(forbidden).toEqual([]);
    },
  );

  it.each(Object.entries(SCENARIOS))(
    'loads with loadConfig as the app sees it in Azure (%s)',
    (_name, overrides) => {
      const env = simulatedEnvironment(overrides);
      const config = loadConfig(env);
      expect(config.ARTIFACT_STORAGE_CONNECTION).toBeUndefined();
      expect(config.COSMOS_KEY).toBeUndefined();
      expect(config.ARTIFACT_STORAGE_ACCOUNT_URL).toBeDefined();
      expect(config.DURABLE_TASK_HUB).toBe('SluiceHub');
      expect(config.APPROVAL_ACTIVE_KEY_ID).toBe('a');
      // Both signing-key slots are present, so switching slots is a rotation, not an outage.
      expect(Object.keys(JSON.parse(config.APPROVAL_SIGNING_KEYS!) as object).sort()).toEqual(['a', 'b']);
      const expectedNotifier = overrides.enableEmail
        ? 'acs-email'
        : overrides.notifyWebhookUrl
          ? 'webhook'
          : 'outbox';
      expect(config.NOTIFIER).toBe(expectedNotifier);
      if (overrides.enableEmail) expect(config.ACS_SENDER).toBeDefined();
      if (overrides.emailSenderAddress) expect(config.ACS_SENDER).toBe(overrides.emailSenderAddress);
      if (overrides.enableAzureMl) {
        expect(config.AZUREML_SUBSCRIPTION_ID).toBe('00000000-0000-0000-0000-000000000000');
        expect(config.AZUREML_RESOURCE_GROUP).toBeDefined();
        expect(config.AZUREML_WORKSPACE_NAME).toBeDefined();
        expect(config.AZUREML_ENVIRONMENT_ID).toBe(overrides.azureMlEnvironmentId);
        expect(config.AZUREML_CODE_ID).toBe(overrides.azureMlCodeId);
        expect(config.AZUREML_INSTANCE_TYPE).toBe(overrides.azureMlInstanceType ?? 'Standard_DS3_v2');
        expect(config.AZUREML_USER_ENVIRONMENT).toBe(overrides.azureMlUserEnvironment);
        expect(config.AZUREML_JOBS_DATASTORE).toBeDefined();
        expect(show(appSettings(overrides).AZUREML_JOBS_DATASTORE!)).toBe('ml.outputs.jobsDatastoreName');
        expect(config.AZUREML_QUEUED_LIMIT_SECONDS).toBe(
          Number(overrides.azureMlQueuedLimitSeconds ?? 4 * 3600),
        );
      } else {
        expect(config.AZUREML_WORKSPACE_NAME).toBeUndefined();
      }
    },
  );

  it('points approval links at the app itself, or at the configured public origin', () => {
    expect(show(appSettings().PUBLIC_BASE_URL!)).toBe('https://<site.properties.defaultHostName>');
    expect(appSettings({ publicBaseUrl: 'https://mlops.contoso.com' }).PUBLIC_BASE_URL).toBe(
      'https://mlops.contoso.com',
    );
  });

  it('switching the active key slot changes only APPROVAL_ACTIVE_KEY_ID', () => {
    const a = appSettings();
    const b = appSettings({ approvalActiveKeyId: 'b' });
    expect(b.APPROVAL_ACTIVE_KEY_ID).toBe('b');
    expect(String(b.APPROVAL_SIGNING_KEYS)).toBe(String(a.APPROVAL_SIGNING_KEYS));
  });

  it('takes every setting name from lib/resources.json', () => {
    // A literal Sluice setting name in main.bicep would bypass the shared names.
    const source = readFileSync(join(INFRA, 'main.bicep'), 'utf8');
    const literalNames = Object.values(names.appSettings.azure).filter((n) =>
      new RegExp(`^\\s*'?${n}'?\\s*:`, 'm').test(source),
    );
    expect(literalNames).toEqual([]);
  });

  it('sets every %SETTING% that host.json binds', () => {
    const host = readFileSync(join(ROOT, 'host.json'), 'utf8');
    const bound = [...host.matchAll(/%([A-Za-z0-9_]+)%/g)].map((m) => m[1]!);
    expect(bound.length).toBeGreaterThan(0);
    const settings = appSettings();
    expect(bound.filter((k) => !(k in settings))).toEqual([]);
  });

  it('connects the host and Durable task hub to storage with the managed identity', () => {
    const settings = appSettings();
    expect(settings.AzureWebJobsStorage__credential).toBe('managedidentity');
    expect(show(settings.AzureWebJobsStorage__clientId!)).toBe('identity.outputs.clientId');
    expect(show(settings.AzureWebJobsStorage__accountName!)).toBe('storage.outputs.name');
    expect(show(settings.AZURE_CLIENT_ID!)).toBe('identity.outputs.clientId');
    expect(show(settings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING!)).toBe(
      'ClientId=<identity.outputs.clientId>;Authorization=AAD',
    );
  });
});

describe('secrets', () => {
  it.each(Object.entries(SCENARIOS))('are Key Vault references, never values (%s)', (_name, overrides) => {
    const settings = appSettings(overrides);
    const secretLike = Object.keys(settings).filter((k) => /SECRET|_KEYS?$|PASSWORD|TOKEN/.test(k));
    expect(secretLike.length).toBeGreaterThan(0);
    for (const k of secretLike) {
      expect([k, show(settings[k]!)]).toEqual([
        k,
        expect.stringMatching(
          /^@Microsoft\.KeyVault\(SecretUri=<keyVault\.outputs\.uri>secrets\/[a-z0-9-]+\/\)$/,
        ),
      ]);
    }
    for (const [k, v] of Object.entries(settings)) {
      expect([k, show(v)]).not.toEqual([
        k,
        expect.stringMatching(/AccountKey=|AccessKey=|SharedAccessSignature=/i),
      ]);
    }
  });

  it.each(bicepPaths())('%s reads no keys and names no local-only setting', (path) => {
    const source = readFileSync(join(INFRA, path), 'utf8');
    expect(source).not.toMatch(/list(Keys|ConnectionStrings|AccountSas|ServiceSas)\s*\(|\.listKeys\(/);
    expect(source).not.toMatch(/AccountKey=|primaryMasterKey|primaryKey|primaryConnectionString/);
    for (const name of localOnly) expect(source).not.toMatch(new RegExp(`(?<!\\w)${name}(?!\\w)`));
  });

  it('never outputs a secure parameter', () => {
    const main = bicep('main.bicep');
    const secure = declsOf(main, 'param')
      .filter((p) => p.decorators.some((d) => d.name === 'secure'))
      .map((p) => p.name);
    // Every secure parameter with a value of its own: the generated ones and the optional
    // Databricks, GitHub and MLflow ones.
    const ev = mainEvaluator({
      ...generatedSecrets(),
      ...SCENARIOS.databricksAll,
      ...SCENARIOS.github,
      ...SCENARIOS.mlflowAll,
      mlflowTrackingToken: SCENARIOS.mlflowDatabricks!.mlflowTrackingToken!,
    });
    expect(secure.filter((name) => !ev.param(name))).toEqual([]);
    for (const o of declsOf(main, 'output')) {
      const value = String(ev.node(o.value!, new Map()));
      for (const name of secure) expect([o.name, value]).not.toEqual([o.name, String(ev.param(name))]);
    }
  });
});
