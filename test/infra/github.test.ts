// The optional GitHub App of the deployment protection rule (docs/delivery.md): no setting and no
// secret unless an App id is given; with it, GITHUB_APP_ID from its parameter and the private key
// and webhook secret only as Key Vault references to secrets main.bicep stores.
import type { Value } from './bicep';
import { Unknown } from './bicep';
import { appSettings, mainEvaluator, moduleParam, SCENARIOS } from './helpers';

const show = (v: Value | undefined) => (v instanceof Unknown ? v.text : String(v));
const gh = SCENARIOS.github!;
const keyVaultSecrets = (overrides: Record<string, Value>) =>
  moduleParam(mainEvaluator(overrides), 'modules/keyvault.bicep', 'secrets') as Record<string, Value>;

describe('GitHub App settings', () => {
  it('sets none and stores no secret without an App id', () => {
    const { githubAppId: _id, ...rest } = gh;
    for (const settings of [appSettings(), appSettings(rest)]) {
      expect(Object.keys(settings).filter((k) => k.startsWith('GITHUB_'))).toEqual([]);
    }
    expect(Object.keys(keyVaultSecrets(rest)).filter((k) => k.startsWith('github-'))).toEqual([]);
  });

  it('with an App id: the id as is, the key and the webhook secret as Key Vault references', () => {
    const settings = appSettings(gh);
    expect(settings.GITHUB_APP_ID).toBe(gh.githubAppId);
    expect(show(settings.GITHUB_APP_PRIVATE_KEY)).toBe(
      '@Microsoft.KeyVault(SecretUri=<keyVault.outputs.uri>secrets/github-app-private-key/)',
    );
    expect(show(settings.GITHUB_WEBHOOK_SECRET)).toBe(
      '@Microsoft.KeyVault(SecretUri=<keyVault.outputs.uri>secrets/github-webhook-secret/)',
    );
    const secrets = keyVaultSecrets(gh);
    expect(secrets['github-app-private-key']).toBe(gh.githubAppPrivateKey);
    expect(secrets['github-webhook-secret']).toBe(gh.githubWebhookSecret);
  });
});
