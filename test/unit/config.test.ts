import { loadConfig, ConfigError } from '../../lib/config';

const base = {
  COSMOS_ENDPOINT: 'http://127.0.0.1:8081',
  ARTIFACT_STORAGE_CONNECTION: 'UseDevelopmentStorage=true',
};

describe('loadConfig', () => {
  it('applies defaults to a minimal local environment', () => {
    const c = loadConfig(base);
    expect(c.DURABLE_TASK_HUB).toBe('SluiceHub');
    expect(c.COSMOS_DATABASE).toBe('sluice');
    expect(c.INGEST_MAX_COLUMNS).toBe(10_000);
  });

  it('names every bad or missing setting in one message', () => {
    let err: unknown;
    try {
      loadConfig({ INGEST_MAX_BYTES: 'lots', DURABLE_TASK_HUB: '1bad' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('COSMOS_ENDPOINT');
    expect(msg).toContain('INGEST_MAX_BYTES');
    expect(msg).toContain('DURABLE_TASK_HUB');
    expect(msg).toContain('ARTIFACT_STORAGE_CONNECTION');
  });

  it('treats empty strings as unset', () => {
    expect(() => loadConfig({ ...base, COSMOS_ENDPOINT: '' })).toThrow(/COSMOS_ENDPOINT/);
  });
});

describe('PUBLIC_BASE_URL', () => {
  it('follows the host name devhost or Azure answers on when not set', () => {
    expect(loadConfig({ ...base, WEBSITE_HOSTNAME: 'localhost:8123' }).PUBLIC_BASE_URL).toBe(
      'http://localhost:8123',
    );
    expect(loadConfig({ ...base, WEBSITE_HOSTNAME: 'sluice-abc.azurewebsites.net' }).PUBLIC_BASE_URL).toBe(
      'https://sluice-abc.azurewebsites.net',
    );
  });

  it('keeps an explicit origin', () => {
    expect(
      loadConfig({ ...base, WEBSITE_HOSTNAME: 'localhost:8123', PUBLIC_BASE_URL: 'https://ml.example.com' })
        .PUBLIC_BASE_URL,
    ).toBe('https://ml.example.com');
  });
});

describe('MODEL_MAX_BYTES', () => {
  it('defaults to 512 MiB and takes a positive whole number of bytes', () => {
    expect(loadConfig(base).MODEL_MAX_BYTES).toBe(512 * 1024 * 1024);
    expect(loadConfig({ ...base, MODEL_MAX_BYTES: '1073741824' }).MODEL_MAX_BYTES).toBe(1024 ** 3);
  });

  it.each(['0', '-5', '1.5', 'big'])('refuses %s, naming the setting', (value) => {
    expect(() => loadConfig({ ...base, MODEL_MAX_BYTES: value })).toThrow(/MODEL_MAX_BYTES/);
  });
});

describe('unresolved Key Vault references', () => {
  // What App Service passes when it cannot read the secret: public text, long enough to pass as a
  // webhook secret, so anyone who reads the app settings could sign GitHub protection-rule events.
  const literal =
    '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/github-webhook-secret/)';

  it('are refused, naming each setting, instead of being used as the secret', () => {
    let err: unknown;
    try {
      loadConfig({
        ...base,
        GITHUB_APP_ID: '123',
        GITHUB_APP_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----',
        GITHUB_WEBHOOK_SECRET: literal,
        DATABRICKS_WEBHOOK_SECRET: ` ${literal.replace('KeyVault', 'keyvault')}`,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/GITHUB_WEBHOOK_SECRET is an unresolved Key Vault reference/);
    expect((err as Error).message).toMatch(/DATABRICKS_WEBHOOK_SECRET is an unresolved Key Vault reference/);
  });

  it('a resolved secret and settings Sluice does not read are left alone', () => {
    const c = loadConfig({ ...base, GITHUB_WEBHOOK_SECRET: 'a'.repeat(32), SOMETHING_ELSE: literal });
    expect(c.GITHUB_WEBHOOK_SECRET).toBe('a'.repeat(32));
  });
});
